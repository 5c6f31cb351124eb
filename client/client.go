// Package client talks to the opx daemon: it finds the socket, starts the
// daemon when none is running, pins its certificate, sends the bearer token
// and turns answers into values and typed errors. It also holds the client
// subcommands of the opx binary. docs/protocol.md is the wire it speaks;
// docs/architecture.md places it among the other packages.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/xdg"
)

// serverName is the name in the daemon's certificate.
const serverName = "opx-authd"

// Error is a failure the daemon reported, or one the client met on the way.
// Hint, when set, tells the user what to do about it.
type Error struct {
	Code    string // a wire code (api.Code...), or "" for a local failure
	Message string
	Hint    string
	// Policy, with api.CodeForbidden, reports that opx's own policy
	// refused (not a backend or server).
	Policy bool
	Err    error // the cause, for local failures
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// IsCode reports whether err is an *Error with the given wire code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Options configure a Client.
type Options struct {
	// Paths locates the socket, token and certificate; the zero Paths
	// means the ones opx itself uses in this environment (xdg.Resolve).
	Paths xdg.Paths
	// Autostart starts the daemon when nothing answers on the socket.
	Autostart bool
	// DaemonPath is the program Autostart starts: an opx binary (run with
	// the daemon subcommand) or an opx-authd link. "" means the opx found
	// on PATH.
	DaemonPath string
	// StartTimeout bounds the wait for an autostarted daemon; zero means 10s.
	StartTimeout time.Duration
	// Warn, if set, is told (once per Client, or per WarnOnce when shared)
	// when the daemon uses other config or policy files than Paths names.
	Warn     func(msg string)
	WarnOnce *sync.Once
	// BeforeRequest, if set, is called once, just before the first request
	// is written (the start-up trace, OPX_STARTUP_TRACE).
	BeforeRequest func()
	// DaemonArgs are flags for a daemon this client starts.
	DaemonArgs []string
	// Expect, when set, is what this command's environment asks of the
	// daemon: when the running daemon's settings change what a request
	// gets (Expectation.diffs), Warn is told once, or with Strict the
	// request fails.
	Expect *Expectation
	Strict bool
	// Notes, if set, is told of the daemon's settings that differ without
	// changing what a request gets (TTL, version): opx doctor lists them.
	Notes func(msg string)
	// Waiting, if set, is told when the daemon says a request waits: for
	// the user's answer to a question a policy rule asks ("approval ID",
	// api.WaitingHeader).
	Waiting func(what string)

	settings *string // if set, gets each answer's api.SettingsHeader (Serves)
}

// Client is a connection to the daemon. It is safe for concurrent use.
type Client struct {
	opts     Options
	pathsErr error // why the zero Options.Paths could not be resolved

	// initMu guards the first connection: until one succeeds, each request
	// tries again (a daemon may have been started meanwhile).
	initMu   sync.Mutex
	ready    bool
	warnOnce sync.Once

	// mu serialises requests on the one connection a client keeps; the
	// CLI makes one or two requests per process, so a pool buys nothing and
	// costs start-up time. It guards what follows.
	mu      sync.Mutex
	token   string
	tlsConf *tls.Config
	pre     net.Conn // the first connection, made while checking the daemon is up
	conn    *tls.Conn
	connFD  string // conn's file descriptor number, for api.ConnFDHeader ("" unknown or none)
	br      *bufio.Reader
	// sealer seals 1Password identities with the key of sealerToken.
	sealer      *api.IdentitySealer
	sealerToken string
}

// New returns a client; it connects on first use.
func New(opts Options) *Client {
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 10 * time.Second
	}
	c := &Client{opts: opts}
	if opts.Paths.SocketPath == "" {
		c.opts.Paths, c.pathsErr = xdg.Resolve(os.Getenv)
	}
	return c
}

// Close drops the connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked()
	if c.pre != nil {
		c.pre.Close()
		c.pre = nil
	}
}

func (c *Client) dropLocked() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.br = nil, nil
	}
}

