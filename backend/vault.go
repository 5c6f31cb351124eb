package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vapi "github.com/hashicorp/vault/api"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/xdg"
)

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

// envPrefix is VAULT or BAO.
func envPrefix(kind string) string {
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
	p := envPrefix(kind)
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

// NewVaultClient returns a vault/api client for c, with no token set and
// none of the VAULT_* environment applied beyond what c holds.
func NewVaultClient(c VaultConfig) (*vapi.Client, error) {
	cfg := vapi.DefaultConfig()
	cfg.Address = c.Address
	cfg.MaxRetries = 1
	cfg.MinRetryWait = 100 * time.Millisecond
	cfg.MaxRetryWait = 300 * time.Millisecond
	cfg.Timeout = 30 * time.Second
	if err := cfg.ConfigureTLS(&vapi.TLSConfig{
		CACert: c.CACert, CAPath: c.CAPath, ClientCert: c.ClientCert, ClientKey: c.ClientKey,
		TLSServerName: c.TLSServerName, Insecure: c.SkipVerify,
	}); err != nil {
		return nil, fmt.Errorf("TLS settings: %w", err)
	}
	client, err := vapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	client.ClearToken()
	client.ClearNamespace()
	if c.Namespace != "" {
		client.SetNamespace(c.Namespace)
	}
	return client, nil
}

// Resolver reads a credential reference for a login.
type Resolver func(ctx context.Context, ref string) ([]byte, error)

// Login authenticates client with c's method, resolving credential refs with
// resolve; token comes from the token file, the environment or
// ~/.vault-token when no token_ref is set. It returns the auth secret, for
// renewal.
func Login(ctx context.Context, kind string, client *vapi.Client, c VaultConfig, resolve Resolver, tokenFile string) (*vapi.Secret, error) {
	get := func(ref string) (string, error) {
		b, err := resolve(ctx, ref)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", ref, err)
		}
		s := strings.TrimSpace(string(b))
		clear(b)
		return s, nil
	}
	switch c.Method {
	case "token":
		tok, err := literalToken(kind, tokenFile)
		if c.TokenRef != "" {
			tok, err = get(c.TokenRef)
		}
		if err != nil {
			return nil, err
		}
		client.SetToken(tok)
		s, err := client.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return nil, authError(kind, "token lookup", err)
		}
		ttl, _ := s.TokenTTL()
		renewable, _ := s.TokenIsRenewable()
		return &vapi.Secret{Auth: &vapi.SecretAuth{ClientToken: tok, Renewable: renewable, LeaseDuration: int(ttl / time.Second)}}, nil
	case "userpass":
		user, err := get(c.UsernameRef)
		if err != nil {
			return nil, err
		}
		pass, err := get(c.PasswordRef)
		if err != nil {
			return nil, err
		}
		return writeLogin(ctx, kind, client, "auth/"+c.AuthMount+"/login/"+user, map[string]any{"password": pass})
	case "approle":
		role, err := get(c.RoleIDRef)
		if err != nil {
			return nil, err
		}
		sid, err := get(c.SecretIDRef)
		if err != nil {
			return nil, err
		}
		return writeLogin(ctx, kind, client, "auth/"+c.AuthMount+"/login", map[string]any{"role_id": role, "secret_id": sid})
	}
	return nil, c.Validate(kind)
}

func writeLogin(ctx context.Context, kind string, client *vapi.Client, path string, body map[string]any) (*vapi.Secret, error) {
	client.ClearToken()
	s, err := client.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		return nil, authError(kind, "login", err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, api.Errorf(api.CodeUnauthorized, "%s login at %s returned no token", kind, path)
	}
	client.SetToken(s.Auth.ClientToken)
	return s, nil
}

