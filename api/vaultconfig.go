package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

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
			*dst = os.Getenv(p + "_" + name)
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
		c.SkipVerify, _ = strconv.ParseBool(os.Getenv(p + "_SKIP_VERIFY"))
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
