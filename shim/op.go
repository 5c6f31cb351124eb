package shim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/cli"
	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/xdg"
)

// opCall is an op command line as the shim understands it: the
// subcommand, its positional arguments and the flags it serves. Anything
// else sends the whole command line to the real op.
type opCall struct {
	cmd         string
	args        []string
	account     string
	noNL        bool
	force       bool
	in, out     string
	fileMode    string
	envFiles    []string
	noMask      bool
	dashdash    bool // the positional arguments came after --
	preDash     int  // positional arguments before --
	fileModeSet bool
}

// parseOPArgs reads op's command line (flags before or after the
// subcommand, --flag=value or --flag value, -- ending the flags) for the
// subset opx serves; ok is false when the real op must answer.
func parseOPArgs(argv []string) (c opCall, ok bool) {
	c.fileMode = "0600"
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			if c.cmd == "" && i+1 < len(argv) {
				c.cmd, c.args = argv[i+1], append(c.args, argv[i+2:]...)
			} else {
				c.args = append(c.args, argv[i+1:]...)
				c.dashdash = true
			}
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if c.cmd == "" {
				c.cmd = a
			} else {
				c.args = append(c.args, a)
				c.preDash++
			}
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		value := func() (string, bool) {
			if hasVal {
				return val, true
			}
			if i+1 >= len(argv) {
				return "", false
			}
			i++
			return argv[i], true
		}
		var good bool
		switch name {
		case "--account":
			c.account, good = value()
		case "-n", "--no-newline":
			c.noNL, good = !hasVal, !hasVal
		case "-f", "--force":
			c.force, good = !hasVal, !hasVal
		case "-o", "--out-file":
			c.out, good = value()
		case "-i", "--in-file":
			c.in, good = value()
		case "--file-mode":
			c.fileMode, good = value()
			c.fileModeSet = true
		case "--no-color", "--iso-timestamps", "--cache":
			// On/off flags (--cache=false too): the output opx serves has
			// neither colours nor timestamps, and its cache is its own.
			good = !hasVal || val == "true" || val == "false"
		case "--env-file":
			var f string
			if f, good = value(); good {
				c.envFiles = append(c.envFiles, f)
			}
		case "--no-masking":
			c.noMask, good = !hasVal, !hasVal
		}
		if !good {
			return c, false // --format, --config, --session, --debug, --help, --version, ...
		}
	}
	switch c.cmd {
	case "read":
		return c, len(c.args) == 1 && c.in == "" && len(c.envFiles) == 0 && !c.noMask
	case "inject":
		return c, len(c.args) == 0 && !c.noNL && len(c.envFiles) == 0 && !c.noMask
	case "run":
		// op run [--env-file F]... [--no-masking] -- CMD ARGS...: nothing
		// but the command after --, no flag op run does not take.
		return c, c.dashdash && c.preDash == 0 && len(c.args) > 0 && !c.noNL && c.in == "" && c.out == "" && !c.force && c.fileMode == "0600" && !c.fileModeSet
	}
	return c, false
}

// RunAsOP is opx installed as `op`: it serves op read and op inject
// through the daemon, with op's output contract (the same stdout, nothing
// on stderr on success, op's error form and exit status 1), and hands
// every other command line to the real op, unchanged.
func RunAsOP(argv []string, paths xdg.Paths, expect *client.Expectation) int {
	if os.Getenv(shimExecVar) == strconv.Itoa(shimExecPID()) {
		// This process exec'd "the real op" and got opx again: stop.
		fmt.Fprintln(os.Stderr, "op: command not found (the op on PATH runs opx again)")
		return 127
	}
	if os.Getenv(fromDaemonVar) != "" {
		// The daemon's 1Password backend ran op and got opx (a stale
		// identity after an upgrade): never ask the daemon back.
		return execRealOP(argv)
	}
	c, ok := parseOPArgs(argv[1:])
	if ok && c.out != "" && !c.force {
		if _, err := os.Lstat(c.out); err == nil {
			ok = false // op asks before it replaces a file: let it
		}
	}
	if ok && c.cmd == "read" {
		if r, err := api.ParseRef(c.args[0]); err != nil || r.Scheme != api.SchemeOP {
			ok = false // op's own error for a ref it does not take
		}
	}
	if !ok {
		return execRealOP(argv)
	}
	if c.account == "" {
		c.account = os.Getenv("OP_ACCOUNT")
	}
	env := cli.NewQuietEnv(paths, expect)
	defer env.Client.Close()
	var err error
	switch c.cmd {
	case "read":
		err = opRead(env, c)
	case "inject":
		err = opInject(env, c)
	case "run":
		return opRun(env, c, argv)
	}
	if err != nil {
		var e *client.Error
		if errors.As(err, &e) && e.Code == "" && !errors.Is(err, fs.ErrExist) {
			// No daemon to ask (not running, cannot start): nothing was
			// written yet, so the real op answers instead.
			return execRealOP(argv)
		}
		fmt.Fprintf(os.Stderr, "[ERROR] %s %s\n", time.Now().Format("2006/01/02 15:04:05"), opMessage(err))
		return 1
	}
	return 0
}

