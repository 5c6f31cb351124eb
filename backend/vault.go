package backend

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
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

// NewVaultClient returns a vault/api client for c, with no token set and
// none of the VAULT_* environment applied beyond what c holds.
func NewVaultClient(c api.VaultConfig) (*vapi.Client, error) {
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
	if t, ok := cfg.HttpClient.Transport.(*http.Transport); ok {
		// Secrets must land only in buffers opx wipes: no gzip (its
		// window would keep plaintext), and a read buffer so small that
		// a response body is read straight into opx's own buffer.
		t.DisableCompression = true
		t.ReadBufferSize = minReadBuffer
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

// minReadBuffer is the size of the Vault client's connection read buffer
// (bufio's least). A body read with a larger buffer bypasses it, so a
// secret in a response is never copied into net/http's buffer; only the
// first bytes after the headers ("{\"request_id\":...") may be.
const minReadBuffer = 16

// Resolver reads a credential reference for a login.
type Resolver func(ctx context.Context, ref string) ([]byte, error)

// Login authenticates client with c's method, resolving credential refs with
// resolve; with no token_ref, the token is literal's (the daemon's own: its
// token file, the environment, ~/.vault-token; nil for none). It returns the
// auth secret, for renewal.
func Login(ctx context.Context, kind string, client *vapi.Client, c api.VaultConfig, resolve Resolver, literal func() (string, error)) (*vapi.Secret, error) {
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
		var tok string
		var err error
		switch {
		case c.TokenRef != "":
			tok, err = get(c.TokenRef)
		case literal != nil:
			tok, err = literal()
		default:
			err = api.Errorf(api.CodeBadRequest, "%s token login: no token and no token_ref", kind)
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

// VerifyLogin logs in to the kind's server with c on a client of its own
// (with token when it is not "", else with c's method, its credential refs
// read through resolve) and returns the display name the server reports for
// the login: what opx login checks before it stores anything. It never uses
// a credential the request did not bring: the server is the request's to
// name, so the daemon's own token (its token file, VAULT_TOKEN, a stored
// login) would go wherever a program asked.
func VerifyLogin(ctx context.Context, kind string, c api.VaultConfig, token string, resolve Resolver) (string, error) {
	if err := c.Validate(kind); err != nil {
		return "", api.Errorf(api.CodeBadRequest, "%v", err)
	}
	if token == "" && c.Method == "token" && c.TokenRef == "" {
		return "", api.Errorf(api.CodeBadRequest, "%s login check: the request has no token and no token_ref; the daemon never checks a login with a token of its own", kind)
	}
	client, err := NewVaultClient(c)
	if err != nil {
		return "", api.Errorf(api.CodeBadRequest, "%s client: %v", kind, err)
	}
	if token != "" {
		client.SetToken(token)
	} else if _, err := Login(ctx, kind, client, c, resolve, nil); err != nil {
		return "", err
	}
	self, err := client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return "", authError(kind, "token lookup", err)
	}
	name, _ := self.Data["display_name"].(string)
	return name, nil
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
	if t := api.VaultEnv(api.EnvPrefix(kind) + "_TOKEN"); t != "" {
		return t, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		if b, err := os.ReadFile(filepath.Join(home, "."+kind+"-token")); err == nil {
			defer clear(b)
			return strings.TrimSpace(string(b)), nil
		}
	}
	return "", api.Errorf(api.CodeUnauthorized, "no %s token: run opx login %s, or set %s_TOKEN", kind, kind, api.EnvPrefix(kind))
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
	// onServerChange is told when config.json (or the environment) names
	// another server or namespace than the one values were read from.
	onServerChange func(kind string)

	mu      sync.Mutex
	client  *vapi.Client
	stamp   string // config and token file stamps the client was made from
	watcher *vapi.LifetimeWatcher
	mounts  map[string]mountInfo // by the path asked about

	configured      bool       // an address is known (see Configured)
	configuredStamp string     // config.json stamp that answer is for
	server          api.Server // the address and namespace read from then

	sf    singleflight.Group // logins and mount lookups: nothing secret
	calls atomic.Uint64

	readsMu sync.Mutex
	reads   map[string]*pathRead // HTTP reads of secrets in flight, by path and version

	leasesMu                        sync.Mutex
	leases                          map[string]*heldLease // by path and version
	leaseGen                        uint64                // moved by drainLeases (RevokeLeases, Close)
	leaseRenewals, leaseRevocations atomic.Uint64
}

// pathRead is one HTTP read of a secret, shared by every batch that wants a
// field of it while it runs; the last one to let go wipes the fields.
type pathRead struct {
	done   chan struct{}
	fields map[string]json.RawMessage // set before done is closed
	body   []byte                     // the whole response, for ?response= refs
	lease  leaseMeta                  // the response's lease, if any
	err    error
	users  int // guarded by Vault.readsMu
}

type mountInfo struct {
	path string // "secret/"
	typ  string // "kv", "token", ...
	kv2  bool
	// reserved marks a mount whose answers are about the token that reads
	// it (reservedMount).
	reserved bool
}

// reservedMount reports whether a mount of type typ at path answers about
// the token that reads it: the token store, cubbyhole, identity and system
// mounts (ns_ in a namespace), and any auth method, which a namespace
// mounts under its own auth/ (team/auth/approle/).
func reservedMount(typ, path string) bool {
	switch strings.TrimPrefix(typ, "ns_") {
	case "token", "cubbyhole", "identity", "system":
		return true
	}
	return strings.HasPrefix(path, "auth/") || strings.Contains(path, "/auth/")
}

// reservedBelow reports whether a segment of path after the first is one
// of the mounts a namespace has (team/sys/...): where the server told
// nothing of the path's mount, such a path is refused rather than read.
func reservedBelow(path string) bool {
	segs := strings.Split(path, "/")
	for _, s := range segs[1:] {
		if api.ReservedMount(s) {
			return true
		}
	}
	return false
}

// NewVault returns the backend for kind ("vault" or "bao").
func NewVault(kind, configFile, tokenFile string, resolve Resolver, log zerolog.Logger) *Vault {
	return &Vault{kind: kind, configFile: configFile, tokenFile: tokenFile, resolve: resolve, log: log,
		mounts: map[string]mountInfo{}, reads: map[string]*pathRead{}, leases: map[string]*heldLease{}}
}

// Name implements Backend.
func (v *Vault) Name() string { return v.kind }

// Check implements Backend.
func (v *Vault) Check(ref api.Ref) error {
	if ref.Scheme != v.kind {
		return errNotHandled(v, ref)
	}
	v.Configured() // notices a change of server before the cache answers
	return nil
}

// Configured reports whether a server address is known. It is asked for
// every ref, so the answer is kept until config.json changes. A change of
// server (address or namespace) is told to onServerChange.
func (v *Vault) Configured() bool {
	stamp := fileStamp(v.configFile)
	v.mu.Lock()
	if v.configuredStamp == stamp {
		defer v.mu.Unlock()
		return v.configured
	}
	c, err := api.LoadVaultConfig(v.kind, v.configFile)
	v.configured, v.configuredStamp = err == nil && c.Address != "", stamp
	now := api.Server{Address: c.Address, Namespace: c.Namespace}
	changed := err == nil && v.server != (api.Server{}) && !api.SameServer(v.server, now)
	if err == nil {
		v.server = now
	}
	configured, notify := v.configured, v.onServerChange
	v.mu.Unlock()
	if changed && notify != nil {
		v.log.Info().Str("backend", v.kind).Str("address", now.Address).Msg("the server changed: values read from the old one are dropped")
		notify(v.kind)
	}
	return configured
}

// Server implements ServerNamer: the address and namespace of config.json
// (or the daemon's environment) as they are now.
func (v *Vault) Server(scheme string) (string, string, bool) {
	if scheme != v.kind {
		return "", "", false
	}
	c, err := api.LoadVaultConfig(v.kind, v.configFile)
	if err != nil || c.Address == "" {
		return "", "", false
	}
	return c.Address, c.Namespace, true
}

// loggedIn reports whether a read has logged in (a client is kept).
func (v *Vault) loggedIn() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.client != nil
}

// Calls implements Backend: HTTP reads of secrets.
func (v *Vault) Calls() uint64 { return v.calls.Load() }

// Close implements Backend.
func (v *Vault) Close() error {
	v.drainLeases(false) // revoked before, when the daemon was told to
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

// doCtx is sf.Do that stops waiting when ctx ends: a call it joins may be
// stuck (a login waiting on a read that waits on the login), and no wait
// may outlive its request. The call itself goes on for whoever started it.
func doCtx(ctx context.Context, sf *singleflight.Group, key string, fn func() (any, error)) (any, error) {
	select {
	case r := <-sf.DoChan(key, fn):
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
	c, err := doCtx(ctx, &v.sf, "login", func() (any, error) { return v.login(ctx, stamp) })
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, transportError(v.kind, err)
		}
		return nil, err
	}
	return c.(*vapi.Client), nil
}

// login makes a new client and logs in; coalesced by ensureClient.
func (v *Vault) login(ctx context.Context, stamp string) (*vapi.Client, error) {
	cfg, err := api.LoadVaultConfig(v.kind, v.configFile)
	if err != nil {
		return nil, api.Errorf(api.CodeBackendError, "%v", err)
	}
	if cfg.Address == "" {
		return nil, notConfigured(v.kind)
	}
	if err := cfg.Validate(v.kind); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "%v", err)
	}
	if other, err := api.LoadVaultConfig(api.OtherServer(v.kind), v.configFile); err == nil {
		if err := api.LoginCycle(v.kind, cfg, other); err != nil {
			return nil, api.Errorf(api.CodeBadRequest, "%v", err)
		}
	}
	client, err := NewVaultClient(cfg)
	if err != nil {
		return nil, api.Errorf(api.CodeBackendError, "%s client: %v", v.kind, err)
	}
	auth, err := Login(ctx, v.kind, client, cfg, v.resolve, func() (string, error) { return literalToken(v.kind, v.tokenFile) })
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
	v.forgetLeasesOf(v.client) // a new login: the old token's leases go with it
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
		v.forgetLeasesOf(client)
	}
}

