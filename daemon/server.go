package daemon

import (
	"context"
	"crypto/tls"
	"errors"
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
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/opxhq/opx/audit"
	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/policy"
	"github.com/opxhq/opx/session"
	"github.com/opxhq/opx/xdg"
)

// maxSocketPath is the longest path a Unix socket address holds (macOS has
// 104 bytes, Linux 108, both counting the NUL).
const maxSocketPath = 103

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
	session *session.Session
	core    *core
	policy  *policy.Store
	audit   *audit.Log // nil when the audit log is off
	euid    int
	started time.Time

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
}

// serviceManager is the service manager that runs this daemon, as the unit
// or agent says (OPX_SERVICE: "systemd" or "launchd", optionally with
// ":UNIT" or ":LABEL" when it is not opx's own name), or "".
func serviceManager() string {
	v := os.Getenv("OPX_SERVICE")
	manager, name, _ := strings.Cut(v, ":")
	if (manager != "systemd" && manager != "launchd") || strings.ContainsAny(name, " /\n") {
		return ""
	}
	return v
}

// requestStop makes serve shut down as it does on SIGTERM.
func (s *server) requestStop() {
	s.stopOnce.Do(func() { close(s.stopping) })
}

// Serve runs the daemon with cfg until SIGINT or SIGTERM, then shuts down
// cleanly: requests in flight finish, the cache is zeroed and the socket is
// removed.
func Serve(cfg Config, info BuildInfo, log zerolog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	return serve(ctx, cfg, info, log, nil)
}