// literalToken finds a token stored by opx login, or the CLI's usual places.
func literalToken(kind, tokenFile string) (string, error) {
	if tokenFile != "" {
		if b, err := xdg.ReadPrivateFile(tokenFile); err == nil {
			defer clear(b)
			return strings.TrimSpace(string(b)), nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	if t := os.Getenv(envPrefix(kind) + "_TOKEN"); t != "" {
		return t, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		if b, err := os.ReadFile(filepath.Join(home, "."+kind+"-token")); err == nil {
			defer clear(b)
			return strings.TrimSpace(string(b)), nil
		}
	}
	return "", api.Errorf(api.CodeUnauthorized, "no %s token: run opx login %s, or set %s_TOKEN", kind, kind, envPrefix(kind))
}

// authError maps a failed login or lookup.
func authError(kind, what string, err error) error {
	var re *vapi.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusBadRequest || re.StatusCode == http.StatusUnauthorized) {
		return api.Errorf(api.CodeUnauthorized, "%s %s failed: %s; run: opx login %s", kind, what, strings.Join(re.Errors, "; "), kind)
	}
	return transportError(kind, err)
}

func transportError(kind string, err error) error {
	var re *vapi.ResponseError
	if errors.As(err, &re) {
		return api.Errorf(api.CodeBackendError, "%s answered %d: %s", kind, re.StatusCode, strings.Join(re.Errors, "; "))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return api.Errorf(api.CodeBackendTimeout, "%s did not answer in time", kind)
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "dial") {
		msg = "cannot connect" + msg[i:]
	}
	return api.Errorf(api.CodeBackendError, "%s: %s", kind, msg)
}

// Vault reads vault:// (or bao://) refs from a HashiCorp Vault (or OpenBao)
// server. Refs that are fields of one secret cost one HTTP read, within a
// batch and across concurrent ones. A login made by `opx login` is picked up
// without a restart: the config and token files are watched.
type Vault struct {
	kind       string
	configFile string
	tokenFile  string
	resolve    Resolver
	log        zerolog.Logger
	onLogin    func(backend, method string, err error)

	mu      sync.Mutex
	client  *vapi.Client
	stamp   string // config and token file stamps the client was made from
	watcher *vapi.LifetimeWatcher
	mounts  map[string]mountInfo // by the path asked about

	configured      bool   // an address is known (see Configured)
	configuredStamp string // config.json stamp that answer is for

	sf    singleflight.Group
	calls atomic.Uint64
}

type mountInfo struct {
	path string // "secret/"
	kv2  bool
}

// NewVault returns the backend for kind ("vault" or "bao").
func NewVault(kind, configFile, tokenFile string, resolve Resolver, log zerolog.Logger) *Vault {
	return &Vault{kind: kind, configFile: configFile, tokenFile: tokenFile, resolve: resolve, log: log, mounts: map[string]mountInfo{}}
}

// Name implements Backend.
func (v *Vault) Name() string { return v.kind }

// Check implements Backend.
func (v *Vault) Check(ref Ref) error {
	if ref.Scheme != v.kind {
		return errNotHandled(v, ref)
	}
	return nil
}

// Configured reports whether a server address is known. It is asked for
// every ref, so the answer is kept until config.json changes.
func (v *Vault) Configured() bool {
	stamp := fileStamp(v.configFile)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.configuredStamp != stamp {
		c, err := LoadVaultConfig(v.kind, v.configFile)
		v.configured, v.configuredStamp = err == nil && c.Address != "", stamp
	}
	return v.configured
}

// Calls implements Backend: HTTP reads of secrets.
func (v *Vault) Calls() uint64 { return v.calls.Load() }

// Close implements Backend.
func (v *Vault) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.watcher != nil {
		v.watcher.Stop()
		v.watcher = nil
	}
	return nil
}

func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "-"
	}
	return fi.ModTime().String() + "/" + strconv.FormatInt(fi.Size(), 10)
}

// ensureClient returns a logged-in client, making one when there is none,
// the login was dropped, or the config or token file changed.
func (v *Vault) ensureClient(ctx context.Context) (*vapi.Client, error) {
	stamp := fileStamp(v.configFile) + "|" + fileStamp(v.tokenFile)
	v.mu.Lock()
	if v.client != nil && v.stamp == stamp {
		c := v.client
		v.mu.Unlock()
		return c, nil
	}
	v.mu.Unlock()
	c, err, _ := v.sf.Do("login", func() (any, error) { return v.login(ctx, stamp) })
	if err != nil {
		return nil, err
	}
	return c.(*vapi.Client), nil
}

