// Package api holds the wire types of the opx daemon's HTTP API, shared by the
// daemon and the client, and the error codes both sides agree on.
// docs/protocol.md describes the protocol they make up.
package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Limits the daemon enforces on every request. The client checks them too, so
// that a user gets a clear message before a round trip.
const (
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes = 1 << 20
	// MaxRefs bounds the refs (or env entries) of one /v1/reads or /v1/resolve.
	MaxRefs = 1000
	// MaxRefLen bounds one reference, in bytes.
	MaxRefLen = 2048
	// MaxAccountLen bounds the account name, in bytes.
	MaxAccountLen = 256

	// MaxConnsPerProcess bounds the connections one process holds open on
	// the daemon, identified or not: the daemon closes the excess at once.
	MaxConnsPerProcess = 1024
	// MaxConns bounds the connections of every process together.
	MaxConns = 8192
	// MaxBodyBytesPerProcess bounds the request bytes the daemon buffers
	// for one process before the policy decides on them: a request whose
	// body would pass it is refused at once with rate_limited.
	MaxBodyBytesPerProcess = 4 << 20
	// MaxBodyBytesTotal bounds them for every process together: a request
	// beyond it waits for room.
	MaxBodyBytesTotal = 32 << 20
)

// Error codes of the wire protocol (docs/protocol.md, Errors).
const (
	CodeBadRequest     = "bad_request"
	CodeUnauthorized   = "unauthorized"
	CodeForbidden      = "forbidden"
	CodeNotFound       = "not_found"
	CodeTooLarge       = "too_large"
	CodeSessionLocked  = "session_locked"
	CodeBackendError   = "backend_error"
	CodeBackendTimeout = "backend_timeout"
	CodeInternal       = "internal"
	CodeMethod         = "method_not_allowed"
	// CodeRateLimited: a backend's rate limit, or opx's own budget.
	CodeRateLimited = "rate_limited"
	// CodeAuditUnavailable: the audit log is enabled and this decision
	// could not be recorded, so the request is refused.
	CodeAuditUnavailable = "audit_unavailable"
)

// PathsHeader is the response header in which the daemon names the config
// and policy files it uses (a URL query: config=...&policy=...), so that a
// client whose own paths differ can say so.
const PathsHeader = "Opx-Paths"

// SettingsHeader is the response header in which the daemon states the
// settings a client compares with its own environment's (URL-encoded):
// backend, ttl (a Go duration), op_path ("" for op from PATH), version, and
// service ("systemd", "launchd" or "") when a service manager runs it.
const SettingsHeader = "Opx-Settings"

// ConnFDHeader is the request header in which a client may name its own
// file descriptor number for the connection: the daemon then checks that
// the client still holds the connection with one look-up instead of a
// listing of all its open files (which a process with thousands of files
// makes slow). A wrong number costs the listing, nothing else.
const ConnFDHeader = "Opx-Conn-Fd"