// serve is Serve with the stop signal as ctx; ready, when set, is called
// once the socket accepts connections.
func serve(ctx context.Context, cfg Config, info BuildInfo, log zerolog.Logger, ready func()) error {
	debug.SetTraceback("none") // a panic prints no values, only its message
	if err := harden(); err != nil {
		log.Warn().Err(err).Msg("could not disable core dumps and debugger attachment")
	}
	paths, err := xdg.Resolve(os.Getenv)
	if err != nil {
		return err
	}
	if cfg.Socket != "" {
		paths.SetSocket(cfg.Socket)
	}
	if len(paths.SocketPath) > maxSocketPath {
		return fmt.Errorf("socket path %s is %d bytes; the limit is %d: set OPX_SOCKET_PATH or --sock to a shorter path", paths.SocketPath, len(paths.SocketPath), maxSocketPath)
	}
	if cfg.CacheSize < 1 {
		return fmt.Errorf("--cache-size must be at least 1")
	}
	if cfg.TTL <= 0 {
		return fmt.Errorf("--ttl must be more than 0")
	}
	if cfg.BackendTimeout <= 0 {
		return fmt.Errorf("--backend-timeout must be more than 0")
	}

	for _, dir := range []string{paths.DataDir, filepath.Dir(paths.SocketPath)} {
		if err := xdg.EnsureDir(dir); err != nil {
			return err
		}
		if err := xdg.CheckPrivateDir(dir); err != nil {
			return err
		}
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

	var al *audit.Log
	if cfg.EnableAuditLog {
		if al, err = audit.Open(paths.DataDir, cfg.AuditRetention); err != nil {
			return err
		}
		defer al.Close()
	}

	pol, err := policy.Load(paths.PolicyFile, func(old, cur *policy.Snapshot) {
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
		return err
	}
	first := pol.Current()
	// Executables are hashed only while the policy in force (read as each
	// connection is identified) names one by content.
	wantHash := func() bool {
		snap := pol.Current()
		return snap.State == policy.StateLoaded && snap.Policy.UsesExeSHA256()
	}
	if first.State == policy.StateLoaded {
		if n := first.Policy.UnsignableRules(); n > 0 {
			log.Warn().Int("rules", n).Msg("require_signed rules cannot be satisfied on this system; they allow nothing")
		}
	}

	// Set once the core exists; a server change before that has no values
	// to drop.
	forgetScheme := func(string) int { return 0 }
	be, err := backend.New(cfg.Backend, backend.Options{
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
		return err
	}
	defer be.Close()

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
		started:  time.Now(),
		accounts: make(map[string]bool),
		stopping: make(chan struct{}),

		policyEnv:   policy.Env{Home: os.Getenv("HOME"), Signed: policy.SignedCheck()},
		pathsHeader: url.Values{"config": {paths.ConfigFile}, "policy": {paths.PolicyFile}}.Encode(),
	}
	s.session = session.New(cfg.EnableSessionLock, cfg.SessionTimeout, s.onLock)
	defer s.session.Close()
	s.core = newCore(coreConfig{
		TTL:            cfg.TTL,
		Capacity:       cfg.CacheSize,
		BackendTimeout: cfg.BackendTimeout,
		MaxConcurrent:  cfg.MaxConcurrent,
		LockOnAuthFail: cfg.LockOnAuthFailure,
		StaleIfError:   cfg.StaleIfError,
		RefreshAhead:   cfg.RefreshAhead,
		OnAuthFailure: func(backend, account, msg string) {
			al.AuthFailure(nil, "backend "+backend+", "+accountName(account)+": "+msg)
		},
		OnAccountLock: func(account, reason string, wiped int) {
			log.Warn().Str("account", account).Int("wiped", wiped).Msg("authentication failed; the account's reads are locked")
			// It runs before the batch's waiters are answered: it must
			// not wait on an audit write that hangs.
			al.NoWait().Session(audit.SessionLock, session.ReasonAuthFailure+": "+accountName(account))
		},
	}, be, s.session, log)
	forgetScheme = s.core.forgetScheme
	// Last (defers run in reverse): once no backend call runs any more,
	// the leases held are revoked, then the backend closes.
	defer s.revokeLeases("daemon stopped")
	defer s.core.close()

	// We hold the lock, so a socket here is a dead daemon's.
	if err := removeStaleSocket(paths.SocketPath); err != nil {
		return err
	}
	ln, err := listenUnix(paths.SocketPath)
	if err != nil {
		return err
	}
	defer removeOwnSocket(paths.SocketPath, ln)

	srv := &http.Server{
		Handler:           s.routes(),
		TLSConfig:         certs.serverTLSConfig(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.BackendTimeout + 30*time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          newStdLogger(log),
		ConnContext:       connContext,
		ConnState:         s.trimWhenIdle(),
	}
	errc := make(chan error, 1)
	// Peer credentials are read from the raw Unix connection, before TLS.
	keeper := &tokenKeeper{dir: paths.DataDir, log: func(msg string) { log.Warn().Msg(msg) }, files: []keptFile{
		{paths.TokenFile, func() []byte { return token }},
		{paths.CertFile, certs.currentPEM},
	}}
	peers := newPeerListener(ln, func(r refusal) {
		log.Warn().Int("pid", r.PID).Uint64("connections_refused", r.Conns).Uint64("bodies_refused", r.Bodies).
			Int("open", r.Open).Int("open_all", r.Total).Int64("pending_body_bytes", r.PendingBodyBytes).
			Int("limit", r.ConnLimit).Int("limit_all", r.AllLimit).
			Msg("connections refused: one process holds the most connections (or pending request bytes) the daemon keeps for it")
	})
	peers.self, peers.hashes, peers.wantHash, peers.accepted = selfExecutable(), &exeHashes{}, wantHash, keeper.check
	s.conns = peers.conns
	go func() { errc <- srv.Serve(tls.NewListener(peers, srv.TLSConfig)) }()

	log.Info().
		Str("version", info.Version).
		Int("pid", os.Getpid()).
		Str("backend", be.Name()).
		Str("socket", paths.SocketPath).
		Str("config", paths.ConfigFile).
		Str("policy", paths.PolicyFile).
		Str("policy_state", first.State).
		Str("data_dir", paths.DataDir).
		Str("ttl", cfg.TTL.String()).
		Bool("session_lock", cfg.EnableSessionLock && cfg.SessionTimeout > 0).
		Str("session_timeout", cfg.SessionTimeout.String()).
		Msg("daemon started")
	al.Daemon(audit.DaemonStart, os.Getpid(), info.Version)
	defer al.NoWait().Daemon(audit.DaemonStop, os.Getpid(), info.Version)
	if ready != nil {
		ready()
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	case <-s.stopping:
	}
	log.Info().Msg("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.BackendTimeout+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn().Err(err).Msg("requests still running at shutdown were cut off")
		srv.Close()
	}
	log.Info().Msg("daemon stopped; cache wiped")
	return nil
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

// removeStaleSocket removes a socket left at path by a daemon that died.
// Anything else there (a user's file, a FIFO, a directory, a link) is never
// removed: it is an error naming the path.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check the socket path %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("socket path %s is not a socket (%s); opx removes only a stale socket there: move it away or choose another --sock", path, xdg.FileKind(fi.Mode()))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// removeOwnSocket removes the socket at path at shutdown if it is still the
// one ln made (not something another process put there since).
func removeOwnSocket(path string, ln net.Listener) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return
	}
	if mine, ok := ln.(interface{ sameFile(os.FileInfo) bool }); ok && !mine.sameFile(fi) {
		return
	}
	os.Remove(path)
}

// listenUnix listens on path with a socket file only the owner can use.
func listenUnix(path string) (net.Listener, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("check socket: %w", err)
	}
	return &ownedListener{ln, fi}, nil
}

// ownedListener remembers which file its socket is, so that shutdown removes
// only that one.
type ownedListener struct {
	net.Listener
	fi os.FileInfo
}

func (l *ownedListener) sameFile(fi os.FileInfo) bool { return os.SameFile(l.fi, fi) }

// onLock runs when the session locks: the cache is wiped at once.
func (s *server) onLock(reason string) {
	n := s.core.cache.Len()
	s.core.wipe()
	s.log.Info().Str("reason", reason).Int("wiped", n).Msg("session locked")
	s.audit.NoWait().Session(audit.SessionLock, reason) // a lock never waits for the audit log
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
