package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
)

// vaultEnvNames are the VAULT_* (and BAO_*) variables opx reads: the rest
// of vault/api's (VAULT_AGENT_ADDR, VAULT_PROXY_ADDR, VAULT_HEADERS,
// VAULT_MAX_RETRIES, ...) are not opx's settings.
var vaultEnvNames = []string{"ADDR", "TOKEN", "NAMESPACE", "CACERT", "CAPATH", "CLIENT_CERT", "CLIENT_KEY", "TLS_SERVER_NAME", "SKIP_VERIFY"}

var (
	vaultEnvMu   sync.RWMutex
	vaultEnvKept map[string]string // set by TakeVaultEnv
)

// TakeVaultEnv keeps the VAULT_* and BAO_* variables opx documents for
// VaultEnv, and removes every VAULT_* and BAO_* variable from the process
// environment, so that vault/api, whose defaults read many more, sees none:
// each client is built from opx's settings alone, and a BAO_* setting never
// reaches a Vault client or the reverse. The daemon calls it at start.
func TakeVaultEnv() {
	kept := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		prefix, name, ok := strings.Cut(k, "_")
		if !ok || prefix != "VAULT" && prefix != "BAO" {
			continue
		}
		for _, n := range vaultEnvNames {
			if name == n {
				kept[k] = v
			}
		}
		os.Unsetenv(k)
	}
	vaultEnvMu.Lock()
	vaultEnvKept = kept
	vaultEnvMu.Unlock()
}

// VaultEnv is the environment variable name (VAULT_ADDR, BAO_TOKEN, ...):
// as TakeVaultEnv kept it, or from the environment before it ran.
func VaultEnv(name string) string {
	vaultEnvMu.RLock()
	defer vaultEnvMu.RUnlock()
	if vaultEnvKept != nil {
		return vaultEnvKept[name]
	}
	return os.Getenv(name)
}

// Vault and OpenBao settings: config.json's "vault" and "bao" objects, and
// the settings a client sends to POST /v1/backend/verify.

// VaultConfig is the "vault" (or "bao") object of config.json. Credentials
// are references (resolved through the daemon's other backends at login
// time), never values; a literal token lives only in the 0600 token file.
type VaultConfig struct {
	Address       string `json:"address,omitempty"`
	Namespace     string `json:"namespace,omitempty"`
	Method        string `json:"method,omitempty"`     // token (default), userpass, approle
	AuthMount     string `json:"auth_mount,omitempty"` // default: the method's name
	TokenRef      string `json:"token_ref,omitempty"`
	UsernameRef   string `json:"username_ref,omitempty"`
	PasswordRef   string `json:"password_ref,omitempty"`
	RoleIDRef     string `json:"role_id_ref,omitempty"`
	SecretIDRef   string `json:"secret_id_ref,omitempty"`
	CACert        string `json:"ca_cert,omitempty"`
	CAPath        string `json:"ca_path,omitempty"`
	ClientCert    string `json:"client_cert,omitempty"`
	ClientKey     string `json:"client_key,omitempty"`
	TLSServerName string `json:"tls_server_name,omitempty"`
	SkipVerify    bool   `json:"skip_verify,omitempty"`
}

// EnvPrefix is the environment prefix of kind: VAULT or BAO.
func EnvPrefix(kind string) string {
	if kind == SchemeBao {
		return "BAO"
	}
	return "VAULT"
}

// LoadVaultConfig returns the kind's settings: config.json's object, then the
// VAULT_* (or BAO_*) environment for what the file leaves out.
func LoadVaultConfig(kind, configFile string) (VaultConfig, error) {
	var file struct {
		Vault *VaultConfig `json:"vault"`
		Bao   *VaultConfig `json:"bao"`
	}
	b, err := os.ReadFile(configFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return VaultConfig{}, fmt.Errorf("read config %s: %w", configFile, err)
	}
	if err == nil {
		if err := json.Unmarshal(b, &file); err != nil {
			return VaultConfig{}, fmt.Errorf("config %s: %w", configFile, err)
		}
	}
	var c VaultConfig
	if kind == SchemeBao && file.Bao != nil {
		c = *file.Bao
	} else if kind == SchemeVault && file.Vault != nil {
		c = *file.Vault
	}
	p := EnvPrefix(kind)
	env := func(dst *string, name string) {
		if *dst == "" {
			*dst = VaultEnv(p + "_" + name)
		}
	}
	env(&c.Address, "ADDR")
	env(&c.Namespace, "NAMESPACE")
	env(&c.CACert, "CACERT")
	env(&c.CAPath, "CAPATH")
	env(&c.ClientCert, "CLIENT_CERT")
	env(&c.ClientKey, "CLIENT_KEY")
	env(&c.TLSServerName, "TLS_SERVER_NAME")
	if !c.SkipVerify {
		c.SkipVerify, _ = strconv.ParseBool(VaultEnv(p + "_SKIP_VERIFY"))
	}
	if c.Method == "" {
		c.Method = "token"
	}
	if c.AuthMount == "" {
		c.AuthMount = c.Method
	}
	return c, nil
}

// Validate reports a configuration that cannot work, saying what to fix.
func (c VaultConfig) Validate(kind string) error {
	switch c.Method {
	case "token":
	case "userpass":
		if c.UsernameRef == "" || c.PasswordRef == "" {
			return fmt.Errorf("%s userpass login needs username_ref and password_ref", kind)
		}
	case "approle":
		if c.RoleIDRef == "" || c.SecretIDRef == "" {
			return fmt.Errorf("%s approle login needs role_id_ref and secret_id_ref", kind)
		}
	default:
		return fmt.Errorf("%s: unknown auth method %q (want token, userpass or approle)", kind, c.Method)
	}
	return nil
}

// CredentialRefs are the refs the login method reads, by their config.json
// key: token_ref for token, username_ref and password_ref for userpass,
// role_id_ref and secret_id_ref for approle.
func (c VaultConfig) CredentialRefs() [][2]string {
	var out [][2]string
	add := func(key, ref string) {
		if ref != "" {
			out = append(out, [2]string{key, ref})
		}
	}
	switch c.Method {
	case "", "token":
		add("token_ref", c.TokenRef)
	case "userpass":
		add("username_ref", c.UsernameRef)
		add("password_ref", c.PasswordRef)
	case "approle":
		add("role_id_ref", c.RoleIDRef)
		add("secret_id_ref", c.SecretIDRef)
	}
	return out
}

// OtherServer is the other of vault and bao.
func OtherServer(kind string) string {
	if kind == SchemeBao {
		return SchemeVault
	}
	return SchemeBao
}

// LoginCycle reports a login of kind (settings c) that reads a credential
// from the other server, whose login (settings other) reads one from kind:
// each login would wait for the other. The error names the chain.
func LoginCycle(kind string, c, other VaultConfig) error {
	o := OtherServer(kind)
	for _, mine := range c.CredentialRefs() {
		if !hasScheme(mine[1], o) {
			continue
		}
		for _, theirs := range other.CredentialRefs() {
			if hasScheme(theirs[1], kind) {
				return fmt.Errorf("the %s login reads its %s from %s, and the %s login reads its %s from %s: each login needs the other; keep one of the two credentials in 1Password (op://) or a token file", kind, mine[0], mine[1], o, theirs[0], theirs[1])
			}
		}
	}
	return nil
}

func hasScheme(ref, scheme string) bool { return strings.HasPrefix(ref, scheme+"://") }
