package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/xdg"
)

// LoginServerCmd is `opx login vault` and `opx login bao`: the flags are the
// same, the kind comes from the subcommand.
type LoginServerCmd struct {
	Address     string `help:"Server address, e.g. https://vault.example.com:8200 (default: the config's, then VAULT_ADDR or BAO_ADDR)." placeholder:"URL"`
	Namespace   string `help:"Namespace (Vault Enterprise, OpenBao)." placeholder:"NS"`
	Method      string `help:"Auth method: ${enum}." enum:"token,userpass,approle" default:"token"`
	AuthMount   string `help:"Path the auth method is mounted at (default: the method's name)." placeholder:"MOUNT"`
	TokenRef    string `help:"Reference to the token, e.g. op://Private/vault/token (method token)." placeholder:"REF"`
	UsernameRef string `help:"Reference to the user name (method userpass)." placeholder:"REF"`
	PasswordRef string `help:"Reference to the password (method userpass)." placeholder:"REF"`
	RoleIDRef   string `name:"role-id-ref" help:"Reference to the AppRole role_id (method approle)." placeholder:"REF"`
	SecretIDRef string `name:"secret-id-ref" help:"Reference to the AppRole secret_id (method approle)." placeholder:"REF"`
	CACert      string `name:"ca-cert" type:"path" help:"PEM file of the CA that signed the server's certificate." placeholder:"FILE"`
	SkipVerify  bool   `name:"tls-skip-verify" help:"Do not verify the server's certificate (testing only)."`
}

// LoginVaultCmd is `opx login vault`.
type LoginVaultCmd struct{ LoginServerCmd }

// LoginBaoCmd is `opx login bao`.
type LoginBaoCmd struct{ LoginServerCmd }

// Run logs in to Vault.
func (c *LoginVaultCmd) Run(env *Env) error { return c.login(api.SchemeVault, env) }

// Run logs in to OpenBao.
func (c *LoginBaoCmd) Run(env *Env) error { return c.login(api.SchemeBao, env) }

// login checks the credentials against the server, then stores what the
// daemon needs: the settings and references in config.json, a literal token
// only in a 0600 file. A running daemon notices the change on its next read.
func (c *LoginServerCmd) login(kind string, env *Env) error {
	ctx := context.Background()
	cfg, err := c.config(kind, env.Paths)
	if err != nil {
		return err
	}
	if err := cfg.Validate(kind); err != nil {
		return &client.Error{Message: err.Error(), Hint: "see: opx login " + kind + " --help"}
	}
	tokenFile := filepath.Join(env.Paths.DataDir, kind+"-token")
	var literal string
	if cfg.Method == "token" && cfg.TokenRef == "" {
		if literal, err = readToken(env, kind); err != nil {
			return err
		}
	}
	// The daemon tries the login: the client needs no Vault client, and
	// credential refs are read there, under the policy.
	res, err := env.Client.Verify(ctx, api.VerifyRequest{Kind: kind, Config: cfg, Token: literal})
	if err != nil {
		switch {
		case client.IsCode(err, api.CodeUnauthorized) && literal != "":
			return &client.Error{Message: fmt.Sprintf("%s rejected the token: %v", kind, err), Err: err}
		case client.IsCode(err, api.CodeUnauthorized):
			return &client.Error{Message: fmt.Sprintf("%s login failed: %v", kind, err), Err: err}
		case client.IsCode(err, api.CodeBackendError), client.IsCode(err, api.CodeBackendTimeout):
			return &client.Error{Message: fmt.Sprintf("cannot check the login with %s at %s: %v", kind, cfg.Address, err), Err: err}
		}
		return err
	}
	if literal != "" {
		if err := xdg.EnsureDir(env.Paths.DataDir); err != nil {
			return err
		}
		if err := xdg.WriteFileAtomic(tokenFile, []byte(literal+"\n"), 0o600); err != nil {
			return err
		}
	} else if err := os.Remove(tokenFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := setConfig(env.Paths, kind, stored(cfg)); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "logged in to %s at %s as %s (method %s)\n", kind, cfg.Address, Printable(res.DisplayName), cfg.Method)
	if literal != "" {
		fmt.Fprintf(env.Stdout, "the token is kept in %s (mode 0600)\n", tokenFile)
	}
	return c.useMulti(kind, env)
}