// connect makes sure a daemon answers on the socket (starting one if allowed),
// then loads the token and certificate the daemon wrote.
func (c *Client) connect(ctx context.Context) error {
	c.initMu.Lock()
	defer c.initMu.Unlock()
	if c.ready {
		return nil
	}
	if c.pathsErr != nil {
		return &Error{Message: c.pathsErr.Error(), Err: c.pathsErr}
	}
	conn, err := c.dialOrStart(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadCredentialsLocked(); err != nil {
		conn.Close()
		return err
	}
	c.pre, c.ready = conn, true
	return nil
}

// loadCredentialsLocked reads the token and the certificate the daemon
// wrote. c.mu is held.
func (c *Client) loadCredentialsLocked() error {
	p := c.opts.Paths
	tok, err := xdg.ReadPrivateFile(p.TokenFile)
	// A daemon puts its token file back when it is gone, as it accepts a
	// connection (this one): give it a moment.
	for wait := 5 * time.Millisecond; errors.Is(err, fs.ErrNotExist) && wait < 500*time.Millisecond; wait *= 2 {
		time.Sleep(wait)
		tok, err = xdg.ReadPrivateFile(p.TokenFile)
	}
	if err != nil {
		return &Error{Message: fmt.Sprintf("read the daemon's token: %v", err), Err: err,
			Hint: "the daemon writes it on start and puts it back when it is gone; if a daemon answers at " + p.SocketPath + " but never writes it, it runs with other HOME or XDG settings: stop it (opx status names its pid) and run the command again"}
	}
	c.token = strings.TrimSpace(string(tok))
	certPEM, err := os.ReadFile(p.CertFile)
	for wait := 5 * time.Millisecond; errors.Is(err, fs.ErrNotExist) && wait < 500*time.Millisecond; wait *= 2 {
		time.Sleep(wait) // put back as the token is
		certPEM, err = os.ReadFile(p.CertFile)
	}
	if err != nil {
		return &Error{Message: fmt.Sprintf("read the daemon's certificate: %v", err), Err: err}
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return &Error{Message: fmt.Sprintf("no certificate in %s", p.CertFile), Hint: "restart the daemon to make a new one"}
	}
	pinned := block.Bytes
	c.tlsConf = &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		// The daemon's certificate is pinned: the client trusts exactly
		// the bytes of tls.crt, so there is no chain to build. The
		// handshake still proves the daemon holds the matching key.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, pinned) {
				return errors.New("the daemon's certificate is not the pinned one")
			}
			if time.Now().After(cs.PeerCertificates[0].NotAfter) {
				return errors.New("the daemon's certificate has expired")
			}
			return nil
		},
		NextProtos: []string{"http/1.1"},
		// X25519 alone: the hybrid post-quantum exchange costs a
		// millisecond per handshake and protects nothing on a local
		// socket that an attacker cannot record.
		CurvePreferences: []tls.CurveID{tls.X25519},
	}
	return nil
}

// dialTLSLocked connects: the socket (the one kept from start-up, if any),
// then a TLS handshake against the pinned certificate. c.mu is held.
func (c *Client) dialTLSLocked(ctx context.Context) (*tls.Conn, error) {
	conn := c.pre
	c.pre = nil
	if conn == nil {
		// The daemon may have stopped (its idle timeout) since the last
		// request: start another as the first request would.
		var err error
		if conn, err = c.dialOrStart(ctx); err != nil {
			return nil, err
		}
	}
	c.connFD = connFD(conn)
	tc := tls.Client(conn, c.tlsConf)
	err := tc.HandshakeContext(ctx)
	if err != nil && !errors.Is(err, io.EOF) && !connReset(err) {
		// A daemon started since the credentials were read may have made
		// a new certificate (the old one was expiring): read them again,
		// once.
		conn.Close()
		if conn, err = c.dialOrStart(ctx); err != nil {
			return nil, err
		}
		if err := c.loadCredentialsLocked(); err != nil {
			conn.Close()
			return nil, err
		}
		c.connFD = connFD(conn)
		tc = tls.Client(conn, c.tlsConf)
		err = tc.HandshakeContext(ctx)
	}
	if err != nil {
		conn.Close()
		if errors.Is(err, io.EOF) || connReset(err) {
			return nil, &Error{Message: fmt.Sprintf("the daemon closed the connection before the TLS handshake: %v", err), Err: err,
				Hint: fmt.Sprintf("the daemon refuses connections past %d from one process (its log says so); otherwise see %s", api.MaxConnsPerProcess, c.opts.Paths.LogFile)}
		}
		return nil, &Error{Message: fmt.Sprintf("TLS handshake with the daemon failed: %v", err), Err: err,
			Hint: "the daemon's certificate does not match " + c.opts.Paths.CertFile + "; restart the daemon"}
	}
	return tc, nil
}

