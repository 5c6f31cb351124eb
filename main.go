// Command opx is a local secrets broker: run as `opx daemon` (or through a
// link named opx-authd) it is the daemon; every other subcommand is a client
// of that daemon. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/cli"
	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/daemon"
	"github.com/opxhq/opx/internal/console"
	"github.com/opxhq/opx/self"
	"github.com/opxhq/opx/shim"
	"github.com/opxhq/opx/xdg"
)

// version and commit are stamped by the Makefile (-ldflags -X main.version=...).
var (
	version = "dev"
	commit  = ""
)

const description = `opx caches secrets from 1Password, Vault and OpenBao in a per-user daemon,
so that tools read them fast and without repeated prompts. The first command
starts the daemon.

Examples:
  opx read op://Private/db/password 'vault://secret/app#key'
  opx run --env DB_PASS=op://Private/db/password -- ./deploy.sh
  opx login 1password --account my
  opx status`

// root is the grammar above the commands: the global flags. The commands
// are added to it one by one (see commands).
type root struct {
	cli.Globals
	Version bool    `help:"Print the version (commit, Go version, OS/arch) and exit."`
	Man     manFlag `hidden:"" help:"Print the man page (roff) and exit."`
}

// command is one subcommand of opx: its name, its line in `opx --help`, and
// a fresh value to parse its flags and arguments into.
type command struct {
	name, help string
	grammar    func() any
}

// commands is the whole command-line grammar, in the order --help lists it.
// A call builds only the command it names: kong reads every struct tag and
// help text of what it is given, and for the whole tree that cost more than
// the rest of a cached read. Help, usage errors and completion scripts, which
// need every command, get the whole tree.
var commands = [...]command{
	{"read", "Print the values of secret references, one per line.", func() any { return &cli.ReadCmd{} }},
	{"run", "Run a command with secrets in its environment.", func() any { return &cli.RunCmd{} }},
	{"resolve", "Print NAME=value for NAME=REF pairs.", func() any { return &cli.ResolveCmd{} }},
	{"inject", "Fill in the secret references of a template (op inject's syntax).", func() any { return &cli.InjectCmd{} }},
	{"status", "Show the daemon's state and counters.", func() any { return &cli.StatusCmd{} }},
	{"unlock", "Unlock the session (checks the backend sign-in).", func() any { return &cli.UnlockCmd{} }},
	{"lock", "Lock the session now and wipe the cache.", func() any { return &cli.LockCmd{} }},
	{"doctor", "Check opx's files, daemon, backend, session, policy, audit log and clock; say how to fix each problem.", func() any { return &cli.DoctorCmd{} }},
	{"stop", "Stop the daemon once its requests in flight have finished.", func() any { return &cli.StopCmd{} }},
	{"restart", "Stop the daemon and start a new one with this environment's settings.", func() any { return &cli.RestartCmd{} }},
	{"login", "Sign in to a backend and make it opx's default.", func() any { return &cli.LoginCmd{} }},
	{"policy", "Check the access policy (policy.json).", func() any { return &cli.PolicyCmd{} }},
	{"audit", "Summarise access denials from the audit log; --interactive turns them into allow rules.", func() any { return &cli.AuditCmd{} }},
	{"approve", "Answer the questions a policy rule that asks is waiting on: list them, allow, deny, or allow always.", func() any { return &cli.ApproveCmd{} }},
	{"shim", "Install opx as op: tools that run op read and op inject get the daemon's cache unchanged.", func() any { return &cli.ShimCmd{} }},
	{"service", "Run the daemon as a systemd user service (Linux), launchd agent (macOS) or logon task (Windows).", func() any { return &cli.ServiceCmd{} }},
	{"completion", "Print a shell completion script (bash, zsh, fish).", func() any { return &cli.CompletionCmd{} }},
	{"version", "Print the version.", func() any { return &versionCmd{} }},
	{"help", "Show the help of a command: opx help [COMMAND...].", func() any { return &helpCmd{} }},
	{"daemon", "Run the daemon (also: the opx-authd link).", func() any { return &daemon.Cmd{} }},
}

