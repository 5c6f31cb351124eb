// Package backend defines what a secrets backend is to the opx daemon and
// implements the backends: the deterministic fake used by tests and CI, the
// 1Password CLI, Vault and OpenBao, and the multi router. The grammar of
// references lives in package api, which the client shares.
package backend

import (
	"cmp"
	"path/filepath"

	"context"
	"fmt"
	"github.com/rs/zerolog"
	"time"

	"github.com/opxhq/opx/api"
)

// Result is the outcome of reading one reference.
type Result struct {
	// Value is the secret. The daemon takes ownership and zeroes it later.
	Value []byte
	// TTL caps how long the value may be cached; zero means the daemon's
	// default TTL. Backends use it for values that expire sooner, such as a
	// one-time password that is valid only until the end of its step.
	TTL time.Duration
	// Err is an *api.Error (or wraps one) when the ref failed; its message
	// never contains a secret.
	Err error
	// Leased marks a value of a Vault or OpenBao lease: TTL is the time
	// left to serve it (the daemon's cache keeps it at most its own TTL,
	// and the backend serves it from the held lease after that); it is
	// never served stale nor refreshed ahead (the lease is renewed instead).
	Leased bool
}

// LeaseHolder is implemented by backends that hold leases (Vault, OpenBao,
// multi): the daemon lists them in status and revokes them on lock and
// shutdown.
type LeaseHolder interface {
	Leases() []api.Lease
	RevokeLeases() int
}

// ServerNamer is implemented by backends that read vault:// or bao:// refs
// from a server (Vault, OpenBao, multi): a client that expects another
// server (the vault shim, whose environment names one) is told so rather
// than answered from this one.
type ServerNamer interface {
	// Server returns the address and namespace that refs of scheme are
	// read from now; ok is false when no server for scheme is configured.
	Server(scheme string) (address, namespace string, ok bool)
}

// Backend reads secrets for the daemon. Implementations are safe for
// concurrent use.
type Backend interface {
	// Name is the --backend value that selects this backend.
	Name() string
	// Read resolves refs, all of them valid for this backend (see Check), for
	// account ("" for the default account) and returns one Result per ref,
	// in order. One Read is one batch: a backend makes as few calls as it
	// can for it. Read honours ctx's deadline.
	Read(ctx context.Context, account string, refs []string) []Result
	// Check reports whether ref (already syntactically valid) can be read
	// by this backend, with an *api.Error saying why not.
	Check(ref api.Ref) error
	// Validate checks that the backend is usable (signed in) for the given
	// accounts; the daemon calls it on unlock.
	Validate(ctx context.Context, accounts []string) error
	// Calls reports how many backend calls (processes, HTTP reads) were made.
	Calls() uint64
	// Close releases what the backend holds.
	Close() error
}

// Windowed is implemented by backends that want the daemon to gather misses
// of concurrent requests for a short window before calling Read, because
// each call is expensive (a process start).
type Windowed interface {
	BatchWindow() time.Duration
}

// Options configure a backend built by New.
type Options struct {
	// FakeDelay is how long each fake backend call takes.
	FakeDelay time.Duration
	// OPPath is the 1Password CLI program; "" means op from PATH.
	OPPath string
	// MaxProcs bounds concurrent backend processes; 0 means 4.
	MaxProcs int
	// OPSessionsFile holds op session tokens kept by opx login.
	OPSessionsFile string
	// ConfigFile is config.json, read for the vault and bao settings.
	ConfigFile string
	// DataDir holds the vault-token and bao-token files of opx login.
	DataDir string
	// Log receives the backends' own events (logins, renewals).
	Log zerolog.Logger
	// OPBudget caps opx's own op calls per account.
	OPBudget OPBudget
	// OPIdentity is the identity op runs as for reads that name none: the
	// daemon's own (TakeProcessIdentity).
	OPIdentity OPIdentity
	// OnLogin, if set, hears of every Vault or OpenBao login attempt.
	OnLogin func(backend, method string, err error)
	// OnServerChange, if set, hears that the Vault or OpenBao server (its
	// address or namespace) that kind's refs are read from changed, so
	// that values read from the old one are no longer served.
	OnServerChange func(kind string)
}

// Names lists the values --backend accepts.
var Names = []string{"opcli", "vault", "bao", "multi", "fake"}

// New returns the backend called name.
func New(name string, opts Options) (Backend, error) {
	if name == "fake" {
		return NewFake(opts.FakeDelay), nil
	}
	op := NewOPCLI(opts.OPPath, cmp.Or(opts.MaxProcs, 4), opts.OPSessionsFile)
	op.SetBudget(opts.OPBudget)
	op.SetDefaultIdentity(opts.OPIdentity)
	router := map[string]Backend{api.SchemeOP: op}
	// Credentials given as refs are read straight from the backend of
	// their scheme (not through the daemon's cache), at login time.
	resolve := func(kind string) Resolver {
		return func(ctx context.Context, raw string) ([]byte, error) {
			ref, err := api.ParseRef(raw)
			if err != nil {
				return nil, err
			}
			b := router[ref.Scheme]
			if b == nil || ref.Scheme == kind {
				return nil, api.Errorf(api.CodeBadRequest, "%s: a %s credential cannot be read from %s://", raw, kind, ref.Scheme)
			}
			r := b.Read(ctx, "", []string{raw})[0]
			return r.Value, r.Err
		}
	}
	var dataFile = func(n string) string {
		if opts.DataDir == "" {
			return ""
		}
		return filepath.Join(opts.DataDir, n)
	}
	vault := NewVault(api.SchemeVault, opts.ConfigFile, dataFile("vault-token"), resolve(api.SchemeVault), opts.Log)
	bao := NewVault(api.SchemeBao, opts.ConfigFile, dataFile("bao-token"), resolve(api.SchemeBao), opts.Log)
	vault.onLogin, bao.onLogin = opts.OnLogin, opts.OnLogin
	vault.onServerChange, bao.onServerChange = opts.OnServerChange, opts.OnServerChange
	router[api.SchemeVault], router[api.SchemeBao] = vault, bao
	switch name {
	case "opcli":
		return op, nil
	case "vault":
		return vault, nil
	case "bao":
		return bao, nil
	case "multi":
		return NewMulti(op, vault, bao), nil
	}
	return nil, fmt.Errorf("unknown backend %q (want one of opcli, vault, bao, multi, fake)", name)
}

// errNotHandled returns the error for a ref whose scheme b does not read.
func errNotHandled(b Backend, ref api.Ref) error {
	return api.Errorf(api.CodeBadRequest, "%s: the %s backend does not read %s:// references; start the daemon with --backend=multi to read several kinds", ref.Raw, b.Name(), ref.Scheme)
}
