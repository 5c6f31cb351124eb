// Package daemon is the opx daemon: it serves the HTTP API of
// docs/protocol.md over a TLS-encrypted Unix socket, identifies each peer,
// applies the access policy, and owns the cache, the coalescing of reads in
// flight and their batching into backend calls (docs/architecture.md traces
// one read through it).
package daemon

import (
	"fmt"
	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/backend"
	"time"

	"github.com/rs/zerolog"
)

// The daemon's defaults that a client compares with the running daemon's
// settings; Cmd's tags say the same (TestDaemonDefaults).
const (
	DefaultBackend = "opcli"
	DefaultTTL     = 120 * time.Second
)

// ExitAlreadyRunning is the exit status of a daemon that found another
// daemon serving its socket; an autostarting client waits for that one.
const ExitAlreadyRunning = 75

// Cmd is `opx daemon` (and `opx-authd`): its flags, with their environment
// variables and config.json keys (the flag name, with - or _).
type Cmd struct {
	Backend            string   `help:"Secrets backend: ${enum}." enum:"opcli,vault,bao,multi,fake" default:"opcli" env:"OP_AUTHD_BACKEND"`
	TTL                Seconds  `name:"ttl" help:"How long a value is cached (duration or seconds)." default:"120s" env:"OP_AUTHD_TTL"`
	Sock               string   `help:"Socket path (default: see README)." env:"OPX_SOCKET_PATH" placeholder:"PATH"`
	Verbose            bool     `short:"v" help:"Log at debug level." env:"OP_AUTHD_VERBOSE"`
	SessionTimeout     Hours    `help:"Lock the session after this long without a read: hours (8) or a duration (90s); 0 disables." default:"8" env:"OP_AUTHD_SESSION_TIMEOUT"`
	EnableSessionLock  bool     `help:"Lock the session when idle (--no-enable-session-lock to turn off)." default:"true" negatable:"" env:"OP_AUTHD_ENABLE_SESSION_LOCK"`
	LockOnAuthFailure  bool     `help:"Lock an account's reads, wiping its cached values, when the backend reports an authentication failure for it (op signed out, the 1Password app locked), until opx unlock (--no-lock-on-auth-failure to turn off)." default:"true" negatable:"" env:"OP_AUTHD_LOCK_ON_AUTH_FAILURE"`
	FakeDelay          Seconds  `help:"With --backend=fake: how long each backend call takes." default:"0s" env:"OP_AUTHD_FAKE_DELAY"`
	CacheSize          int      `help:"Most values cached at once; the oldest go first." default:"10000" env:"OP_AUTHD_CACHE_SIZE"`
	BackendTimeout     Seconds  `help:"Longest a backend call may take." default:"60s" env:"OP_AUTHD_BACKEND_TIMEOUT"`
	MaxConcurrent      int      `help:"Most backend calls (and op processes) running at once." default:"4" env:"OP_AUTHD_MAX_CONCURRENT"`
	OPPath             string   `name:"op-path" help:"The 1Password CLI program (default: op from PATH)." env:"OPX_OP_PATH" placeholder:"PATH"`
	EnableAuditLog     bool     `help:"Write the audit log (audit-YYYY-MM-DD.log in the data dir)." env:"OP_AUTHD_ENABLE_AUDIT_LOG"`
	AuditLogRetention  int      `name:"audit-log-retention-days" help:"Days to keep audit files; 0 keeps all." default:"30" env:"OP_AUTHD_AUDIT_LOG_RETENTION_DAYS"`
	OPBudget           []string `name:"op-budget" help:"Cap opx's own op calls per 1Password account: N/hour, N/day or both (comma-separated); past it, cached and stale values are served and the rest refused with rate_limited." env:"OP_AUTHD_OP_BUDGET" placeholder:"N/hour,N/day"`
	RefreshAhead       bool     `help:"Fetch a value read at least twice again in the background shortly before it expires, so a steady reader never waits (--no-refresh-ahead to turn off)." default:"true" negatable:"" env:"OP_AUTHD_REFRESH_AHEAD"`
	RevokeLeasesOnLock bool     `help:"Revoke the Vault and OpenBao leases opx holds (dynamic secrets) on opx lock, opx stop and shutdown (--no-revoke-leases-on-lock to leave them to expire)." default:"true" negatable:"" env:"OP_AUTHD_REVOKE_LEASES_ON_LOCK"`
	StaleIfError       Seconds  `name:"stale-if-error" help:"When the backend fails or times out, serve a value that expired less than this long ago, marked stale; 0 never does." default:"5m" env:"OP_AUTHD_STALE_IF_ERROR"`
	// Service is set by the service definition that runs the daemon: a
	// systemd unit or launchd agent through OPX_SERVICE, a Windows
	// scheduled task (which has no environment) as --service. Not a
	// config.json key: config.json configures every daemon, not only the
	// service's.
	Service           string  `hidden:"" help:"The service manager that runs this daemon (systemd, launchd or schtasks, optionally :NAME), for opx restart." env:"OPX_SERVICE" placeholder:"MANAGER[:NAME]"`
	LockOnScreenLock  bool    `help:"Lock the session, as opx lock does, when the user's screen locks or the machine sleeps (--lock-on-screen-lock=false to turn off)." default:"true" negatable:"" env:"OP_AUTHD_LOCK_ON_SCREEN_LOCK"`
	UnlockWithSession bool    `help:"Unlock the session when the screen unlocks, if the screen's lock (or sleep) locked it; values are fetched again." env:"OP_AUTHD_UNLOCK_WITH_SESSION"`
	AskTimeout        Seconds `help:"How long a read a policy rule asks about waits for the user's answer (askpass, notification or opx approve) before it is refused." default:"30s" env:"OP_AUTHD_ASK_TIMEOUT"`
	ExitWhenIdle      Seconds `help:"Stop as opx stop does after this long with no connection open and no backend call running, so that a daemon ends with its CI job; any connection counts (opx status too), a command run by opx run does not; 0 never stops." default:"0s" env:"OP_AUTHD_EXIT_WHEN_IDLE"`
}