// do sends one request and decodes the answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if err := c.connect(ctx); err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		if len(b) > api.MaxBodyBytes {
			return &Error{Code: api.CodeTooLarge, Message: fmt.Sprintf("request is %d bytes; the daemon takes at most %d", len(b), api.MaxBodyBytes)}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+serverName+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, data, err := c.roundTrip(ctx, req)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			return ce
		}
		return &Error{Message: fmt.Sprintf("request to the daemon failed: %v", err), Err: err,
			Hint: "the daemon may have stopped or crashed; run the command again to start a new one, or see " + c.opts.Paths.LogFile}
	}
	if c.opts.settings != nil {
		*c.opts.settings = resp.Header.Get(api.SettingsHeader)
	}
	if err := c.compareDaemon(resp.Header.Get(api.PathsHeader), resp.Header.Get(api.SettingsHeader), schemesOf(in)); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == nil {
			return &Error{Code: api.CodeInternal, Message: fmt.Sprintf("daemon answered %s", resp.Status)}
		}
		e := &Error{Code: eb.Error.Code, Message: eb.Error.Message, Policy: eb.Error.Policy}
		if eb.Error.Peer {
			e.Hint = "the daemon refused this process itself, not a ref (the message says why); opx doctor checks the daemon"
			return e
		}
		return c.withHint(e)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &Error{Message: fmt.Sprintf("malformed answer from the daemon: %v", err), Err: err}
	}
	clear(data)
	return nil
}

// compareDaemon warns, once per command, when the running daemon is not
// the one this command would start in a way that matters: other config or
// policy files (from api.PathsHeader: another HOME or XDG settings, so its
// policy is not the one the user edits), or settings that change what a
// request for refs of schemes gets (from api.SettingsHeader, against
// Expect: a fake daemon for a caller that expects real values, a backend
// that does not read a scheme for real, another op or Vault/OpenBao server
// than this environment chose), which would otherwise go on serving
// without a word. With Strict, such settings fail the request instead.
// Settings that change nothing a caller reads (TTL, version) go to Notes.
func (c *Client) compareDaemon(pathsHeader, settingsHeader string, schemes []string) error {
	paths := c.pathDiffs(pathsHeader)
	settings, notes := c.opts.Expect.diffs(settingsHeader, schemes)
	if c.opts.Notes != nil {
		for _, n := range notes {
			c.opts.Notes("the running daemon has " + n)
		}
	}
	if len(settings) > 0 && c.opts.Strict {
		return &Error{Message: "the running daemon has " + strings.Join(settings, ", "),
			Hint: "to use this command's settings, run: opx restart (OPX_STRICT=1 makes this an error)"}
	}
	var parts []string
	if len(paths) > 0 {
		parts = append(parts, "uses "+strings.Join(paths, " and ")+", so it was started with other HOME or XDG settings")
	}
	if len(settings) > 0 {
		parts = append(parts, "has "+strings.Join(settings, ", "))
	}
	if len(parts) == 0 || c.opts.Warn == nil {
		return nil
	}
	once := c.opts.WarnOnce
	if once == nil {
		once = &c.warnOnce
	}
	once.Do(func() {
		c.opts.Warn("the running daemon " + strings.Join(parts, "; it ") + ". To use this command's, run: opx restart")
	})
	return nil
}

