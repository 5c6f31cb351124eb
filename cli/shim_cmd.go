package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/self"
	"github.com/opxhq/opx/xdg"
)

// ShimCmd is `opx shim`: opx installed as op, vault and bao, so that the
// tools that run `op read`, `op inject`, `vault kv get` or `bao read` get
// opx's batching and cache unchanged.
type ShimCmd struct {
	Install   ShimInstallCmd   `cmd:"" help:"Link op, vault and bao to opx in DIR; put DIR first in PATH."`
	Status    ShimStatusCmd    `cmd:"" help:"Say which names are shimmed and which real program each passes the rest to."`
	Uninstall ShimUninstallCmd `cmd:"" help:"Remove the links opx shim install made."`
}

// shimNames are the programs opx can stand in for.
var shimNames = []string{"op", "vault", "bao"}

// ShimDir is where the shims go by default.
func ShimDir(p xdg.Paths) string { return filepath.Join(p.DataDir, "shims") }

// ShimInstallCmd is `opx shim install [DIR]`.
type ShimInstallCmd struct {
	Dir   string   `arg:"" optional:"" type:"path" help:"Directory for the links (default: the data directory's shims)." placeholder:"DIR"`
	Name  []string `help:"Link only these names (op, vault, bao), even when no real one is on PATH (default: each name whose real program is on PATH)." enum:"op,vault,bao" sep:"," placeholder:"NAME"`
	Force bool     `help:"Link every name even when no real one is on PATH (what opx serves works through the daemon; the rest fails as 'command not found')."`
}

// Run links each name to opx.
func (c *ShimInstallCmd) Run(env *Env) error {
	dir := c.Dir
	if dir == "" {
		dir = ShimDir(env.Paths)
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return &client.Error{Message: fmt.Sprintf("find opx's own executable: %v", err), Err: err}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &client.Error{Message: err.Error(), Err: err}
	}
	made := 0
	names, asked := shimNames, len(c.Name) > 0
	if asked {
		names = c.Name
	}
	for _, name := range names {
		real, err := self.LookPath(name)
		if err != nil && !c.Force && !asked {
			fmt.Fprintf(env.Stdout, "%s: not linked: no real %s on PATH to pass the rest of its commands to (--name %s or --force links it anyway)\n", name, name, name)
			continue
		}
		link := shimPath(dir, name)
		if _, err := os.Lstat(link); err == nil && !self.IsOpx(link) && !danglingOpx(link) {
			// A user's own op (or a link to it): never replaced.
			return &client.Error{Message: fmt.Sprintf("%s exists and is not opx", link), Hint: "choose another directory, or remove it yourself"}
		}
		if err := linkShim(exe, dir, name, link); err != nil {
			return err
		}
		made++
		if real != "" {
			fmt.Fprintf(env.Stdout, "%s -> opx (%s); the rest of %s's commands go to %s\n", link, exe, name, real)
		} else {
			fmt.Fprintf(env.Stdout, "%s -> opx (%s); no real %s: only %s will work\n", link, exe, name, ShimServes[name])
		}
	}
	if made == 0 {
		return nil
	}
	fmt.Fprintf(env.Stdout, "\nPut %s first in PATH:\n%s", dir, pathAdvice(dir))
	return nil
}

// ShimStatusCmd is `opx shim status [DIR]`.
type ShimStatusCmd struct {
	Dir string `arg:"" optional:"" type:"path" help:"Directory of the links (default: the data directory's shims)." placeholder:"DIR"`
}

// Run says, for each name, whether DIR holds opx as it, whether PATH finds
// that first, and which real program gets the rest.
func (c *ShimStatusCmd) Run(env *Env) error {
	dir := c.Dir
	if dir == "" {
		dir = ShimDir(env.Paths)
	}
	for _, line := range shimStatus(env, dir) {
		fmt.Fprintln(env.Stdout, line)
	}
	return nil
}

// shimScheme is the scheme of the refs the shim of name reads.
func shimScheme(name string) string {
	if name == "op" {
		return api.SchemeOP
	}
	return name
}

// shimStatus is one line per shim name: where it is, whether PATH finds
// it first, where the rest goes, and whether the running daemon answers
// the calls made from this environment (when it does not, every call goes
// to the real program, and the line says why).
func shimStatus(env *Env, dir string) []string {
	var out []string
	for _, name := range shimNames {
		link := shimPath(dir, name)
		if !self.IsOpx(link) {
			out = append(out, fmt.Sprintf("%s: not shimmed (no opx at %s)", name, link))
			continue
		}
		line := fmt.Sprintf("%s: shimmed at %s", name, link)
		switch first := firstOnPath(name); {
		case first == "":
			line += fmt.Sprintf("; but %s is not on PATH: put it first", dir)
		case first != link && !self.IsOpx(first):
			line += fmt.Sprintf("; but PATH finds %s first: put %s first in PATH", first, dir)
		}
		if real, err := self.LookPath(name); err == nil {
			line += "; the rest goes to " + real
		} else {
			line += fmt.Sprintf("; no real %s on PATH: only %s work", name, ShimServes[name])
		}
		line += shimServing(env, name)
		out = append(out, line)
	}
	return out
}

// ShimUninstallCmd is `opx shim uninstall [DIR]`.
type ShimUninstallCmd struct {
	Dir string `arg:"" optional:"" type:"path" help:"Directory of the links (default: the data directory's shims)." placeholder:"DIR"`
}

// Run removes the links that are opx, and nothing else.
func (c *ShimUninstallCmd) Run(env *Env) error {
	dir := c.Dir
	if dir == "" {
		dir = ShimDir(env.Paths)
	}
	for _, name := range shimNames {
		link := shimPath(dir, name)
		if !self.IsOpx(link) && !danglingOpx(link) {
			continue
		}
		note, err := removeShim(link)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return &client.Error{Message: err.Error(), Err: err}
		}
		fmt.Fprintf(env.Stdout, "removed %s%s\n", link, note)
	}
	return nil
}

// pathQuote quotes a directory for sh and fish when it needs quoting.
func pathQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]#~;&|<>(){}!") {
		return s
	}
	return shellQuote(s)
}

// shimServing says whether the running daemon answers name's calls made
// from this environment: "" when it does, or when no daemon runs (the
// first call starts one with this environment's settings).
func shimServing(env *Env, name string) string {
	if env == nil || env.Client == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	why, err := env.Client.Serves(ctx, shimScheme(name))
	switch {
	case err != nil && isNotRunning(err):
		return ""
	case err != nil:
		return fmt.Sprintf("; the daemon could not be asked whether it answers %s's calls: %v", name, err)
	case len(why) > 0:
		return fmt.Sprintf("; but the running daemon has %s, so the %s calls opx would answer go to the real %s as well: to have opx answer them, run: opx restart",
			strings.Join(why, ", "), name, name)
	}
	return ""
}

// ShimServes says, by the name a shim runs as, what it serves itself; it
// passes the rest to the real program.
var ShimServes = map[string]string{
	"op":    "op read, op inject and op run",
	"vault": "vault kv get and vault read with -field or -format=json",
	"bao":   "bao kv get and bao read with -field or -format=json",
}
