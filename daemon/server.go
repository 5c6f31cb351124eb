package daemon

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/audit"
	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/policy"
	"github.com/opxhq/opx/session"
	"github.com/opxhq/opx/xdg"
)

// server is one running daemon.
type server struct {
	cfg Config

	opVer struct { // op --version, for status
		sync.Mutex
		stamp, version string
	}
	info    BuildInfo
	paths   xdg.Paths
	log     zerolog.Logger
	token   []byte
	backend backend.Backend
	// opIdentity is the daemon's own 1Password identity: a service
	// account or Connect server named by its environment, else the
	// desktop's. A request naming the same one reads as the daemon.
	opIdentity backend.OPIdentity
	// sealer opens the identities requests carry (api.SealedIdentity).
	sealer *api.IdentitySealer
	// asker asks the user about the reads a policy rule asks for.
	asker *asker
	// follows is what the daemon watches to lock with the user's session;
	// lockCause, what it saw last (the audit log's lock record says it).
	follows   atomic.Pointer[string]
	lockCause atomic.Pointer[string]
	session   *session.Session
	core      *core
	policy    *policy.Store
	audit     *audit.Log // nil when the audit log is off
	euid      int
	sid       string // the daemon's user SID on Windows, "" elsewhere
	started   time.Time

	policyEnv      policy.Env     // home for ~/ rules, code signatures
	pathsHeader    string         // api.PathsHeader's value
	settingsHeader settingsHeader // api.SettingsHeader's value
	auditDown      atomic.Bool

	accountsMu sync.Mutex
	accounts   map[string]bool // accounts read so far, validated on unlock
	defaults   defaultAccount  // config.json's default account, for the policy
	conns      *connTable      // connections and pending request bodies by process

	stopping chan struct{} // closed by POST /v1/daemon/stop
	stopOnce sync.Once
	idle     *idleExit // --exit-when-idle; nil when off
}

// serviceManager is the service manager that runs this daemon, as the unit,
// agent or task says (v is OPX_SERVICE or --service: "systemd", "launchd"
// or "schtasks", optionally with ":UNIT", ":LABEL" or ":TASK" when it is
// not opx's own name), or "" for anything else.
func serviceManager(v string) string {
	manager, name, _ := strings.Cut(v, ":")
	if (manager != "systemd" && manager != "launchd" && manager != "schtasks") || strings.ContainsAny(name, " /\\\n") {
		return ""
	}
	return v
}

// requestStop makes serve shut down as it does on SIGTERM.
func (s *server) requestStop() {
	s.stopOnce.Do(func() { close(s.stopping) })
}

// Serve runs the daemon with cfg until SIGINT or SIGTERM (stopSignals),
// then shuts down cleanly: requests in flight finish, the cache is zeroed
// and the socket (on Windows, the pipe's name file) is removed.
func Serve(cfg Config, info BuildInfo, log zerolog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	ignoreSignals()
	return serve(ctx, cfg, info, log, nil)
}

// serve is Serve with the stop signal as ctx; ready, when set, is called
// once the socket accepts connections.
func serve(ctx context.Context, cfg Config, info BuildInfo, log zerolog.Logger, ready func()) error {
	debug.SetTraceback("none") // a panic prints no values, only its message
	if err := harden(); err != nil {
		log.Warn().Err(err).Msg("could not disable core dumps and debugger attachment")
	}
	paths, err := prepare(cfg)
	if err != nil {
		return err
	}
	lock, err := acquireLock(paths.LockFile)
	if err != nil {
		return err
	}
	defer lock.release()

	token, err := loadOrCreateToken(paths.TokenFile)
	if err != nil {
		return err
	}
	defer clear(token)
	certs, err := loadOrCreateCert(paths.CertFile, paths.KeyFile)
	if err != nil {
		return err
	}
	al, err := openAudit(cfg, paths)
	if err != nil {
		return err
	}
	defer al.Close()
	pol, err := loadPolicy(paths.PolicyFile, al, log)
	if err != nil {
		return err
	}
	s, err := newServer(cfg, info, paths, log, token, pol, al)
	if err != nil {
		return err
	}
	defer s.close()

	// Follow the user's session before the socket is there: a
	// screen that locks once a client has seen the daemon up locks it.
	follows, stopFollowing := s.followSession()
	defer stopFollowing()
	s.follows.Store(&follows)
	log.Info().Str("follows", follows).Msg("following the user's session")

	// We hold the lock: a socket (or pipe name) there is a dead daemon's.
	ln, err := listen(paths.SocketPath)
	if err != nil {
		return err
	}
	defer removeOwnSocket(paths.SocketPath, ln)
	srv := s.httpServer(certs)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(s.listenPeers(ln, certs), srv.TLSConfig)) }()

	s.logStarted()
	al.Daemon(audit.DaemonStart, os.Getpid(), info.Version, "")
	var why string // set by runUntilStopped
	defer func() { al.NoWait().Daemon(audit.DaemonStop, os.Getpid(), info.Version, why) }()
	if ready != nil {
		ready()
	}
	why, err = s.runUntilStopped(ctx, srv, errc)
	return err
}