// HTTPStatus returns the HTTP status the daemon sends with code.
func HTTPStatus(code string) int {
	switch code {
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeSessionLocked:
		return http.StatusLocked
	case CodeBackendError:
		return http.StatusBadGateway
	case CodeBackendTimeout:
		return http.StatusGatewayTimeout
	case CodeMethod:
		return http.StatusMethodNotAllowed
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeAuditUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is the body of every failed request, and the per-ref error of a batch.
// Message never contains a secret value.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfterSeconds, with rate_limited, is how long until a backend
	// call will be made again.
	RetryAfterSeconds float64 `json:"retry_after_seconds,omitempty"`
	// Policy, with forbidden, marks a refusal by opx's own policy (not by
	// a backend or server).
	Policy bool `json:"policy,omitempty"`
	// Peer, with forbidden, marks a refusal of the connection's process
	// itself: another user's, or one the daemon could not identify.
	Peer bool `json:"peer,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorBody wraps Error as the daemon sends it: {"error": {...}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// OPIdentity is the 1Password identity a caller's op would sign in with
// when it is not the desktop app's: a service account
// (OP_SERVICE_ACCOUNT_TOKEN) or a Connect server (OP_CONNECT_HOST and
// OP_CONNECT_TOKEN, which op prefers when both are set). A request carries
// it sealed (SealedIdentity), inside the TLS connection; one without reads
// as the daemon's own identity. The daemon keys its cache by a hash of the
// identity and never shows a token.
type OPIdentity struct {
	ServiceAccountToken Secret
	ConnectHost         string
	ConnectToken        Secret
}

// Identity kinds, as status, the audit log and policy rules name them.
const (
	IdentityDesktop        = "desktop"
	IdentityServiceAccount = "service-account"
	IdentityConnect        = "connect"
)

// The environment variables op takes its identity from.
const (
	EnvServiceAccountToken = "OP_SERVICE_ACCOUNT_TOKEN"
	EnvConnectHost         = "OP_CONNECT_HOST"
	EnvConnectToken        = "OP_CONNECT_TOKEN"
)

// OPIdentityEnvVars are the variables that give op an identity other than
// the desktop app's.
var OPIdentityEnvVars = []string{EnvServiceAccountToken, EnvConnectHost, EnvConnectToken}

// OPIdentityFromEnv is the identity op would take from getenv's variables:
// a Connect server when OP_CONNECT_HOST and OP_CONNECT_TOKEN are both set
// (op prefers it), else a service account when OP_SERVICE_ACCOUNT_TOKEN
// is, else nil (the desktop app's accounts).
func OPIdentityFromEnv(getenv func(string) string) *OPIdentity {
	host, ctok, sa := getenv(EnvConnectHost), getenv(EnvConnectToken), getenv(EnvServiceAccountToken)
	switch {
	case host != "" && ctok != "":
		return &OPIdentity{ConnectHost: host, ConnectToken: Secret(ctok)}
	case sa != "":
		return &OPIdentity{ServiceAccountToken: Secret(sa)}
	}
	return nil
}

// MaxTokenLen bounds a service account or Connect token, in bytes.
const MaxTokenLen = 8 << 10

// Kind is the kind of identity id names: IdentityConnect when it names a
// Connect server, IdentityServiceAccount for a service account token, and
// IdentityDesktop for none (a nil id too).
func (id *OPIdentity) Kind() string {
	switch {
	case id == nil:
		return IdentityDesktop
	case id.ConnectHost != "" || len(id.ConnectToken) > 0:
		return IdentityConnect
	case len(id.ServiceAccountToken) > 0:
		return IdentityServiceAccount
	}
	return IdentityDesktop
}

// Check returns why id cannot be used, or nil. Its messages never quote a
// token.
func (id *OPIdentity) Check() *Error {
	if id == nil {
		return nil
	}
	switch {
	case len(id.ServiceAccountToken) > MaxTokenLen || len(id.ConnectToken) > MaxTokenLen:
		return Errorf(CodeBadRequest, "op_identity: a token is longer than %d bytes", MaxTokenLen)
	case len(id.ConnectHost) > MaxRefLen:
		return Errorf(CodeBadRequest, "op_identity: connect_host is longer than %d bytes", MaxRefLen)
	case !printableToken(id.ServiceAccountToken) || !printableToken(id.ConnectToken):
		return Errorf(CodeBadRequest, "op_identity: a token has a character that is not printable ASCII")
	case !printableToken([]byte(id.ConnectHost)):
		return Errorf(CodeBadRequest, "op_identity: connect_host has a character that is not printable ASCII")
	case id.Kind() == IdentityConnect && (id.ConnectHost == "" || len(id.ConnectToken) == 0):
		return Errorf(CodeBadRequest, "op_identity: a Connect server needs both connect_host and connect_token (OP_CONNECT_HOST and OP_CONNECT_TOKEN)")
	}
	return nil
}

// Wipe zeroes the tokens of id.
func (id *OPIdentity) Wipe() {
	if id != nil {
		id.ServiceAccountToken.Wipe()
		id.ConnectToken.Wipe()
	}
}

// printableToken reports whether b is printable ASCII without spaces.
func printableToken(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// Question is a question to the user about a read a policy rule asks for,
// as GET /v1/approvals lists it: the program (its pid, and the opx
// client's when the program ran opx), the refs (never values), the
// account and servers they are read from, and when it times out.
type Question struct {
	ID           string   `json:"id"`
	Program      string   `json:"program"`
	PID          int      `json:"pid"`
	ClientPID    int      `json:"client_pid,omitempty"`
	Refs         []string `json:"refs"`
	Account      string   `json:"account,omitempty"`
	Server       string   `json:"server,omitempty"`
	AskedUnix    int64    `json:"asked_unix"`
	DeadlineUnix int64    `json:"deadline_unix"`
}

// ApprovalsResponse is the answer of GET /v1/approvals: the questions
// waiting for an answer, oldest first.
type ApprovalsResponse struct {
	Pending []Question `json:"pending"`
}

// ApproveRequest is the body of POST /v1/approvals/answer: the answer to
// question ID; with Allow, RememberSeconds keeps the answer for the
// program and each of the refs that long (at most a day; a lock ends it).
type ApproveRequest struct {
	ID              string  `json:"id"`
	Allow           bool    `json:"allow"`
	RememberSeconds float64 `json:"remember_seconds,omitempty"`
}

// ApproveResponse is the answer of POST /v1/approvals/answer.
type ApproveResponse struct {
	Message string `json:"message"`
}

// WaitingHeader is the header of the interim (102) response the daemon
// sends while a read waits for the user's answer: "approval ID".
const WaitingHeader = "Opx-Waiting"

// ReadRequest is the body of POST /v1/read.
type ReadRequest struct {
	Ref     string `json:"ref"`
	Account string `json:"account,omitempty"`
	// OPIdentity is the caller's 1Password identity, sealed, if not the
	// desktop app's; it is part of the cache key of op:// refs.
	OPIdentity *SealedIdentity `json:"op_identity,omitempty"`
	// MaxAgeSeconds, when present, is the oldest a cached value may be to
	// answer; an older one is fetched again. 0 fetches it again always.
	MaxAgeSeconds *float64 `json:"max_age_seconds,omitempty"`
}

// ReadResult is the answer of POST /v1/read, and one entry of a /v1/reads
// answer. Encoding is empty for a UTF-8 value and "base64" when the value is
// binary and Value holds its base64 text.
type ReadResult struct {
	Ref              string `json:"ref"`
	Value            Secret `json:"value"`
	Encoding         string `json:"encoding,omitempty"`
	FromCache        bool   `json:"from_cache"`
	ExpiresInSeconds int64  `json:"expires_in_seconds"`
	ResolvedAtUnix   int64  `json:"resolved_at_unix"`
	// Stale marks an expired value served because the backend failed or
	// timed out (--stale-if-error).
	Stale bool `json:"stale,omitempty"`
}

// ReadsRequest is the body of POST /v1/reads.
type ReadsRequest struct {
	Refs          []string        `json:"refs"`
	Account       string          `json:"account,omitempty"`
	OPIdentity    *SealedIdentity `json:"op_identity,omitempty"`     // as in ReadRequest
	MaxAgeSeconds *float64        `json:"max_age_seconds,omitempty"` // as in ReadRequest
	// Servers, by scheme ("vault", "bao"), names the server the client
	// expects refs of that scheme to be read from: a ref whose server is
	// another gets a bad_request error instead of a value (the vault shim
	// then runs the real vault, which goes to the server it names).
	Servers map[string]Server `json:"servers,omitempty"`
}

// Server is a Vault or OpenBao server as a client names it.
type Server struct {
	Address   string `json:"address"`
	Namespace string `json:"namespace,omitempty"`
}

// SameServer reports whether two addresses and namespaces name one server
// (a trailing slash, or slashes around a namespace, make no difference).
func SameServer(a, b Server) bool {
	return strings.TrimRight(a.Address, "/") == strings.TrimRight(b.Address, "/") &&
		strings.Trim(a.Namespace, "/") == strings.Trim(b.Namespace, "/")
}

// ReadsResponse is the answer of POST /v1/reads: every ref is in exactly one
// of the two maps.
type ReadsResponse struct {
	Results map[string]*ReadResult `json:"results"`
	Errors  map[string]*Error      `json:"errors"`
}

// ResolveRequest is the body of POST /v1/resolve: environment names to refs.
type ResolveRequest struct {
	Env           map[string]string `json:"env"`
	Account       string            `json:"account,omitempty"`
	OPIdentity    *SealedIdentity   `json:"op_identity,omitempty"`     // as in ReadRequest
	MaxAgeSeconds *float64          `json:"max_age_seconds,omitempty"` // as in ReadRequest
}

// ResolveResponse is the answer of POST /v1/resolve. Encodings names the
// variables whose value is base64 because it is binary (rare).
type ResolveResponse struct {
	Env       map[string]Secret `json:"env"`
	Encodings map[string]string `json:"encodings,omitempty"`
	// Stale names the variables whose value expired and was served because
	// the backend failed or timed out (--stale-if-error).
	Stale []string `json:"stale,omitempty"`
}

// VerifyRequest is the body of POST /v1/backend/verify: the settings of a
// Vault or OpenBao login for the daemon to try, with the literal token when
// the method is token and the settings name no token_ref. Credential refs
// are read by the daemon, under the policy, as reads of the requester.
type VerifyRequest struct {
	Kind   string      `json:"kind"` // "vault" or "bao"
	Config VaultConfig `json:"config"`
	Token  string      `json:"token,omitempty"`
}

// VerifyResponse is the answer of POST /v1/backend/verify: who the server
// says the login is.
type VerifyResponse struct {
	DisplayName string `json:"display_name"`
}

// SessionResponse is the answer of /v1/session/unlock and /v1/session/lock.
type SessionResponse struct {
	Success bool   `json:"success"`
	State   string `json:"state"`
	Message string `json:"message"`
}

// ForgetRequest is the body of POST /v1/cache/forget: drop the cached
// values of every ref of Scheme ("op", "vault" or "bao").
type ForgetRequest struct {
	Scheme string `json:"scheme"`
}

// ForgetResponse is the answer of POST /v1/cache/forget.
type ForgetResponse struct {
	Dropped int `json:"dropped"`
}

// StopResponse is the answer of POST /v1/daemon/stop: the daemon stops
// once the requests in flight have finished.
type StopResponse struct {
	Success bool   `json:"success"`
	PID     int    `json:"pid"`
	Message string `json:"message"`
}

// Session states.
const (
	StateUnlocked = "unlocked"
	StateLocked   = "locked"
	StateDisabled = "disabled"
)

// Status is the answer of GET /v1/status. To a program the policy allows
// no ref, the daemon answers only Limited, Version, PID, Session.State,
// Policy.State and Policy.Reason: that it runs, whether it is locked, and
// why the policy refuses everything when it failed closed.
type Status struct {
	// Limited marks the short answer: every other field is left out.
	Limited       bool   `json:"limited,omitempty"`
	Version       string `json:"version"`
	PID           int    `json:"pid"`
	Backend       string `json:"backend,omitempty"`
	SocketPath    string `json:"socket_path"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	TTLSeconds    int64  `json:"ttl_seconds"`
	CacheSize     int    `json:"cache_size"`
	CacheCapacity int    `json:"cache_capacity"`
	Hits          uint64 `json:"hits"`
	Misses        uint64 `json:"misses"`
	Coalesced     uint64 `json:"coalesced"`
	StaleServed   uint64 `json:"stale_served"`
	Refreshes     uint64 `json:"refreshes"` // values fetched ahead of expiry
	// Leases are the Vault and OpenBao leases held (dynamic secrets).
	Leases []Lease `json:"leases,omitempty"`
	// OPCalls is op's calls per 1Password account (opcli and multi).
	OPCalls      []OPUsage `json:"op_calls,omitempty"`
	BackendCalls uint64    `json:"backend_calls"`
	InFlight     int64     `json:"in_flight"`
	Goroutines   int       `json:"goroutines"`
	// Connections are the daemon's connections and those it refused.
	Connections Connections   `json:"connections"`
	Session     SessionStatus `json:"session"`
	Policy      PolicyStatus  `json:"policy"`
	Ask         AskStatus     `json:"ask"`
	Audit       AuditStatus   `json:"audit"`
	Paths       Paths         `json:"paths"`
	Settings    Settings      `json:"settings"`
}

// Connections counts the daemon's connections: open now, and refused
// since it started because their process held api.MaxConnsPerProcess
// already (or every process together api.MaxConns).
type Connections struct {
	Open    int    `json:"open"`
	Refused uint64 `json:"refused"`
	// BodiesRefused counts requests refused because their process had
	// api.MaxBodyBytesPerProcess of request bodies pending already.
	BodiesRefused uint64 `json:"bodies_refused"`
}

// Settings are the daemon's effective settings besides those above.
type Settings struct {
	BackendTimeoutSeconds float64 `json:"backend_timeout_seconds"`
	MaxConcurrent         int     `json:"max_concurrent"`
	LockOnAuthFailure     bool    `json:"lock_on_auth_failure"`
	StaleIfErrorSeconds   float64 `json:"stale_if_error_seconds"`
	RefreshAhead          bool    `json:"refresh_ahead"`
	RevokeLeasesOnLock    bool    `json:"revoke_leases_on_lock"`
	OPBudget              string  `json:"op_budget,omitempty"` // as --op-budget takes it
	// OPPath is the op program as configured ("" for op from PATH);
	// OPFound is where it is found now ("" when it is not).
	OPPath  string `json:"op_path"`
	OPFound string `json:"op_found"`
	// OPVersion is what `op --version` printed ("" when op is not found or
	// the backend does not use it).
	OPVersion string `json:"op_version,omitempty"`
	// Service is "systemd", "launchd" or "schtasks" (optionally with
	// ":NAME") when a service manager runs the daemon (opx service
	// install), else "".
	Service string `json:"service,omitempty"`
	// ExitWhenIdleSeconds is --exit-when-idle: the daemon stops after
	// this long with no connection open and no backend call running; 0
	// (left out) when it never does.
	ExitWhenIdleSeconds float64 `json:"exit_when_idle_seconds,omitempty"`
	// VaultAddress and BaoAddress are config.json's, when set.
	VaultAddress string `json:"vault_address,omitempty"`
	BaoAddress   string `json:"bao_address,omitempty"`
}

// Paths are the files and directories the daemon uses.
type Paths struct {
	Config string `json:"config"`
	Policy string `json:"policy"`
	Socket string `json:"socket"`
	Data   string `json:"data_dir"`
	Log    string `json:"log"`
}

// AuditStatus is the audit-log part of Status. Healthy is false when the
// last write failed (Error says why); reads are refused then.
type AuditStatus struct {
	Enabled bool   `json:"enabled"`
	Healthy bool   `json:"healthy"`
	Path    string `json:"path,omitempty"`
	Error   string `json:"error,omitempty"`
}

// SessionStatus is the session part of Status. TimeUntilLockSeconds is -1
// when no idle lock is pending (disabled, or already locked).
type SessionStatus struct {
	Enabled              bool   `json:"enabled"`
	State                string `json:"state"`
	IdleTimeoutSeconds   int64  `json:"idle_timeout_seconds"`
	TimeUntilLockSeconds int64  `json:"time_until_lock_seconds"`
	// LockedAccounts are the accounts whose reads are locked after an
	// authentication failure (--lock-on-auth-failure) while the session
	// is unlocked for the others.
	LockedAccounts []LockedAccount `json:"locked_accounts,omitempty"`
	// LockReason is why a locked session was locked: manual (opx lock),
	// idle_timeout, auth_failure, screen_locked or sleep.
	LockReason string `json:"lock_reason,omitempty"`
	// Follows is what the daemon watches to lock with the user's session
	// (--lock-on-screen-lock), or why it watches nothing.
	Follows string `json:"follows,omitempty"`
}

// Check is one finding of opx doctor: what was checked, whether it is fine,
// what was found, and, when it is not fine, what fixes it. Warn marks a
// finding worth knowing that does not make doctor fail.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Warn   bool   `json:"warn,omitempty"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// HealthRequest is the body of POST /v1/backend/health: Account is the
// caller's default account, checked besides those in use.
type HealthRequest struct {
	Account string `json:"account,omitempty"`
}

// HealthResponse is the answer of POST /v1/backend/health: the backend's
// own checks (its program or server reachable, each account in use signed
// in, the server's clock).
type HealthResponse struct {
	Checks []Check `json:"checks"`
}

// OPUsage is one 1Password account's op calls for /v1/status: in the last
// hour and day, and, while 1Password rate-limits it, until when (Unix
// seconds).
type OPUsage struct {
	Account string `json:"account"`
	// Identity is the short fingerprint of the service account or Connect
	// server the calls were made as ("" for the desktop app's sign-in),
	// and IdentityKind its kind.
	Identity             string `json:"identity,omitempty"`
	IdentityKind         string `json:"identity_kind,omitempty"`
	LastHour             int    `json:"last_hour"`
	LastDay              int    `json:"last_day"`
	RateLimitedUntilUnix int64  `json:"rate_limited_until_unix,omitempty"`
	// Limits are a service account's limits as op service-account
	// ratelimit last gave them, less the requests opx counted since.
	Limits []OPLimit `json:"limits,omitempty"`
}

// OPLimit is one row of op service-account ratelimit: the token's reads
// or writes per hour, or the account's reads and writes per day.
type OPLimit struct {
	Type      string `json:"type"`   // "token" or "account"
	Action    string `json:"action"` // "read", "write" or "read_write"
	Limit     int    `json:"limit"`
	Remaining int    `json:"remaining"`
	// ResetUnix is when the window ends (Unix seconds); 0 when none is
	// open.
	ResetUnix int64 `json:"reset_unix,omitempty"`
}

// Lease is a Vault or OpenBao lease the daemon holds, for /v1/status:
// LeaseID is only its start.
type Lease struct {
	Backend     string `json:"backend"`
	Path        string `json:"path"`
	LeaseID     string `json:"lease_id"`
	ExpiresUnix int64  `json:"expires_unix"`
	Renewable   bool   `json:"renewable"`
}

// LockedAccount is an account locked after an authentication failure:
// Account is "" for the default one; Reason is the backend's answer, which
// says how to sign in again (or to unlock the 1Password app).
type LockedAccount struct {
	Account string `json:"account"`
	Reason  string `json:"reason"`
}

// ThenUnlock is reason, why an account's reads are locked, followed by the
// command that unlocks them, unless reason names that command already (op's
// answer for a locked 1Password app does).
func ThenUnlock(reason string) string {
	if strings.Contains(reason, "run: opx unlock") {
		return reason
	}
	return reason + "; then run: opx unlock"
}

// PolicyStatus is the access-policy part of Status. State is "none" (no
// file: everything is allowed), "loaded", or "failed_closed" (the file went
// missing, unreadable, insecure or broken: everything is denied; Reason
// says why). Loaded is State == "loaded". Hash is the SHA-256 of the content
// in force; Reason, when loaded, names an edit that did not parse.
type PolicyStatus struct {
	Path        string `json:"path"`
	State       string `json:"state"`
	Loaded      bool   `json:"loaded"`
	Rules       int    `json:"rules"`
	DefaultDeny bool   `json:"default_deny"`
	// Default is what a read no rule covers gets: "allow", "deny" or
	// "ask"; AskRules counts the rules that ask.
	Default  string `json:"default,omitempty"`
	AskRules int    `json:"ask_rules,omitempty"`
	Hash     string `json:"hash,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// AskStatus is how the daemon asks the user about the reads a policy rule
// asks for: Channel is "askpass PROGRAM", "notification" or "opx approve"
// (no askpass, and no notification server: ChannelNote says why), Pending
// the questions waiting, TimeoutSeconds --ask-timeout, and LastError why a
// channel last failed to ask.
type AskStatus struct {
	Channel        string  `json:"channel"`
	ChannelNote    string  `json:"channel_note,omitempty"`
	Pending        int     `json:"pending"`
	TimeoutSeconds float64 `json:"timeout_seconds"`
	LastError      string  `json:"last_error,omitempty"`
}

// DescribeOPLimits words a service account's limits for status and doctor:
// "950 of 1000 reads this hour (until 10:32), 4990 of 5000 requests of
// the account today".
func DescribeOPLimits(limits []OPLimit) string {
	var parts []string
	for _, l := range limits {
		if l.Action == "write" {
			continue
		}
		what := "reads this hour"
		if l.Type == "account" {
			what = "requests of the account today"
		}
		p := fmt.Sprintf("%d of %d %s", l.Remaining, l.Limit, what)
		if l.ResetUnix != 0 {
			p += " (until " + time.Unix(l.ResetUnix, 0).Format(time.TimeOnly) + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
