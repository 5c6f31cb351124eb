package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/envfile"
	"github.com/opxhq/opx/masked"
	"github.com/opxhq/opx/template"
)

// RunCmd is `opx run [--env NAME=REF]... [--env-file FILE]... -- CMD ARGS...`.
type RunCmd struct {
	Env       []string `short:"e" name:"env" sep:"none" help:"Set NAME to the value of REF in the command's environment (repeatable)." placeholder:"NAME=REF"`
	EnvFile   []string `name:"env-file" type:"path" sep:"none" help:"Read NAME=VALUE lines from FILE (dotenv syntax); values that are refs are resolved (repeatable)." placeholder:"FILE"`
	NoMasking bool     `name:"no-masking" env:"OPX_NO_MASKING" help:"Do not conceal the secrets in the command's output: resolve them, then become the command."`
	Command   []string `arg:"" passthrough:"partial" name:"command" help:"The command to run, after --." complete:"program"`
	Freshness

	// AsOP is op run's behaviour, for opx run as op: only op:// values
	// are refs, concealed with op's marker, and no warning on stderr.
	AsOP bool `kong:"-"`
}

// opMarker is what op run puts in place of a secret.
const opMarker = "<concealed by 1Password>"

// isRef is IsRef, or op run's narrower test.
func (c *RunCmd) isRef(v string) bool {
	if c.AsOP {
		return strings.HasPrefix(v, "op://")
	}
	return IsRef(v)
}

// Run resolves every ref of the command's environment in one round trip,
// then runs the command with every resolved value concealed in its output
// (see masked.Run), or, with --no-masking or nothing to conceal, replaces
// this process with the command, so that its exit status and signals are
// the command's own. Either way no timeout applies to the command, and opx
// exits with the command's status (127 when it is not found, 126 when it
// cannot be run).
func (c *RunCmd) Run(g *Globals, env *Env) error {
	q, err := c.query(g)
	if err != nil {
		return err
	}
	if len(c.Command) > 0 && c.Command[0] == "--" {
		c.Command = c.Command[1:]
	}
	if len(c.Command) == 0 {
		return &client.Error{Message: "no command to run", Hint: "opx run --env NAME=REF -- CMD ARGS..."}
	}
	vars, refs, err := c.environment(os.Environ())
	if err != nil {
		return err
	}
	path, err := exec.LookPath(c.Command[0])
	if err != nil {
		code := masked.StartStatus(err)
		msg := "command not found"
		if code == 126 {
			msg = "cannot run it: " + errors.Unwrap(err).Error()
		}
		fmt.Fprintf(env.Stderr, "opx: %s: %s\n", Printable(c.Command[0]), msg)
		return &ExitError{Code: code}
	}
	var conceal [][]byte
	var visible []string
	if len(refs) > 0 {
		ctx := context.Background()
		var vals map[string][]byte
		done := env.progress(waitingFor(slices.Collect(maps.Values(refs))))
		err := env.retryUnlocked(ctx, func() error {
			var err error
			vals, err = env.Client.Resolve(ctx, q, refs)
			return err
		})
		done()
		if err != nil {
			return err
		}
		if err := noNUL(vals); err != nil {
			return err
		}
		for name, v := range vals {
			vars[name] = string(v)
			if len(v) >= masked.MinConcealLen || c.AsOP && len(v) > 0 {
				conceal = append(conceal, v)
			} else if len(v) > 0 {
				visible = append(visible, name)
			}
		}
	}
	env.Client.Close()
	env.NoStart.Close()
	list := make([]string, 0, len(vars))
	for name, v := range vars {
		list = append(list, name+"="+v)
	}
	sort.Strings(list)
	if !c.NoMasking && len(visible) > 0 && !env.Quiet {
		sort.Strings(visible)
		fmt.Fprintf(env.Stderr, "opx: warning: not concealed in the output, shorter than %d bytes: %s\n", masked.MinConcealLen, strings.Join(visible, ", "))
	}
	if c.NoMasking || len(conceal) == 0 {
		// On Windows Exec returns when the command ends: its status.
		code, err := Exec(path, c.Command, list)
		if err == nil {
			return &ExitError{Code: code}
		}
		fmt.Fprintf(env.Stderr, "opx: %s: %v\n", Printable(c.Command[0]), err)
		return &ExitError{Code: masked.StartStatus(err)}
	}
	stdin, _ := env.Stdin.(*os.File)
	stdout, _ := env.Stdout.(*os.File)
	stderr, _ := env.Stderr.(*os.File)
	if stdin == nil || stdout == nil || stderr == nil {
		return &client.Error{Message: "opx run needs its standard streams to be files"}
	}
	marker := ""
	if c.AsOP {
		marker = opMarker
	}
	var warn func(string)
	if !env.Quiet {
		warn = func(msg string) { fmt.Fprintf(env.Stderr, "opx: warning: %s\n", msg) }
	}
	code, err := masked.Run(masked.Command{Path: path, Args: c.Command, Env: list, Values: conceal, Marker: marker,
		Stdin: stdin, Stdout: stdout, Stderr: stderr, Warn: warn})
	if err != nil {
		fmt.Fprintf(env.Stderr, "opx: %s: %v\n", Printable(c.Command[0]), err)
	}
	return &ExitError{Code: code}
}