// prepare checks cfg and returns the daemon's paths, with the private
// directories of its data and socket made.
func prepare(cfg Config) (xdg.Paths, error) {
	paths, err := xdg.Resolve(os.Getenv)
	if err != nil {
		return paths, err
	}
	if cfg.Socket != "" {
		paths.SetSocket(cfg.Socket)
	}
	if err := checkSocketPath(paths.SocketPath); err != nil {
		return paths, err
	}
	switch {
	case cfg.CacheSize < 1:
		return paths, fmt.Errorf("--cache-size must be at least 1")
	case cfg.TTL <= 0:
		return paths, fmt.Errorf("--ttl must be more than 0")
	case cfg.BackendTimeout <= 0:
		return paths, fmt.Errorf("--backend-timeout must be more than 0")
	}
	for _, dir := range []string{paths.DataDir, filepath.Dir(paths.SocketPath)} {
		if err := xdg.EnsureDir(dir); err != nil {
			return paths, err
		}
		if err := xdg.CheckPrivateDir(dir); err != nil {
			return paths, err
		}
	}
	return paths, nil
}

// openAudit opens the audit log when cfg enables it; nil (which records
// nothing) when not.
func openAudit(cfg Config, paths xdg.Paths) (*audit.Log, error) {
	if !cfg.EnableAuditLog {
		return nil, nil
	}
	return audit.Open(paths.DataDir, cfg.AuditRetention)
}

// loadPolicy loads the policy file and watches it, logging (and auditing)
// each change of its state.
func loadPolicy(path string, al *audit.Log, log zerolog.Logger) (*policy.Store, error) {
	pol, err := policy.Load(path, func(old, cur *policy.Snapshot) {
		ev := log.Info()
		if cur.State == policy.StateFailedClosed || cur.Reason != "" {
			ev = log.Error()
		}
		ev.Str("policy", cur.Path).Str("state", cur.State).Str("was", old.State).Str("hash", cur.Hash).Str("reason", cur.Reason).Msg(policyMessage(old, cur))
		// This runs under the policy store's lock, which every request
		// (lock and status too) takes: it never waits for a write.
		if err := al.NoWait().Policy(cur.State, cur.Hash, cur.Reason, cur.Path); err != nil {
			log.Error().Err(err).Msg("the audit log cannot record a policy change")
		}
	})
	if err != nil {
		return nil, err
	}
	if first := pol.Current(); first.State == policy.StateLoaded {
		if n := first.Policy.UnsignableRules(); n > 0 {
			log.Warn().Int("rules", n).Msg("require_signed rules cannot be satisfied on this system; they allow nothing")
		}
	}
	return pol, nil
}

// newServer returns the daemon with its backend, session and core; close
// stops them.
func newServer(cfg Config, info BuildInfo, paths xdg.Paths, log zerolog.Logger, token []byte, pol *policy.Store, al *audit.Log) (*server, error) {
	// Set once the core exists; a server change before that has no values
	// to drop.
	forgetScheme := func(string) int { return 0 }
	opIdentity := backend.TakeProcessIdentity()
	be, err := backend.New(cfg.Backend, backend.Options{
		OPIdentity:     opIdentity,
		FakeDelay:      cfg.FakeDelay,
		OPPath:         cfg.OPPath,
		MaxProcs:       cfg.MaxConcurrent,
		OPSessionsFile: filepath.Join(paths.DataDir, "op-sessions.json"),
		OPBudget:       cfg.OPBudget,
		OnLogin:        al.BackendLogin,
		OnServerChange: func(kind string) { forgetScheme(kind) },
		ConfigFile:     paths.ConfigFile,
		DataDir:        paths.DataDir,
		Log:            log,
	})
	if err != nil {
		return nil, err
	}
	sid, err := currentSID()
	if err != nil {
		be.Close()
		return nil, err
	}
	sealer, err := api.NewIdentitySealer(token)
	if err != nil {
		be.Close()
		return nil, err
	}
	s := &server{
		cfg:      cfg,
		info:     info,
		paths:    paths,
		log:      log,
		token:    token,
		backend:  be,
		policy:   pol,
		audit:    al,
		euid:     os.Geteuid(),
		sid:      sid,
		started:  time.Now(),
		accounts: make(map[string]bool),
		stopping: make(chan struct{}),

		opIdentity: opIdentity,
		sealer:     sealer,

		policyEnv:   policy.Env{Home: homeDir(), Signed: policy.SignedCheck()},
		pathsHeader: url.Values{"config": {paths.ConfigFile}, "policy": {paths.PolicyFile}}.Encode(),
	}
	s.asker = newAsker(s, cmp.Or(cfg.AskTimeout, 30*time.Second))
	s.asker.channel = newChannel(processEnv)
	s.session = session.New(cfg.EnableSessionLock, cfg.SessionTimeout, s.onLock)
	s.core = newCore(s.coreConfig(), be, s.session, log)
	forgetScheme = s.core.forgetScheme
	s.idle = newIdleExit(cfg.ExitWhenIdle, s.core.inFlight.Load)
	return s, nil
}