// opMessage is err in op's words: a backend error is op's own message (opx
// adds how to sign in; op does not).
func opMessage(err error) string { return opText(err.Error()) }

// opText is an opx error message in op's words.
func opText(msg string) string {
	msg = strings.TrimPrefix(msg, "1Password CLI: ")
	if i := strings.Index(msg, "; sign in with: opx login"); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// opRead is op read: the value and a newline (none with -n), or written to
// --out-file.
func opRead(env *cli.Env, c opCall) error {
	ref := c.args[0]
	res, err := env.Client.Reads(context.Background(), client.Query{Account: c.account, OPIdentity: api.OPIdentityFromEnv(os.Getenv)}, []string{ref})
	if err != nil {
		return err
	}
	if e := res[ref].Err; e != nil {
		msg := cli.TrimRefPrefix(e.Message, ref)
		if !strings.HasPrefix(msg, "1Password CLI: ") {
			msg = fmt.Sprintf("could not read secret '%s': %s", ref, msg)
		}
		return errors.New(msg)
	}
	v := res[ref].Value
	if !c.noNL { // to a file too, as op writes it
		w := make([]byte, len(v)+1)
		copy(w, v)
		w[len(v)] = '\n'
		clear(v)
		v = w
	}
	defer clear(v)
	if c.out != "" {
		return writeOPFile(c, v)
	}
	_, err = env.Stdout.Write(v)
	return err
}

// opInject is op inject: the template from stdin or -i, the result to
// stdout or -o, with op inject's syntax (the same as opx inject's).
func opInject(env *cli.Env, c opCall) error {
	var out bytes.Buffer
	defer func() { clear(out.Bytes()) }()
	var errs bytes.Buffer
	sub := *env
	sub.Stdout, sub.Stderr = &out, &errs
	in := c.in
	if in == "/dev/stdin" || in == "-" {
		// op-js passes --in-file=/dev/stdin with a socket for stdin,
		// which cannot be opened by name: read the stream itself.
		in = ""
	}
	cmd := &cli.InjectCmd{In: in, AsOP: true}
	err := cmd.Run(&cli.Globals{Account: c.account}, &sub)
	if err != nil {
		var ee *cli.ExitError
		if errors.As(err, &ee) {
			// opx inject named each failure on stderr: op names the first.
			line, _, _ := strings.Cut(errs.String(), "\n")
			return errors.New(opText(strings.TrimPrefix(line, "opx: error: ")))
		}
		return err
	}
	if c.out != "" {
		return writeOPFile(c, out.Bytes())
	}
	_, err = env.Stdout.Write(out.Bytes())
	return err
}

// opRun is op run: the op:// refs of the environment and the env files
// resolved in one round trip, the command run with them concealed in its
// output (op's marker), its exit status returned.
func opRun(env *cli.Env, c opCall, argv []string) int {
	off, _ := strconv.ParseBool(os.Getenv("OP_RUN_NO_MASKING"))
	noMask := c.noMask || off
	cmd := &cli.RunCmd{EnvFile: c.envFiles, NoMasking: noMask, Command: c.args, AsOP: true}
	sub := *env
	sub.Stderr = os.Stderr
	err := cmd.Run(&cli.Globals{Account: c.account}, &sub)
	var ee *cli.ExitError
	var e *client.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &e) && e.Code == "":
		return execRealOP(argv) // no daemon to ask: op runs it
	}
	fmt.Fprintf(os.Stderr, "[ERROR] %s %s\n", time.Now().Format("2006/01/02 15:04:05"), opMessage(err))
	return 1
}

// writeOPFile writes data to --out-file with --file-mode, as op does.
func writeOPFile(c opCall, data []byte) error {
	o := cli.FileOutput{FileMode: c.fileMode, Force: c.force}
	if err := o.WriteFile(c.out, data); err != nil {
		return err
	}
	return nil
}

// fromDaemonVar marks the environment of the op processes the daemon runs
// (set by the daemon's 1Password backend); shimExecVar holds the pid that
// exec'd the real op, so that a shim that gets itself back stops.
const (
	fromDaemonVar = "OPX_FROM_DAEMON"
	shimExecVar   = "OPX_SHIM_EXEC"
)

// execRealOP becomes the real op (execReal).
func execRealOP(argv []string) int { return execReal("op", argv) }