// wholeGrammar asks newParser for every command.
const wholeGrammar = -1

// commandIn returns the index in commands of the command that args name, or
// wholeGrammar when the call needs the whole tree: no command, an unknown one
// (kong suggests the nearest), or `completion`, whose scripts describe every
// command. The command is the first argument that is not a flag or the value
// of --account, the only global flag that takes one.
func commandIn(args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return wholeGrammar
		case a == "--account":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			for j := range commands {
				if commands[j].name == a && a != "completion" {
					return j
				}
			}
			return wholeGrammar
		}
	}
	return wholeGrammar
}

// asksForHelp reports whether args ask for help (--help, -h, or -h among
// other short flags such as -nh) before a "--".
func asksForHelp(args []string) bool {
	for _, a := range args {
		switch {
		case a == "--":
			return false
		case a == "--help" || strings.HasPrefix(a, "--help="):
			return true
		case len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.IndexByte(a, 'h') > 0:
			return true
		}
	}
	return false
}

// stripHelp drops every help text from a built grammar before kong
// interpolates them (with a regular expression, text by text): a call that
// neither asks for help nor fails never shows one. run parses again with the
// texts when parsing fails, so errors read as they always did.
func stripHelp(k *kong.Kong) error {
	var strip func(n *kong.Node)
	strip = func(n *kong.Node) {
		n.Help, n.Detail = "", ""
		for _, f := range n.Flags {
			f.Help = ""
		}
		for _, p := range n.Positional {
			p.Help = ""
		}
		for _, c := range n.Children {
			strip(c)
		}
	}
	strip(k.Model.Node)
	return nil
}

// newParser builds the grammar of commands[which], or of every command for
// wholeGrammar; lean leaves out the help texts (see stripHelp).
func newParser(which int, lean bool, env *cli.Env, resolver kong.Resolver) (*kong.Kong, *root, error) {
	grammar := &root{}
	opts := []kong.Option{
		kong.Name("opx"),
		kong.Description(description),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Resolvers(resolver),
		kong.Bind(env, daemon.BuildInfo{Version: version}),
	}
	if lean {
		opts = append(opts, kong.PostBuild(stripHelp))
	}
	for i := range commands {
		if which == wholeGrammar || which == i {
			c := &commands[i]
			opts = append(opts, kong.DynamicCommand(c.name, c.help, "", c.grammar()))
		}
	}
	parser, err := kong.New(grammar, opts...)
	return parser, grammar, err
}

type versionCmd struct{}

// helpCmd is listed for --help and completion; run rewrites `opx help X` to
// `opx X --help` before parsing, so its Run is never reached.
type helpCmd struct {
	Command []string `arg:"" optional:"" help:"The command." complete:"commands"`
}

func (helpCmd) Run() error { return nil }

func (versionCmd) Run(env *cli.Env) error {
	_, err := fmt.Fprintln(env.Stdout, versionLine())
	return err
}

// versionLine is "opx VERSION (commit C, GO, OS/ARCH)", the commit read from
// the build's VCS stamp when there is one.
func versionLine() string {
	commit := commit
	if bi, ok := debug.ReadBuildInfo(); ok && commit == "" {
		modified := false
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				commit = kv.Value[:min(12, len(kv.Value))]
			case "vcs.modified":
				modified = kv.Value == "true"
			}
		}
		if modified && commit != "" {
			commit += "+changes"
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("opx %s (commit %s, %s, %s/%s)", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// globalFlag reports whether flag comes before any command in args (where
// it is opx's own, not a command's to run).
func globalFlag(args []string, flag string) bool {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == flag:
			return true
		case a == "--account":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return false
		}
	}
	return false
}

func main() {
	os.Exit(run(os.Args))
}