// coreConfig is the core's part of the daemon's settings, with the hooks
// that log and audit what the core does on its own.
func (s *server) coreConfig() coreConfig {
	return coreConfig{
		TTL:            s.cfg.TTL,
		Capacity:       s.cfg.CacheSize,
		BackendTimeout: s.cfg.BackendTimeout,
		MaxConcurrent:  s.cfg.MaxConcurrent,
		LockOnAuthFail: s.cfg.LockOnAuthFailure,
		StaleIfError:   s.cfg.StaleIfError,
		RefreshAhead:   s.cfg.RefreshAhead,
		OnAuthFailure: func(backend, account, msg string) {
			s.audit.AuthFailure(nil, "backend "+backend+", "+accountName(account)+": "+msg)
		},
		OnAccountLock: func(account, reason string, wiped int) {
			s.log.Warn().Str("account", account).Int("wiped", wiped).Msg("authentication failed; the account's reads are locked")
			// It runs before the batch's waiters are answered: it must
			// not wait on an audit write that hangs.
			s.audit.NoWait().Session(audit.SessionLock, session.ReasonAuthFailure+": "+accountName(account))
		},
	}
}

// close stops what newServer started, in this order: once no backend call
// runs any more (the core is closed), the leases held are revoked, then
// the backend closes.
func (s *server) close() {
	s.core.close()
	s.revokeLeases("daemon stopped")
	s.session.Close()
	s.backend.Close()
}