// login makes a new client and logs in; coalesced by ensureClient.
func (v *Vault) login(ctx context.Context, stamp string) (*vapi.Client, error) {
	cfg, err := LoadVaultConfig(v.kind, v.configFile)
	if err != nil {
		return nil, api.Errorf(api.CodeBackendError, "%v", err)
	}
	if cfg.Address == "" {
		return nil, notConfigured(v.kind)
	}
	if err := cfg.Validate(v.kind); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "%v", err)
	}
	client, err := NewVaultClient(cfg)
	if err != nil {
		return nil, api.Errorf(api.CodeBackendError, "%s client: %v", v.kind, err)
	}
	auth, err := Login(ctx, v.kind, client, cfg, v.resolve, v.tokenFile)
	if v.onLogin != nil {
		v.onLogin(v.kind, cfg.Method, err)
	}
	if err != nil {
		v.log.Warn().Str("backend", v.kind).Str("method", cfg.Method).Err(err).Msg("login failed")
		return nil, err
	}
	v.log.Info().Str("backend", v.kind).Str("method", cfg.Method).Str("address", cfg.Address).Msg("logged in")
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.watcher != nil {
		v.watcher.Stop()
		v.watcher = nil
	}
	v.client, v.stamp, v.mounts = client, stamp, map[string]mountInfo{}
	if auth.Auth != nil && auth.Auth.Renewable && auth.Auth.LeaseDuration > 0 {
		w, err := client.NewLifetimeWatcher(&vapi.LifetimeWatcherInput{Secret: auth})
		if err == nil {
			v.watcher = w
			go w.Start()
			go v.watch(w, client)
		}
	}
	return client, nil
}

// watch follows a token's renewals; when the token can no longer be renewed
// the client is dropped, so the next read logs in again.
func (v *Vault) watch(w *vapi.LifetimeWatcher, client *vapi.Client) {
	for {
		select {
		case err := <-w.DoneCh():
			v.log.Info().Str("backend", v.kind).AnErr("reason", err).Msg("token renewal ended; will log in again on the next read")
			v.drop(client)
			return
		case r := <-w.RenewCh():
			ttl := 0
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				ttl = r.Secret.Auth.LeaseDuration
			}
			v.log.Debug().Str("backend", v.kind).Int("ttl_seconds", ttl).Msg("token renewed")
		}
	}
}

// drop forgets client if it is still the current one.
func (v *Vault) drop(client *vapi.Client) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.client == client {
		v.client = nil
		if v.watcher != nil {
			v.watcher.Stop()
			v.watcher = nil
		}
	}
}

func notConfigured(kind string) error {
	return api.Errorf(api.CodeBadRequest, "no %s server is configured: run opx login %s --address URL, or set %s_ADDR", kind, kind, envPrefix(kind))
}

// Validate implements Backend: a token lookup.
func (v *Vault) Validate(ctx context.Context, _ []string) error {
	client, err := v.ensureClient(ctx)
	if err != nil {
		return err
	}
	if _, err := client.Auth().Token().LookupSelfWithContext(ctx); err != nil {
		v.drop(client)
		return authError(v.kind, "token lookup", err)
	}
	return nil
}

// Read implements Backend.
func (v *Vault) Read(ctx context.Context, _ string, refs []string) []Result {
	out := make([]Result, len(refs))
	parsed := make([]Ref, len(refs))
	byPath := map[string][]int{}
	for i, raw := range refs {
		r, err := ParseRef(raw)
		if err != nil {
			out[i].Err = err
			continue
		}
		parsed[i] = r
		key := r.Path + "?" + strconv.Itoa(r.Version)
		byPath[key] = append(byPath[key], i)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, idx := range byPath {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := parsed[idx[0]]
			data, err := v.readSecret(ctx, r.Path, r.Version)
			for _, i := range idx {
				if err != nil {
					out[i].Err = err
					continue
				}
				out[i].Value, out[i].Err = extract(v.kind, parsed[i], data)
			}
		}()
	}
	wg.Wait()
	return out
}

// extract takes ref's field (strings as they are, other values as JSON) or
// the whole secret as a JSON object.
func extract(kind string, ref Ref, data map[string]any) ([]byte, error) {
	if ref.KeyField == "" {
		b, err := json.Marshal(data)
		if err != nil {
			return nil, api.Errorf(api.CodeBackendError, "encode %s secret: %v", kind, err)
		}
		return b, nil
	}
	val, ok := data[ref.KeyField]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "%s: no field %q in the secret at %s", ref.Raw, ref.KeyField, ref.Path)
	}
	if s, ok := val.(string); ok {
		return []byte(s), nil
	}
	b, err := json.Marshal(val)
	if err != nil {
		return nil, api.Errorf(api.CodeBackendError, "encode field %q: %v", ref.KeyField, err)
	}
	return b, nil
}