// Validate refuses numbers that mean nothing, from flags, the environment
// or config.json alike (kong calls it after parsing).
func (c *Cmd) Validate() error {
	switch {
	case c.TTL <= 0:
		return fmt.Errorf("--ttl must be more than 0")
	case c.SessionTimeout < 0:
		return fmt.Errorf("--session-timeout must be 0 (never) or more")
	case c.FakeDelay < 0:
		return fmt.Errorf("--fake-delay must be 0 or more")
	case c.CacheSize < 1:
		return fmt.Errorf("--cache-size must be at least 1")
	case c.BackendTimeout <= 0:
		return fmt.Errorf("--backend-timeout must be more than 0")
	case c.MaxConcurrent < 1:
		return fmt.Errorf("--max-concurrent must be at least 1")
	case c.AuditLogRetention < 0:
		return fmt.Errorf("--audit-log-retention-days must be 0 (keep all) or more")
	case c.StaleIfError < 0:
		return fmt.Errorf("--stale-if-error must be 0 (never) or more")
	case c.AskTimeout <= 0:
		return fmt.Errorf("--ask-timeout must be more than 0")
	case c.ExitWhenIdle < 0:
		return fmt.Errorf("--exit-when-idle must be 0 (never) or more")
	}
	if _, err := backend.ParseOPBudget(c.OPBudget); err != nil {
		return err
	}
	return nil
}

// BuildInfo carries what the binary knows about itself.
type BuildInfo struct {
	Version string
}

// Run runs the daemon until SIGINT or SIGTERM.
func (c *Cmd) Run(info BuildInfo) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	log := newLogger(c.Verbose)
	api.TakeVaultEnv()
	return Serve(cfg, info, log)
}

func (c *Cmd) config() (Config, error) {
	budget, err := backend.ParseOPBudget(c.OPBudget)
	if err != nil {
		return Config{}, err
	}
	return Config{
		Backend:            c.Backend,
		TTL:                time.Duration(c.TTL),
		Socket:             c.Sock,
		SessionTimeout:     time.Duration(c.SessionTimeout),
		EnableSessionLock:  c.EnableSessionLock,
		LockOnAuthFailure:  c.LockOnAuthFailure,
		FakeDelay:          time.Duration(c.FakeDelay),
		CacheSize:          c.CacheSize,
		BackendTimeout:     time.Duration(c.BackendTimeout),
		MaxConcurrent:      c.MaxConcurrent,
		OPPath:             c.OPPath,
		EnableAuditLog:     c.EnableAuditLog,
		AuditRetention:     c.AuditLogRetention,
		StaleIfError:       time.Duration(c.StaleIfError),
		OPBudget:           budget,
		RefreshAhead:       c.RefreshAhead,
		RevokeLeasesOnLock: c.RevokeLeasesOnLock,
		Service:            serviceManager(c.Service),
		ExitWhenIdle:       time.Duration(c.ExitWhenIdle),
		AskTimeout:         time.Duration(c.AskTimeout),
		LockOnScreenLock:   c.LockOnScreenLock,
		UnlockWithSession:  c.UnlockWithSession,
	}, nil
}

// Config is the daemon's configuration once flags, environment and
// config.json are merged.
type Config struct {
	Backend            string
	TTL                time.Duration
	Socket             string // "" for the default path
	SessionTimeout     time.Duration
	EnableSessionLock  bool
	LockOnAuthFailure  bool
	FakeDelay          time.Duration
	CacheSize          int
	BackendTimeout     time.Duration
	MaxConcurrent      int
	OPPath             string
	EnableAuditLog     bool
	AuditRetention     int // days
	StaleIfError       time.Duration
	OPBudget           backend.OPBudget
	RefreshAhead       bool
	RevokeLeasesOnLock bool
	Service            string // as serviceManager returns it: "" when no service manager runs the daemon
	// ExitWhenIdle is how long the daemon waits with no connection open
	// and no backend call running before it stops; 0 never.
	ExitWhenIdle time.Duration
	// AskTimeout is how long a read a rule asks about waits for an answer.
	AskTimeout time.Duration
	// LockOnScreenLock locks the session with the user's screen and on
	// sleep; UnlockWithSession opens it again with the screen's unlock.
	LockOnScreenLock, UnlockWithSession bool
}

// newLogger returns the daemon's root logger: human-readable on a terminal,
// JSON lines otherwise.
func newLogger(verbose bool) zerolog.Logger {
	level := zerolog.InfoLevel
	if verbose {
		level = zerolog.DebugLevel
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	var w = zerologOutput()
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}