func notConfigured(kind string) error {
	return api.Errorf(api.CodeBadRequest, "no %s server is configured: run opx login %s --address URL, or set %s_ADDR", kind, kind, api.EnvPrefix(kind))
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
	parsed := make([]api.Ref, len(refs))
	byPath := map[string][]int{}
	for i, raw := range refs {
		r, err := api.ParseRef(raw)
		if err != nil {
			out[i].Err = err
			continue
		}
		parsed[i] = r
		key := readKey(r)
		byPath[key] = append(byPath[key], i)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for key, idx := range byPath {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := parsed[idx[0]]
			now := time.Now()
			// A leased secret opx holds answers from its one response
			// while the lease lasts: no new read, no new lease.
			if v.serveHeld(key, now, func(l *heldLease) {
				for _, i := range idx {
					out[i].Value, out[i].Err = extract(v.kind, parsed[i], l.fields, l.body)
					out[i].TTL, out[i].Leased = l.left(now), true
				}
			}) {
				return
			}
			gen := v.leaseEpoch()
			read, err := v.readSecret(ctx, key, r)
			if err != nil {
				for _, i := range idx {
					out[i].Err = err
				}
				return
			}
			defer v.release(read)
			fields, body := read.fields, read.body
			serve := func(l *heldLease) {
				if l != nil {
					fields, body = l.fields, l.body
				}
				for _, i := range idx {
					out[i].Value, out[i].Err = extract(v.kind, parsed[i], fields, body)
					if l != nil {
						out[i].TTL, out[i].Leased = l.left(now), true
					}
				}
			}
			if read.lease.id != "" {
				v.hold(key, r.Path, read, now, gen, serve)
				return
			}
			serve(nil)
		}()
	}
	wg.Wait()
	return out
}