// run executes the command line and returns the exit status.
func run(args []string) int {
	trace := newStartupTrace()
	rest := args[1:]
	// The name opx runs as: on Windows without .exe, in lower case.
	if self.Name(args[0]) == backend.LauncherName {
		// The daemon starting op for a service account or Connect server.
		return backend.RunLauncher(args)
	}
	if name := self.Name(args[0]); name == "op" || name == "vault" || name == "bao" {
		// Installed as op, vault or bao (opx shim install): the reads
		// through the daemon, the rest to the real program. A daemon whose
		// settings differ from this environment's is not asked: the real
		// program answers instead (the shim may not warn on stderr).
		paths, err := xdg.Resolve(os.Getenv)
		if err != nil {
			return fail(err)
		}
		values, err := readConfig(paths.ConfigFile)
		if err != nil {
			values = nil
		}
		if name == "op" {
			return shim.RunAsOP(args, paths, expectedSettings(values, paths.ConfigFile))
		}
		return shim.RunAsVault(name, args, paths, expectedSettings(values, paths.ConfigFile))
	}
	if strings.HasPrefix(self.Name(args[0]), "opx-authd") {
		rest = append([]string{"daemon"}, rest...)
	}
	switch {
	case globalFlag(rest, "--version"):
		fmt.Println(versionLine())
		return 0
	case len(rest) > 0 && rest[0] == "help":
		// opx help [COMMAND...] is opx [COMMAND...] --help.
		rest = append(append([]string(nil), rest[1:]...), "--help")
	}
	paths, err := xdg.Resolve(os.Getenv)
	if err != nil {
		return fail(err)
	}
	values, err := readConfig(paths.ConfigFile)
	if err != nil {
		return fail(err)
	}
	resolver := resolverOf(paths.ConfigFile, values)
	var beforeRequest func()
	if trace != nil {
		beforeRequest = trace.beforeRequest
	}
	env := cli.NewEnv(paths, beforeRequest, expectedSettings(values, paths.ConfigFile))
	env.Version = version
	which := commandIn(rest)
	lean := which != wholeGrammar && !asksForHelp(rest)
	parser, grammar, err := newParser(which, lean, env, resolver)
	if err != nil {
		return fail(err)
	}
	if len(rest) == 0 {
		// A bare opx: the usage, on stderr, as a usage error.
		parser.Stdout = os.Stderr
		parser.Exit = func(int) {}
		parser.Parse([]string{"--help"})
		return 2
	}
	ctx, err := parser.Parse(rest)
	if err != nil && lean {
		// The error may show help texts: parse again with them.
		if parser, grammar, err = newParser(which, false, env, resolver); err != nil {
			return fail(err)
		}
		ctx, err = parser.Parse(rest)
	}
	if err != nil {
		parser.Errorf("%s", cli.Printable(err.Error()))
		return 2
	}
	if ctx.Command() == "daemon" {
		// On Windows, a console made for the daemon alone (a logon
		// task's, a double-click's) is left, so that no window stays
		// open; what the daemon says from here on, these warnings
		// included, goes to its log.
		if _, err := console.Detach(paths.LogFile); err != nil {
			fmt.Fprintf(os.Stderr, "opx: warning: %v\n", err)
		}
		// The daemon is what config.json configures: say which keys in
		// it set nothing.
		{
			var flags []string
			for _, f := range ctx.Flags() {
				if !f.Hidden {
					flags = append(flags, f.Name)
				}
			}
			for _, msg := range unknownConfigKeys(values, flags) {
				fmt.Fprintf(os.Stderr, "opx: warning: %s: %s\n", paths.ConfigFile, msg)
			}
		}
	}
	err = ctx.Run(&grammar.Globals)
	env.Client.Close()
	env.NoStart.Close()
	if err != nil {
		return fail(err)
	}
	return 0
}

// fail prints err the way opx reports errors and returns the exit status.
func fail(err error) int {
	var exit *cli.ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	fmt.Fprintf(os.Stderr, "opx: error: %s\n", cli.Printable(err.Error()))
	var ce *client.Error
	if errors.As(err, &ce) && ce.Hint != "" {
		fmt.Fprintf(os.Stderr, "opx: hint: %s\n", cli.Printable(ce.Hint))
	}
	if errors.Is(err, daemon.ErrAlreadyRunning) {
		fmt.Fprintln(os.Stderr, "opx: hint: stop it with: opx stop (or opx restart to start one with these settings)")
		return daemon.ExitAlreadyRunning
	}
	return 1
}
