package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/xdg"
)

// LoginCmd is `opx login BACKEND`.
type LoginCmd struct {
	OnePassword LoginOnePasswordCmd `cmd:"" name:"1password" help:"Sign in to 1Password with the op CLI and make the account opx's default."`
	Vault       LoginVaultCmd       `cmd:"" help:"Log in to HashiCorp Vault (token, userpass or approle; credentials as refs)."`
	Bao         LoginBaoCmd         `cmd:"" help:"Log in to OpenBao (token, userpass or approle; credentials as refs)."`
}

// LoginOnePasswordCmd is `opx login 1password [--account X]`.
type LoginOnePasswordCmd struct {
	OPPath    string `name:"op-path" help:"The 1Password CLI program (default: op from PATH)." env:"OPX_OP_PATH" placeholder:"PATH"`
	NoDefault bool   `name:"no-default" help:"Sign in without making --account opx's default account."`
}

// Run signs in with `op signin` at the user's terminal, checks the result
// with `op whoami`, records the account as the default in config.json and,
// when a daemon runs with a locked session, unlocks it. A session token that
// op prints (manual sign-in without the desktop app) is kept for the daemon
// in a 0600 file, so that its op processes are signed in too.
func (c *LoginOnePasswordCmd) Run(g *Globals, env *Env) error {
	op := c.OPPath
	if op == "" {
		op = "op"
	}
	var acctArg []string
	if g.Account != "" {
		acctArg = []string{"--account=" + g.Account}
	}
	signin := exec.Command(op, append(acctArg, "signin")...)
	signin.Stdin, signin.Stderr = env.Stdin, env.Stderr
	var out bytes.Buffer
	signin.Stdout = &out
	if err := signin.Run(); err != nil {
		return &client.Error{Message: fmt.Sprintf("op signin failed: %v", err), Err: err,
			Hint: "check the account (--account) and that the 1Password CLI is installed and set up; see: op signin --help"}
	}
	sessions := parseSessionExports(out.Bytes())
	clear(out.Bytes())

	whoami := exec.Command(op, append(acctArg, "whoami", "--format=json")...)
	whoami.Env = append(os.Environ(), sessionEnv(sessions)...)
	var who, whoErr bytes.Buffer
	whoami.Stdout, whoami.Stderr = &who, &whoErr
	if err := whoami.Run(); err != nil {
		return &client.Error{Message: fmt.Sprintf("op whoami after sign-in failed: %s", strings.TrimSpace(whoErr.String())), Err: err}
	}
	var me struct {
		URL   string `json:"url"`
		Email string `json:"email"`
	}
	_ = json.Unmarshal(who.Bytes(), &me)

	if len(sessions) > 0 {
		if err := saveSessions(env.Paths, sessions); err != nil {
			return err
		}
	}
	previous := configString(env.Paths, "account")
	if g.Account != "" && !c.NoDefault && g.Account != previous {
		if err := setConfig(env.Paths, "account", g.Account); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.Stdout, "signed in to 1Password as %s (%s)\n", me.Email, me.URL)
	switch {
	case g.Account == "":
	case c.NoDefault && previous != "" && previous != g.Account:
		fmt.Fprintf(env.Stdout, "the default account stays %s (--no-default)\n", previous)
	case c.NoDefault:
	case previous == g.Account:
		fmt.Fprintf(env.Stdout, "%s stays opx's default account\n", g.Account)
	case previous != "":
		fmt.Fprintf(env.Stdout, "opx's default account changes from %s to %s (%s); --no-default signs in without changing it\n", previous, g.Account, env.Paths.ConfigFile)
	default:
		fmt.Fprintf(env.Stdout, "%s is now opx's default account (%s)\n", g.Account, env.Paths.ConfigFile)
	}
	if st, err := env.NoStart.Status(context.Background()); err == nil && st.Session.State == "locked" {
		res, err := env.NoStart.Unlock(context.Background())
		if err == nil && res.Success {
			fmt.Fprintln(env.Stdout, "the daemon's session is unlocked")
		}
	}
	return nil
}

// parseSessionExports finds `export OP_SESSION_x="token"` lines in what op
// signin printed.
func parseSessionExports(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		name, val, ok := strings.Cut(rest, "=")
		if !ok || !strings.HasPrefix(name, "OP_SESSION_") || !validName(name) {
			continue
		}
		out[name] = strings.Trim(val, `"'`)
	}
	return out
}

func sessionEnv(s map[string]string) []string {
	var env []string
	for k, v := range s {
		env = append(env, k+"="+v)
	}
	return env
}

// SessionsFile is where a login keeps op session tokens for the daemon (the
// daemon reads the same name in its data dir).
func SessionsFile(p xdg.Paths) string { return filepath.Join(p.DataDir, "op-sessions.json") }

func saveSessions(p xdg.Paths, s map[string]string) error {
	if err := xdg.EnsureDir(p.DataDir); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	defer clear(b)
	return xdg.WriteFileAtomic(SessionsFile(p), b, 0o600)
}

// setConfig sets one key of config.json, keeping the others.
// configString is config.json's string value of key, or "".
func configString(p xdg.Paths, key string) string {
	b, err := os.ReadFile(p.ConfigFile)
	if err != nil {
		return ""
	}
	var cfg map[string]any
	if json.Unmarshal(b, &cfg) != nil {
		return ""
	}
	v, _ := cfg[key].(string)
	return v
}

func setConfig(p xdg.Paths, key string, value any) error {
	cfg := map[string]any{}
	b, err := os.ReadFile(p.ConfigFile)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &cfg); err != nil {
			return &client.Error{Message: fmt.Sprintf("config %s is not a JSON object: %v", p.ConfigFile, err), Hint: "fix or remove the file, then log in again"}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return &client.Error{Message: fmt.Sprintf("read config: %v", err), Err: err}
	}
	cfg[key] = value
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := xdg.EnsureDir(p.ConfigDir); err != nil {
		return err
	}
	return xdg.WriteFileAtomic(p.ConfigFile, append(out, '\n'), 0o600)
}