// readKey names the HTTP read a ref needs: its path and version, and
// whether the path is read as it is (?response=logical) or mapped as refs
// are (KV v2's data/ added). Refs with one key share one read.
func readKey(r api.Ref) string {
	key := r.Path + "?" + strconv.Itoa(r.Version)
	if r.Response == api.ResponseLogical {
		key += "&logical"
	}
	return key
}

// extract takes ref's field (strings as they are, other values as their
// JSON), the whole secret as a JSON object, or for a ?response= ref the
// server's whole answer, into a new slice that the daemon owns and wipes.
func extract(kind string, ref api.Ref, fields map[string]json.RawMessage, body []byte) ([]byte, error) {
	if ref.Response != "" {
		return bytes.Clone(body), nil
	}
	if ref.KeyField == "" {
		names := make([]string, 0, len(fields))
		for k := range fields {
			names = append(names, k)
		}
		sort.Strings(names)
		w := api.NewBuf(64)
		w.WriteByte('{')
		for i, k := range names {
			if i > 0 {
				w.WriteByte(',')
			}
			w.JSONString([]byte(k))
			w.WriteByte(':')
			w.Write(fields[k])
		}
		w.WriteByte('}')
		return w.Bytes(), nil
	}
	raw, ok := fields[ref.KeyField]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "%s: no field %q in the secret at %s", ref.Raw, ref.KeyField, ref.Path)
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] == '"' {
		v, err := unquoteJSON(raw)
		if err != nil {
			return nil, api.Errorf(api.CodeBackendError, "%s: field %q: %v", kind, ref.KeyField, err)
		}
		return v, nil
	}
	return bytes.Clone(raw), nil
}

