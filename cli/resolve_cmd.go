package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/template"
)

// ResolveCmd is `opx resolve [--env-file FILE]... [NAME=REF...]`.
type ResolveCmd struct {
	JSON    bool     `help:"Print a JSON object of NAME to value." xor:"format"`
	Export  bool     `help:"Print shell-quoted 'export NAME=value' lines, for eval." xor:"format"`
	EnvFile []string `name:"env-file" type:"path" sep:"none" help:"Read NAME=VALUE lines from FILE (dotenv syntax, as opx run reads them): refs are resolved, other values printed as they are (repeatable)." placeholder:"FILE"`
	Pairs   []string `arg:"" optional:"" name:"NAME=REF" help:"Variables to resolve; they beat the env files."`
	Freshness
}

// Run resolves every ref in one round trip (per api.MaxRefs) and prints
// NAME=value lines (sorted by name), or JSON, or export lines: the
// variables of the env files, in order, then the pairs, later beating
// earlier.
func (c *ResolveCmd) Run(g *Globals, env *Env) error {
	q, err := c.query(g)
	if err != nil {
		return err
	}
	if len(c.Pairs) == 0 && len(c.EnvFile) == 0 {
		return &client.Error{Message: "nothing to resolve", Hint: "opx resolve NAME=REF... or opx resolve --env-file FILE"}
	}
	req := make(map[string]string, len(c.Pairs))
	literal := map[string]string{}
	for _, file := range c.EnvFile {
		vars, err := readEnvFile(file)
		if err != nil {
			return err
		}
		for _, v := range vars {
			if IsRef(v.Value) {
				ref, err := template.ExpandRef(v.Value, template.OSLookup)
				if err != nil {
					return &client.Error{Message: fmt.Sprintf("%s: %s: %v", file, v.Name, err)}
				}
				req[v.Name] = ref
				delete(literal, v.Name)
			} else {
				literal[v.Name] = v.Value
				delete(req, v.Name)
			}
		}
	}
	for _, kv := range c.Pairs {
		name, ref, ok := strings.Cut(kv, "=")
		if !ok || !validName(name) {
			// Only the name is shown: the value may be the secret itself.
			return &client.Error{Message: fmt.Sprintf("%q: want NAME=REF, NAME of letters, digits and _", truncate(name))}
		}
		ref, err := template.ExpandRef(ref, template.OSLookup)
		if err != nil {
			return &client.Error{Message: fmt.Sprintf("%s: %v", name, err)}
		}
		req[name] = ref
		delete(literal, name)
	}
	ctx := context.Background()
	vals := map[string][]byte{}
	if len(req) > 0 {
		done := env.progress(waitingFor(slices.Collect(maps.Values(req))))
		err := env.retryUnlocked(ctx, func() error {
			var err error
			vals, err = env.Client.Resolve(ctx, q, req)
			return err
		})
		done()
		if err != nil {
			return err
		}
	}
	for name, v := range literal {
		vals[name] = []byte(v)
	}
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	switch {
	case c.JSON:
		m := make(map[string]string, len(vals))
		for name, v := range vals {
			m[name] = string(v)
		}
		enc, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		b.Write(enc)
		b.WriteByte('\n')
	case c.Export:
		if err := noNUL(vals); err != nil {
			return err
		}
		for _, name := range names {
			fmt.Fprintf(&b, "export %s=%s\n", name, shellQuote(string(vals[name])))
		}
	default:
		for _, name := range names {
			fmt.Fprintf(&b, "%s=%s\n", name, vals[name])
		}
	}
	_, err = fmt.Fprint(env.Stdout, b.String())
	return err
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