// environment builds the command's environment from the inherited one,
// then the env files in order, then --env, later beating earlier. It returns
// every variable and, of those, the ones whose value is a ref to resolve.
func (c *RunCmd) environment(inherited []string) (map[string]string, map[string]string, error) {
	vars := make(map[string]string, len(inherited))
	for _, kv := range inherited {
		if name, v, ok := strings.Cut(kv, "="); ok && name != "" {
			vars[name] = v
		}
	}
	for _, file := range c.EnvFile {
		parsed, err := readEnvFile(file)
		if err != nil {
			return nil, nil, err
		}
		for _, v := range parsed {
			vars[v.Name] = v.Value
		}
	}
	for _, kv := range c.Env {
		name, ref, ok := strings.Cut(kv, "=")
		if !ok || !validName(name) {
			return nil, nil, &client.Error{Message: fmt.Sprintf("--env %q: want NAME=REF", name), Hint: "for example: --env DB_PASS=op://Private/db/password"}
		}
		if !IsRef(ref) {
			// The value is not echoed: it may be the secret itself.
			return nil, nil, &client.Error{Message: fmt.Sprintf("--env %s: the value is not a secret reference (op://, vault://, bao://)", name)}
		}
		vars[name] = ref
	}
	refs := make(map[string]string)
	lookup := template.LookupIn(inherited)
	for name, v := range vars {
		if c.isRef(v) {
			ref, err := template.ExpandRef(v, lookup)
			if err != nil {
				return nil, nil, &client.Error{Message: fmt.Sprintf("%s: %v", name, err)}
			}
			refs[name] = ref
		}
	}
	return vars, refs, nil
}

// noNUL refuses values an environment variable cannot hold: a NUL byte
// would end it there, and the program would see a shorter value.
func noNUL(vals map[string][]byte) error {
	var names []string
	for name, v := range vals {
		if bytes.IndexByte(v, 0) >= 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return &client.Error{Message: fmt.Sprintf("the value of %s holds a NUL byte, which an environment variable cannot", strings.Join(names, ", ")),
		Hint: "read such a value into a file: opx read -o FILE REF"}
}

// readEnvFile reads and parses a dotenv file.
func readEnvFile(file string) ([]envfile.Var, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &client.Error{Message: fmt.Sprintf("read env file: %v", err), Err: err}
	}
	parsed, err := envfile.Parse(file, data)
	if err != nil {
		return nil, &client.Error{Message: err.Error(), Err: err}
	}
	return parsed, nil
}

// IsRef reports whether s looks like a secret reference of a known scheme.
func IsRef(s string) bool {
	for _, scheme := range api.Schemes {
		if strings.HasPrefix(s, scheme+"://") {
			return true
		}
	}
	return false
}

func validName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