// readSecret makes the read key names (readKey of r), or joins the one
// already in flight (across concurrent batches). The caller must release
// what it gets.
func (v *Vault) readSecret(ctx context.Context, key string, r0 api.Ref) (*pathRead, error) {
	v.readsMu.Lock()
	r, joined := v.reads[key]
	if joined {
		r.users++
	} else {
		r = &pathRead{done: make(chan struct{}), users: 1}
		v.reads[key] = r
	}
	v.readsMu.Unlock()
	if !joined {
		r.fields, r.body, r.lease, r.err = v.readRetrying(ctx, r0.Path, r0.Version, r0.Response == api.ResponseLogical)
		v.readsMu.Lock()
		delete(v.reads, key)
		v.readsMu.Unlock()
		close(r.done)
	} else {
		select {
		case <-r.done:
		case <-ctx.Done():
			v.release(r)
			return nil, transportError(v.kind, ctx.Err())
		}
	}
	if r.err != nil {
		err := r.err
		v.release(r)
		return nil, err
	}
	return r, nil
}

// release lets go of r; the last user wipes its fields.
func (v *Vault) release(r *pathRead) {
	v.readsMu.Lock()
	r.users--
	last := r.users == 0
	v.readsMu.Unlock()
	if last {
		for _, f := range r.fields {
			clear(f)
		}
		clear(r.body[:cap(r.body)]) // the buffer's spare room held bytes of the answer too
	}
}

// readRetrying reads path once, and once more after a new login when the
// token turns out to be expired or revoked.
func (v *Vault) readRetrying(ctx context.Context, path string, version int, logical bool) (map[string]json.RawMessage, []byte, leaseMeta, error) {
	data, body, lease, err := v.readOnce(ctx, path, version, logical)
	if isPermissionDenied(err) && v.tokenInvalid(ctx) {
		v.mu.Lock()
		v.forgetLeasesOf(v.client) // the server revoked them with the token
		v.client = nil
		v.mu.Unlock()
		data, body, lease, err = v.readOnce(ctx, path, version, logical)
	}
	if isPermissionDenied(err) {
		err = api.Errorf(api.CodeForbidden, "%s://%s: permission denied by the server's policy for this token", v.kind, path)
	}
	return data, body, lease, err
}