// httpServer is the HTTP server of the API, with its limits.
func (s *server) httpServer(certs *certStore) *http.Server {
	trim := s.trimWhenIdle()
	return &http.Server{
		Handler:           s.routes(),
		TLSConfig:         certs.serverTLSConfig(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      s.cfg.BackendTimeout + s.asker.timeout + 30*time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          newStdLogger(s.log),
		ConnContext:       connContext,
		ConnState: func(c net.Conn, state http.ConnState) {
			trim(c, state)
			s.idle.connState(state)
		},
	}
}

// listenPeers wraps ln so that every connection is identified (peer
// credentials are read from the raw Unix connection, before TLS) and
// bounded per process, and the token and certificate files are checked as
// connections come.
func (s *server) listenPeers(ln net.Listener, certs *certStore) net.Listener {
	keeper := &tokenKeeper{dir: s.paths.DataDir, log: func(msg string) { s.log.Warn().Msg(msg) }, files: []keptFile{
		{s.paths.TokenFile, func() []byte { return s.token }},
		{s.paths.CertFile, certs.currentPEM},
	}}
	peers := newPeerListener(ln, func(r refusal) {
		s.log.Warn().Int("pid", r.PID).Uint64("connections_refused", r.Conns).Uint64("bodies_refused", r.Bodies).
			Int("open", r.Open).Int("open_all", r.Total).Int64("pending_body_bytes", r.PendingBodyBytes).
			Int("limit", r.ConnLimit).Int("limit_all", r.AllLimit).
			Msg("connections refused: one process holds the most connections (or pending request bytes) the daemon keeps for it")
	})
	// Executables are hashed only while the policy in force (read as each
	// connection is identified) names one by content.
	wantHash := func() bool {
		snap := s.policy.Current()
		return snap.State == policy.StateLoaded && snap.Policy.UsesExeSHA256()
	}
	peers.self, peers.hashes, peers.wantHash, peers.accepted = selfExecutable(), &exeHashes{}, wantHash, keeper.check
	s.conns = peers.conns
	return peers
}

// logStarted logs the daemon's start with its settings.
func (s *server) logStarted() {
	s.log.Info().
		Str("version", s.info.Version).
		Int("pid", os.Getpid()).
		Str("backend", s.backend.Name()).
		Str("socket", s.paths.SocketPath).
		Str("config", s.paths.ConfigFile).
		Str("policy", s.paths.PolicyFile).
		Str("policy_state", s.policy.Current().State).
		Str("data_dir", s.paths.DataDir).
		Str("ttl", s.cfg.TTL.String()).
		Bool("session_lock", s.cfg.EnableSessionLock && s.cfg.SessionTimeout > 0).
		Str("session_timeout", s.cfg.SessionTimeout.String()).
		Str("exit_when_idle", s.cfg.ExitWhenIdle.String()).
		Msg("daemon started")
}

// runUntilStopped serves until ctx ends (a signal), a client asks the
// daemon to stop or it has been idle for --exit-when-idle, then shuts srv
// down the same way for each: the requests in flight finish, for at most
// the backend timeout and a little more. It returns why it stopped, for
// the audit log.
func (s *server) runUntilStopped(ctx context.Context, srv *http.Server, errc <-chan error) (string, error) {
	done := make(chan struct{})
	defer close(done)
	var why string
	select {
	case err := <-errc:
		return "serve failed", fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		why = "signal"
	case <-s.stopping:
		why = "opx stop"
	case <-s.idle.watch(done):
		why = "idle for " + s.cfg.ExitWhenIdle.String() + " (--exit-when-idle)"
		s.log.Info().Str("exit_when_idle", s.cfg.ExitWhenIdle.String()).
			Msg("no connection open and no backend call running for --exit-when-idle: stopping as opx stop does")
	}
	s.log.Info().Str("why", why).Msg("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.BackendTimeout+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		s.log.Warn().Err(err).Msg("requests still running at shutdown were cut off")
		srv.Close()
	}
	s.log.Info().Msg("daemon stopped; cache wiped")
	return why, nil
}

// policyMessage says what a policy change means for reads.
func policyMessage(old, cur *policy.Snapshot) string {
	switch {
	case cur.State == policy.StateFailedClosed:
		return "the policy file failed closed: every read is denied until a good file returns"
	case cur.State == policy.StateLoaded && cur.Reason != "":
		return "the policy file changed but does not parse; keeping the last good policy"
	case old.State == policy.StateFailedClosed:
		return "a good policy file is back; reads are decided by it again"
	}
	return "policy loaded"
}

// trimWhenIdle returns a ConnState hook that gives memory back to the
// system a little after the last connection closes: a burst of clients
// (1,000 TLS connections hold ~100 MB of buffers) should not leave a per-user
// daemon that large for the minutes the runtime takes on its own.
func (s *server) trimWhenIdle() func(net.Conn, http.ConnState) {
	var mu sync.Mutex
	open := 0
	var timer *time.Timer
	return func(_ net.Conn, state http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch state {
		case http.StateNew:
			open++
		case http.StateClosed, http.StateHijacked:
			open--
		default:
			return
		}
		if timer != nil {
			timer.Stop()
			timer = nil
		}
		if open == 0 {
			timer = time.AfterFunc(2*time.Second, debug.FreeOSMemory)
		}
	}
}

// onLock runs when the session locks: the cache is wiped at once.
func (s *server) onLock(reason string) {
	n := s.core.cache.Len()
	s.core.wipe()
	s.asker.forget("the session was locked")
	s.log.Info().Str("reason", reason).Int("wiped", n).Msg("session locked")
	record := reason
	if c := s.lockCause.Swap(nil); c != nil && (reason == session.ReasonScreenLock || reason == session.ReasonSleep) {
		record += ": " + *c
	}
	s.audit.NoWait().Session(audit.SessionLock, record) // a lock never waits for the audit log
	s.revokeLeases("session locked")
}

// revokeLeases revokes the Vault and OpenBao leases the daemon holds
// (--revoke-leases-on-lock): no credentials it made outlive a lock or the
// daemon.
func (s *server) revokeLeases(why string) {
	lh, ok := s.backend.(backend.LeaseHolder)
	if !ok || !s.cfg.RevokeLeasesOnLock {
		return
	}
	if n := lh.RevokeLeases(); n > 0 {
		s.log.Info().Int("leases", n).Str("why", why).Msg("leases revoked")
	}
}

// rememberRead remembers account when a read of it succeeded.
func (s *server) rememberRead(account string, outs []outcome) {
	for _, o := range outs {
		if o.ok {
			s.rememberAccount(account)
			return
		}
	}
}

// rememberAccount records an account read through the daemon (a read that
// succeeded: a mistyped account is not kept), so that an unlock and opx
// doctor check every account in use.
func (s *server) rememberAccount(account string) {
	s.accountsMu.Lock()
	defer s.accountsMu.Unlock()
	if !s.accounts[account] && len(s.accounts) < 64 {
		s.accounts[account] = true
	}
}

func (s *server) accountsInUse() []string {
	s.accountsMu.Lock()
	defer s.accountsMu.Unlock()
	out := make([]string, 0, len(s.accounts))
	for a := range s.accounts {
		out = append(out, a)
	}
	return out
}