// readSecret reads one path (coalesced across concurrent batches) and returns
// its data: for KV v2 the secret's own data, else the response data.
func (v *Vault) readSecret(ctx context.Context, path string, version int) (map[string]any, error) {
	key := "read:" + path + "?" + strconv.Itoa(version)
	res, err, _ := v.sf.Do(key, func() (any, error) {
		data, err := v.readOnce(ctx, path, version)
		if isPermissionDenied(err) && v.tokenInvalid(ctx) {
			// The token expired or was revoked: log in again, retry once.
			v.mu.Lock()
			v.client = nil
			v.mu.Unlock()
			data, err = v.readOnce(ctx, path, version)
		}
		if isPermissionDenied(err) {
			err = api.Errorf(api.CodeForbidden, "%s://%s: permission denied by the server's policy for this token", v.kind, path)
		}
		return data, err
	})
	if err != nil {
		return nil, err
	}
	return res.(map[string]any), nil
}

func (v *Vault) readOnce(ctx context.Context, path string, version int) (map[string]any, error) {
	client, err := v.ensureClient(ctx)
	if err != nil {
		return nil, err
	}
	apiPath, kv2, err := v.apiPath(ctx, client, path)
	if err != nil {
		return nil, err
	}
	var query map[string][]string
	if version > 0 {
		if !kv2 {
			return nil, api.Errorf(api.CodeBadRequest, "%s://%s: ?version= applies to KV version 2 secrets only", v.kind, path)
		}
		query = map[string][]string{"version": {strconv.Itoa(version)}}
	}
	v.calls.Add(1)
	s, err := client.Logical().ReadWithDataWithContext(ctx, apiPath, query)
	if err != nil {
		if isPermissionDenied(err) {
			return nil, err // the caller checks the token
		}
		return nil, transportError(v.kind, err)
	}
	if s == nil {
		return nil, api.Errorf(api.CodeNotFound, "%s://%s: no secret at this path", v.kind, path)
	}
	if !kv2 {
		if s.Data == nil {
			return map[string]any{}, nil
		}
		return s.Data, nil
	}
	data, ok := s.Data["data"].(map[string]any)
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "%s://%s: the secret version is deleted or destroyed", v.kind, path)
	}
	return data, nil
}

func isPermissionDenied(err error) bool {
	var re *vapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

// tokenInvalid reports whether the client's token no longer works (as
// opposed to a policy that denies one path).
func (v *Vault) tokenInvalid(ctx context.Context) bool {
	v.mu.Lock()
	client := v.client
	v.mu.Unlock()
	if client == nil {
		return true
	}
	_, err := client.Auth().Token().LookupSelfWithContext(ctx)
	return isPermissionDenied(err)
}

// apiPath maps a ref's path to the API path to read: on a KV v2 mount,
// data/ is inserted after the mount unless the ref has it already. Mounts
// are detected as `vault kv get` does and remembered.
func (v *Vault) apiPath(ctx context.Context, client *vapi.Client, path string) (string, bool, error) {
	m, err := v.mount(ctx, client, path)
	if err != nil {
		return "", false, err
	}
	if !m.kv2 {
		return path, false, nil
	}
	rel := strings.TrimPrefix(path, m.path)
	if strings.HasPrefix(rel, "data/") {
		return path, true, nil
	}
	return m.path + "data/" + rel, true, nil
}

func (v *Vault) mount(ctx context.Context, client *vapi.Client, path string) (mountInfo, error) {
	v.mu.Lock()
	for prefix, m := range v.mounts {
		if strings.HasPrefix(path+"/", prefix) {
			v.mu.Unlock()
			return m, nil
		}
	}
	v.mu.Unlock()
	res, err, _ := v.sf.Do("mount:"+path, func() (any, error) {
		s, err := client.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+path)
		if err != nil {
			var re *vapi.ResponseError
			if errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusNotFound || re.StatusCode == http.StatusBadRequest) {
				return mountInfo{}, nil // no mount info: a plain logical read
			}
			return nil, transportError(v.kind, err)
		}
		var m mountInfo
		if s != nil && s.Data != nil {
			mp, _ := s.Data["path"].(string)
			typ, _ := s.Data["type"].(string)
			opts, _ := s.Data["options"].(map[string]any)
			ver, _ := opts["version"].(string)
			m = mountInfo{path: mp, kv2: (typ == "kv" || typ == "generic") && ver == "2"}
			if mp != "" {
				v.mu.Lock()
				v.mounts[mp] = m
				v.mu.Unlock()
			}
		}
		return m, nil
	})
	if err != nil {
		return mountInfo{}, err
	}
	return res.(mountInfo), nil
}