// readOnce makes one HTTP read of path and returns the secret's fields (for
// KV v2 the secret's own data, else the response's data) and the whole
// response. With logical, path is read as it is: no KV v2 mapping, and the
// fields are the response's data. The response is read raw into a buffer
// that the caller wipes (as the body), so no Go string (which could not be
// wiped) ever holds a value.
func (v *Vault) readOnce(ctx context.Context, path string, version int, logical bool) (fields map[string]json.RawMessage, answer []byte, lease leaseMeta, err error) {
	client, err := v.ensureClient(ctx)
	if err != nil {
		return nil, nil, lease, err
	}
	apiPath, query, kv2, err := v.readTarget(ctx, client, path, version, logical)
	if err != nil {
		return nil, nil, lease, err
	}
	body, err := v.readAnswer(ctx, client, path, apiPath, query, kv2)
	if err != nil {
		return nil, nil, lease, err
	}
	fields, lease, err = v.parseAnswer(body.Bytes(), path, kv2, client)
	if err != nil {
		body.Wipe()
		return nil, nil, lease, err
	}
	if kv2 {
		return fields, markKV2(body), lease, nil
	}
	return fields, body.Bytes(), lease, nil
}

// readTarget returns the API path and query that read path (at version,
// when it is not 0), and whether path is a KV version 2 secret; with
// logical, path is read as it is.
func (v *Vault) readTarget(ctx context.Context, client *vapi.Client, path string, version int, logical bool) (apiPath string, query map[string][]string, kv2 bool, err error) {
	m, err := v.mount(ctx, client, path)
	if err != nil {
		return "", nil, false, err
	}
	if m.reserved || m.path == "" && reservedBelow(path) {
		// A namespace the server serves by path (team/auth/...) puts
		// the mounts api.ParseRef refuses one segment down.
		return "", nil, false, api.Errorf(api.CodeBadRequest, "%s://%s is under a mount the server reserves for the token that reads it (%s), not a stored secret: opx does not read it with its own login; run the real CLI with your own token: %s read %s",
			v.kind, path, cmp.Or(m.typ, "its mount could not be looked up"), v.kind, path)
	}
	apiPath = path
	if !logical {
		if apiPath, kv2, err = v.apiPath(m, path); err != nil {
			return "", nil, false, err
		}
	}
	if version > 0 {
		if !kv2 {
			return "", nil, false, api.Errorf(api.CodeBadRequest, "%s://%s: ?version= applies to KV version 2 secrets only", v.kind, path)
		}
		query = map[string][]string{"version": {strconv.Itoa(version)}}
	}
	return apiPath, query, kv2, nil
}

// readAnswer makes the HTTP read of apiPath (the secret at path) and
// returns the server's answer, at most maxSecretResponse bytes, in a
// buffer the caller wipes.
func (v *Vault) readAnswer(ctx context.Context, client *vapi.Client, path, apiPath string, query map[string][]string, kv2 bool) (*api.Buf, error) {
	v.calls.Add(1)
	resp, err := client.Logical().ReadRawWithDataWithContext(ctx, apiPath, query)
	if resp != nil {
		defer resp.Body.Close()
	}
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		// A KV v2 version that was deleted answers 404 with its metadata.
		var body struct {
			Data *struct {
				Metadata json.RawMessage `json:"metadata"`
			} `json:"data"`
		}
		if kv2 && json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body) == nil && body.Data != nil && len(body.Data.Metadata) > 0 {
			return nil, api.Errorf(api.CodeNotFound, "%s://%s: the secret version is deleted or destroyed", v.kind, path)
		}
		return nil, api.Errorf(api.CodeNotFound, "%s://%s: no secret at this path", v.kind, path)
	}
	if err != nil {
		if isPermissionDenied(err) {
			return nil, err // the caller checks the token
		}
		return nil, transportError(v.kind, err)
	}
	if resp.StatusCode == http.StatusNoContent {
		return nil, api.Errorf(api.CodeNotFound, "%s://%s: no secret at this path", v.kind, path)
	}
	tooLarge := func() error {
		return api.Errorf(api.CodeBackendError, "%s://%s: the answer is larger than %d bytes", v.kind, path, maxSecretResponse)
	}
	if resp.ContentLength > maxSecretResponse {
		return nil, tooLarge()
	}
	// The declared length is only a hint for the first allocation.
	body := api.NewBuf(int(max(resp.ContentLength+1, 4<<10)))
	if _, err := body.ReadFrom(io.LimitReader(resp.Body, maxSecretResponse+1)); err != nil {
		body.Wipe()
		return nil, transportError(v.kind, err)
	}
	if body.Len() > maxSecretResponse {
		body.Wipe()
		return nil, tooLarge()
	}
	return body, nil
}