// useMulti makes sure the daemon will read kind:// refs: a config that names
// no backend, or only opcli, is switched to multi.
func (c *LoginServerCmd) useMulti(kind string, env *Env) error {
	var cfg map[string]any
	if b, err := os.ReadFile(env.Paths.ConfigFile); err == nil {
		json.Unmarshal(b, &cfg)
	}
	be, _ := cfg["backend"].(string)
	if be == "multi" || be == kind {
		return nil
	}
	if be == "" || be == "opcli" {
		if err := setConfig(env.Paths, "backend", "multi"); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "config.json now selects the multi backend (1Password, Vault and OpenBao by scheme)\n")
	}
	st, err := env.NoStart.Status(context.Background())
	if err != nil || st.Backend == "multi" || st.Backend == kind {
		return nil
	}
	// The running daemon cannot read kind:// refs: stop it (it is this
	// user's own), and the next opx command starts one with the new config.
	fmt.Fprintf(env.Stdout, "stopping the running daemon (pid %d, backend %s); the next opx command starts one with the multi backend\n", st.PID, st.Backend)
	if err := signalStop(env, st.PID); err != nil {
		return &client.Error{Message: fmt.Sprintf("stop the daemon: %v", err), Hint: fmt.Sprintf("stop it yourself: kill %d", st.PID)}
	}
	env.NoStart.Close()
	for range 100 {
		if _, err := os.Stat(env.Paths.SocketPath); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &client.Error{Message: fmt.Sprintf("the daemon (pid %d) did not stop within 5 s", st.PID)}
}

// config starts from config.json's object for kind and applies the flags.
func (c *LoginServerCmd) config(kind string, p xdg.Paths) (api.VaultConfig, error) {
	cfg, err := api.LoadVaultConfig(kind, p.ConfigFile)
	if err != nil {
		return cfg, &client.Error{Message: err.Error()}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Address, c.Address)
	set(&cfg.Namespace, c.Namespace)
	set(&cfg.CACert, c.CACert)
	cfg.Method = c.Method
	cfg.AuthMount = c.AuthMount
	if cfg.AuthMount == "" {
		cfg.AuthMount = c.Method
	}
	cfg.TokenRef, cfg.UsernameRef, cfg.PasswordRef, cfg.RoleIDRef, cfg.SecretIDRef = c.TokenRef, c.UsernameRef, c.PasswordRef, c.RoleIDRef, c.SecretIDRef
	cfg.SkipVerify = cfg.SkipVerify || c.SkipVerify
	if cfg.Address == "" {
		return cfg, &client.Error{Message: "no server address", Hint: fmt.Sprintf("pass --address URL or set %s_ADDR", strings.ToUpper(kind))}
	}
	for _, ref := range []string{c.TokenRef, c.UsernameRef, c.PasswordRef, c.RoleIDRef, c.SecretIDRef} {
		if ref != "" {
			if _, err := api.ParseRef(ref); err != nil {
				return cfg, &client.Error{Message: err.Error()}
			}
		}
	}
	return cfg, nil
}

// stored is what config.json keeps: settings and references, no values.
func stored(c api.VaultConfig) api.VaultConfig {
	if c.AuthMount == c.Method {
		c.AuthMount = ""
	}
	return c
}

// readToken reads a literal token: from the terminal without echo, or the
// first line of standard input.
func readToken(env *Env, kind string) (string, error) {
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(env.Stderr, "%s token: ", kind)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", &client.Error{Message: fmt.Sprintf("read token: %v", err), Err: err}
		}
		defer clear(b)
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", &client.Error{Message: "empty token"}
	}
	line, err := bufio.NewReader(env.Stdin).ReadString('\n')
	if t := strings.TrimSpace(line); t != "" {
		return t, nil
	}
	if err != nil {
		return "", &client.Error{Message: "no token on standard input", Hint: "pipe the token in, or use --token-ref REF", Err: err}
	}
	return "", &client.Error{Message: "empty token on standard input"}
}
