package daemon

import (
	"encoding/json"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/policy"
)

// where is what the policy needs to know of a request besides its refs:
// the 1Password account it names, config.json's default account, and the
// server the daemon reads each vault:// and bao:// ref from (looked up once
// per request and scheme, when a ref needs it).
type where struct {
	s            *server
	account, def string
	// identityKind and identity are the 1Password identity op:// refs are
	// read as (kind, full fingerprint; "" for the desktop).
	identityKind, identity string
	servers                map[string]*api.Server
	serversLookedUp        map[string]bool
}

// whereOf is where the refs of a request naming account are read.
func (s *server) whereOf(account string) *where {
	return &where{s: s, account: account, def: s.defaults.account(s.paths.ConfigFile),
		identityKind: s.opIdentity.Kind, identity: s.opIdentity.Fingerprint}
}

// read is ref as the policy judges it.
func (w *where) read(ref string) policy.Read {
	q := policy.Read{Ref: ref, Account: w.account, DefaultAccount: w.def, IdentityKind: w.identityKind, Identity: w.identity}
	scheme, _, _ := strings.Cut(ref, "://")
	if scheme == api.SchemeVault || scheme == api.SchemeBao {
		q.Server = w.server(scheme)
	}
	return q
}

// server is the server the daemon reads scheme's refs from, nil when none.
func (w *where) server(scheme string) *api.Server {
	if w.serversLookedUp[scheme] {
		return w.servers[scheme]
	}
	if w.servers == nil {
		w.servers, w.serversLookedUp = map[string]*api.Server{}, map[string]bool{}
	}
	w.serversLookedUp[scheme] = true
	if n, ok := w.s.backend.(backend.ServerNamer); ok {
		if addr, ns, ok := n.Server(scheme); ok {
			w.servers[scheme] = &api.Server{Address: addr, Namespace: ns}
		}
	}
	return w.servers[scheme]
}

// defaultAccount is config.json's "account" (the default account `opx
// login 1password --account X` records), read again only when the file
// changes.
type defaultAccount struct {
	mu    sync.Mutex
	stamp string
	value string
}

func (d *defaultAccount) account(path string) string {
	stamp := ""
	if fi, err := os.Stat(path); err == nil {
		// opx writes config.json by rename: a new file, a new stamp.
		stamp = fi.ModTime().String() + "|" + strconv.FormatInt(fi.Size(), 10) + "|" + fileID(fi)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if stamp == d.stamp && stamp != "" {
		return d.value
	}
	d.stamp, d.value = stamp, ""
	if b, err := os.ReadFile(path); err == nil {
		var c struct {
			Account string `json:"account"`
		}
		if json.Unmarshal(b, &c) == nil {
			d.value = c.Account
		}
	}
	return d.value
}

// settingsHeader is api.SettingsHeader's value: the settings a client
// compares with what its own environment would give a daemon (backend,
// ttl, op_path, version, service), and the Vault and OpenBao servers the
// daemon reads from (vault_address, vault_namespace, bao_...), made again
// only when config.json changes.
type settingsHeader struct {
	mu    sync.Mutex
	stamp string
	value string
}

func (h *settingsHeader) of(s *server) string {
	stamp := "-"
	if fi, err := os.Stat(s.paths.ConfigFile); err == nil {
		stamp = fi.ModTime().String() + "|" + strconv.FormatInt(fi.Size(), 10) + "|" + fileID(fi)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if stamp == h.stamp {
		return h.value
	}
	v := url.Values{"backend": {s.cfg.Backend}, "ttl": {s.cfg.TTL.String()},
		"op_path": {s.cfg.OPPath}, "version": {s.info.Version}, "service": {s.cfg.Service}}
	if n, ok := s.backend.(backend.ServerNamer); ok {
		for _, scheme := range []string{api.SchemeVault, api.SchemeBao} {
			if addr, ns, ok := n.Server(scheme); ok {
				v.Set(scheme+"_address", addr)
				if ns != "" {
					v.Set(scheme+"_namespace", ns)
				}
			}
		}
	}
	h.stamp, h.value = stamp, v.Encode()
	return h.value
}

// limited is the header for a requester the policy allows no ref: the
// backend, TTL, version and service manager, none of the servers or the op
// program.
func (h *settingsHeader) limited(s *server) string {
	return url.Values{"backend": {s.cfg.Backend}, "ttl": {s.cfg.TTL.String()}, "version": {s.info.Version},
		"service": {s.cfg.Service}}.Encode()
}

// serverOf names the server a vault:// or bao:// ref is read from, as a
// question shows it ("" for other refs, or no server).
func (rd *readRequest) serverOf(ref string) string {
	scheme, _, _ := strings.Cut(ref, "://")
	if scheme != api.SchemeVault && scheme != api.SchemeBao {
		return ""
	}
	srv := rd.at.server(scheme)
	if srv == nil {
		return ""
	}
	if srv.Namespace != "" {
		return srv.Address + " (namespace " + srv.Namespace + ")"
	}
	return srv.Address
}

// serversOf names the servers refs are read from, as a question shows
// them.
func (rd *readRequest) serversOf(refs []string) string {
	var out []string
	for _, ref := range refs {
		if s := rd.serverOf(ref); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}