// parseAnswer returns the fields of the secret in answer (the response's
// data, or for kv2 the secret's own data) and the lease it came with, if
// any, held through client.
func (v *Vault) parseAnswer(answer []byte, path string, kv2 bool, client *vapi.Client) (fields map[string]json.RawMessage, lease leaseMeta, err error) {
	var top struct {
		Data          json.RawMessage `json:"data"`
		LeaseID       string          `json:"lease_id"`
		LeaseDuration int64           `json:"lease_duration"`
		Renewable     bool            `json:"renewable"`
	}
	defer func() { clear(top.Data) }()
	if err := json.Unmarshal(answer, &top); err != nil {
		return nil, lease, api.Errorf(api.CodeBackendError, "%s://%s: malformed answer: %s", v.kind, path, jsonError(err))
	}
	data := top.Data
	if top.LeaseID != "" && top.LeaseDuration > 0 {
		lease = leaseMeta{id: top.LeaseID, duration: time.Duration(top.LeaseDuration) * time.Second, renewable: top.Renewable, client: client}
	}
	if kv2 {
		var inner struct {
			Data json.RawMessage `json:"data"`
		}
		defer func() { clear(inner.Data) }()
		if err := json.Unmarshal(data, &inner); err != nil {
			return nil, lease, api.Errorf(api.CodeBackendError, "%s://%s: malformed answer: %s", v.kind, path, jsonError(err))
		}
		if len(inner.Data) == 0 || string(inner.Data) == "null" {
			return nil, lease, api.Errorf(api.CodeNotFound, "%s://%s: the secret version is deleted or destroyed", v.kind, path)
		}
		data = inner.Data
	}
	fields = map[string]json.RawMessage{}
	if len(data) > 0 && string(data) != "null" {
		if err := json.Unmarshal(data, &fields); err != nil {
			for _, f := range fields {
				clear(f)
			}
			return nil, lease, api.Errorf(api.CodeBackendError, "%s://%s: the secret's data is not a JSON object", v.kind, path)
		}
	}
	return fields, lease, nil
}

// markKV2 is the answer in body with api.KV2Marker added as its first key; body
// is wiped.
func markKV2(body *api.Buf) []byte {
	b := bytes.TrimLeft(body.Bytes(), " \t\r\n")
	out := api.NewBuf(body.Len() + len(api.KV2Marker) + 1)
	out.WriteByte('{')
	out.WriteString(api.KV2Marker)
	if rest := bytes.TrimLeft(b[1:], " \t\r\n"); len(rest) > 0 && rest[0] != '}' {
		out.WriteByte(',')
	}
	out.Write(b[1:])
	body.Wipe()
	return out.Bytes()
}

// maxSecretResponse bounds one secret's HTTP answer.
const maxSecretResponse = 16 << 20

// jsonError describes a decode error without quoting the input.
func jsonError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("JSON syntax error at byte %d", se.Offset)
	}
	return "not the JSON shape of a secret"
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
func (v *Vault) apiPath(m mountInfo, path string) (string, bool, error) {
	if !m.kv2 {
		return path, false, nil
	}
	if strings.TrimSuffix(path, "/")+"/" == m.path {
		return "", false, api.Errorf(api.CodeBadRequest, "%s://%s is the KV version 2 mount %s itself, not a secret in it: name one, as in %s://%sNAME#KEY", v.kind, path, m.path, v.kind, m.path)
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
	res, err := doCtx(ctx, &v.sf, "mount:"+path, func() (any, error) {
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
			m = mountInfo{path: mp, typ: typ, kv2: (typ == "kv" || typ == "generic") && ver == "2", reserved: reservedMount(typ, mp)}
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