// pathDiffs names the daemon's config and policy files that are not this
// client's.
func (c *Client) pathDiffs(header string) []string {
	if header == "" {
		return nil
	}
	theirs, err := url.ParseQuery(header)
	if err != nil {
		return nil
	}
	p := c.opts.Paths
	var diffs []string
	if got := theirs.Get("policy"); got != p.PolicyFile {
		diffs = append(diffs, fmt.Sprintf("the policy %s (this command's is %s)", got, p.PolicyFile))
	}
	if got := theirs.Get("config"); got != p.ConfigFile {
		diffs = append(diffs, fmt.Sprintf("the config %s (this command's is %s)", got, p.ConfigFile))
	}
	return diffs
}

// roundTrip sends req on the kept connection, or a new one. A kept
// connection the daemon has closed meanwhile (idle timeout) is replaced once;
// every endpoint is safe to send twice.
func (c *Client) roundTrip(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		reused := c.conn != nil
		if !reused {
			conn, err := c.dialTLSLocked(ctx)
			if err != nil {
				return nil, nil, err
			}
			c.conn, c.br = conn, bufio.NewReader(conn)
		}
		if d, ok := ctx.Deadline(); ok {
			c.conn.SetDeadline(d)
		} else {
			c.conn.SetDeadline(time.Time{})
		}
		if req.GetBody != nil && attempt > 0 {
			body, err := req.GetBody()
			if err != nil {
				return nil, nil, err
			}
			req.Body = body
		}
		if c.opts.BeforeRequest != nil {
			c.opts.BeforeRequest()
			c.opts.BeforeRequest = nil
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		if c.connFD != "" {
			req.Header.Set(api.ConnFDHeader, c.connFD)
		} else {
			req.Header.Del(api.ConnFDHeader)
		}
		err := req.Write(c.conn)
		var resp *http.Response
		for err == nil {
			resp, err = http.ReadResponse(c.br, req)
			if err != nil || resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
				break
			}
			// An interim answer: the request waits (for the user).
			if w := resp.Header.Get(api.WaitingHeader); w != "" && c.opts.Waiting != nil {
				c.opts.Waiting(w)
			}
		}
		if err == nil {
			// Read the body now, under the lock, so the connection is
			// free for the next request when we return.
			body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			resp.Body.Close()
			if rerr != nil {
				c.dropLocked()
				return nil, nil, fmt.Errorf("read the answer: %w", rerr)
			}
			if resp.Close {
				c.dropLocked()
			}
			return resp, body, nil
		}
		c.dropLocked()
		if !reused || attempt > 0 {
			return nil, nil, err
		}
	}
}

// signInHint is what to do when a backend says it is not signed in.
const signInHint = "sign in with: opx login 1password (or op signin), then run: opx unlock if the session locked"

// saysWhatToDo reports whether a daemon's message already names the command
// that fixes it, so that no hint repeats it.
func saysWhatToDo(msg string) bool {
	return strings.Contains(msg, "run: opx ") || strings.Contains(msg, "with: opx ")
}

// withHint adds what the user can do about a daemon error, unless its
// message says it already.
func (c *Client) withHint(e *Error) *Error {
	if saysWhatToDo(e.Message) {
		return e
	}
	switch e.Code {
	case api.CodeSessionLocked:
		e.Hint = "run: opx unlock"
	case api.CodeForbidden:
		e.Hint = "the policy refused it; to see what was refused and allow it: opx audit -i"
	case api.CodeUnauthorized:
		if strings.Contains(e.Message, "bearer token") {
			e.Hint = "the token in " + c.opts.Paths.TokenFile + " is not the running daemon's; restart the daemon"
		} else {
			e.Hint = signInHint
		}
	case api.CodeBackendTimeout:
		e.Hint = "the backend is slow or hanging; try again, or raise the daemon's --backend-timeout"
	case api.CodeTooLarge:
		e.Hint = fmt.Sprintf("split the work into requests of at most %d refs", api.MaxRefs)
	}
	return e
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var out api.Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &out)
	return &out, err
}

