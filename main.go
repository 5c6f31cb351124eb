// Command opx is a local secrets broker: run as `opx daemon` (or through a
// link named opx-authd) it is the daemon; every other subcommand is a client
// of that daemon. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/daemon"
	"github.com/opxhq/opx/xdg"
)

// version is stamped by the Makefile (-ldflags -X main.version=...).
var version = "dev"

const description = `opx caches secrets from 1Password, Vault and OpenBao in a per-user daemon,
so that tools read them fast and without repeated prompts. The first command
starts the daemon.

Examples:
  opx read op://Private/db/password 'vault://secret/app#key'
  opx run --env DB_PASS=op://Private/db/password -- ./deploy.sh
  opx login 1password --account my
  opx status`

// cli is the whole command-line grammar.
type cli struct {
	client.Globals

	Read       client.ReadCmd       `cmd:"" help:"Print the values of secret references, one per line."`
	Run        client.RunCmd        `cmd:"" help:"Run a command with secrets in its environment."`
	Resolve    client.ResolveCmd    `cmd:"" help:"Print NAME=value for NAME=REF pairs."`
	Status     client.StatusCmd     `cmd:"" help:"Show the daemon's state and counters."`
	Unlock     client.UnlockCmd     `cmd:"" help:"Unlock the session (checks the backend sign-in)."`
	Lock       client.LockCmd       `cmd:"" help:"Lock the session now and wipe the cache."`
	Login      client.LoginCmd      `cmd:"" help:"Sign in to a backend and make it opx's default."`
	Policy     client.PolicyCmd     `cmd:"" help:"Check the access policy (policy.json)."`
	Audit      client.AuditCmd      `cmd:"" help:"Summarise access denials from the audit log; --interactive turns them into allow rules."`
	Service    client.ServiceCmd    `cmd:"" help:"Run the daemon as a systemd user service (Linux) or launchd agent (macOS)."`
	Completion client.CompletionCmd `cmd:"" help:"Print a shell completion script (bash, zsh, fish)."`
	Version    versionCmd           `cmd:"" help:"Print the version."`
	Daemon     daemon.Cmd           `cmd:"" help:"Run the daemon (also: the opx-authd link)."`
}

type versionCmd struct{}

func (versionCmd) Run(env *client.Env) error {
	_, err := fmt.Fprintf(env.Stdout, "opx %s\n", version)
	return err
}

func main() {
	os.Exit(run(os.Args))
}

// run executes the command line and returns the exit status.
func run(args []string) int {
	rest := args[1:]
	if strings.HasPrefix(filepath.Base(args[0]), "opx-authd") {
		rest = append([]string{"daemon"}, rest...)
	}
	paths, err := xdg.Resolve(os.Getenv)
	if err != nil {
		return fail(err)
	}
	resolver, err := configResolver(paths.ConfigFile)
	if err != nil {
		return fail(err)
	}
	var grammar cli
	env := client.NewEnv(paths)
	parser, err := kong.New(&grammar,
		kong.Name("opx"),
		kong.Description(description),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Resolvers(resolver),
		kong.Bind(env, daemon.BuildInfo{Version: version}),
	)
	if err != nil {
		return fail(err)
	}
	ctx, err := parser.Parse(rest)
	if err != nil {
		parser.Errorf("%s", client.Printable(err.Error()))
		return 2
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
	var exit *client.ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	fmt.Fprintf(os.Stderr, "opx: error: %s\n", client.Printable(err.Error()))
	var ce *client.Error
	if errors.As(err, &ce) && ce.Hint != "" {
		fmt.Fprintf(os.Stderr, "opx: hint: %s\n", client.Printable(ce.Hint))
	}
	if errors.Is(err, daemon.ErrAlreadyRunning) {
		return daemon.ExitAlreadyRunning
	}
	return 1
}