// Serves reports whether a running daemon answers the reads of scheme's
// refs that this environment makes (Options.Expect), and if not, why: the
// differences that make a shim hand them to the real program. It never
// starts a daemon; with none running it returns ErrNotRunning.
func (c *Client) Serves(ctx context.Context, scheme string) (why []string, err error) {
	opts := c.opts
	opts.Autostart, opts.Strict, opts.Warn, opts.WarnOnce, opts.Notes = false, false, nil, nil, nil
	var header string
	opts.settings = &header
	probe := New(opts)
	defer probe.Close()
	if _, err := probe.Status(ctx); err != nil {
		return nil, err
	}
	why, _ = c.opts.Expect.diffs(header, []string{scheme})
	return why, nil
}

// Health asks the daemon to run its backend's checks (opx doctor), with
// account as the caller's default account.
func (c *Client) Health(ctx context.Context, account string) (*api.HealthResponse, error) {
	var out api.HealthResponse
	err := c.do(ctx, http.MethodPost, "/v1/backend/health", api.HealthRequest{Account: account}, &out)
	return &out, err
}

// Unlock asks the daemon to check the backend's sign-in and unlock the
// session. When the backend is not signed in, the error has the code
// api.CodeSessionLocked and the daemon's reason.
func (c *Client) Unlock(ctx context.Context) (*api.SessionResponse, error) {
	var out api.SessionResponse
	if err := c.do(ctx, http.MethodPost, "/v1/session/unlock", struct{}{}, &out); err != nil {
		return nil, err
	}
	if !out.Success {
		e := &Error{Code: api.CodeSessionLocked, Message: out.Message}
		if !saysWhatToDo(out.Message) {
			e.Hint = "sign in to the backend (for 1Password: opx login 1password), then run: opx unlock"
		}
		return &out, e
	}
	return &out, nil
}

// Verify asks the daemon to try a Vault or OpenBao login.
func (c *Client) Verify(ctx context.Context, req api.VerifyRequest) (*api.VerifyResponse, error) {
	var out api.VerifyResponse
	err := c.do(ctx, http.MethodPost, "/v1/backend/verify", req, &out)
	return &out, err
}

// Stop asks the daemon to stop once its requests in flight have finished.
func (c *Client) Stop(ctx context.Context) (*api.StopResponse, error) {
	var out api.StopResponse
	err := c.do(ctx, http.MethodPost, "/v1/daemon/stop", struct{}{}, &out)
	return &out, err
}

// Forget asks the daemon to drop the cached values of scheme's refs.
func (c *Client) Forget(ctx context.Context, scheme string) (int, error) {
	var out api.ForgetResponse
	err := c.do(ctx, http.MethodPost, "/v1/cache/forget", api.ForgetRequest{Scheme: scheme}, &out)
	return out.Dropped, err
}

// Approvals lists the questions waiting for the user's answer (a policy
// rule that asks), oldest first.
func (c *Client) Approvals(ctx context.Context) ([]api.Question, error) {
	var out api.ApprovalsResponse
	if err := c.do(ctx, http.MethodGet, "/v1/approvals", nil, &out); err != nil {
		return nil, err
	}
	return out.Pending, nil
}

// Approve answers a question. The daemon refuses the program the question
// is about, and the processes it started.
func (c *Client) Approve(ctx context.Context, req api.ApproveRequest) (*api.ApproveResponse, error) {
	var out api.ApproveResponse
	if err := c.do(ctx, http.MethodPost, "/v1/approvals/answer", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Lock asks the daemon to lock the session now.
func (c *Client) Lock(ctx context.Context) (*api.SessionResponse, error) {
	var out api.SessionResponse
	err := c.do(ctx, http.MethodPost, "/v1/session/lock", struct{}{}, &out)
	return &out, err
}
