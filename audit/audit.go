// Package audit writes the daemon's audit log: one JSON line per event in a
// file per day (audit-YYYY-MM-DD.log in the data dir), rotated at local
// midnight and removed after the retention period. It never records a
// secret value: events name refs, programs and reasons. It also reads the
// files back for `opx audit`.
//
// Each record is one whole line written in one call. A write that fails
// part-way (a full disk) is cut off again, so that every line of every file
// parses, and the failure is returned: the daemon refuses a read whose
// decision it could not record, as Vault does.
package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Event names.
const (
	AccessDecision = "ACCESS_DECISION"
	AuthFailure    = "AUTH_FAILURE"
	SessionLock    = "SESSION_LOCK"
	SessionUnlock  = "SESSION_UNLOCK"
	BackendLogin   = "BACKEND_LOGIN"
	DaemonStart    = "DAEMON_START"
	DaemonStop     = "DAEMON_STOP"
	// PolicyChange records a change of the policy in force: its state
	// (none, loaded, failed_closed), content hash and why.
	PolicyChange = "POLICY_CHANGE"
)

// Actions an ACCESS_DECISION is about.
const (
	ActionRead   = "read"
	ActionLock   = "lock"
	ActionUnlock = "unlock"
	ActionStop   = "stop"
	// ActionVerify: a Vault or OpenBao login checked for opx login.
	ActionVerify = "verify"
	// ActionCheck: the backend checked for opx doctor.
	ActionCheck = "check"
	// ActionForget: the cached values of one scheme dropped (the vault
	// shim, after a write it passed to the real CLI).
	ActionForget = "forget"
)

// Decisions.
const (
	Allow = "ALLOW"
	Deny  = "DENY"
)

// Peer is the connection's process, as recorded.
type Peer struct {
	PID  int    `json:"PID"`
	UID  int    `json:"UID"`
	GID  int    `json:"GID"`
	Path string `json:"Path"`
}

// Requester is the program judged by the policy, as recorded. Via says how
// it was found when it is not the peer itself: "parent of the opx client".
type Requester struct {
	PID       int    `json:"PID"`
	Path      string `json:"Path"`
	ExeSHA256 string `json:"exe_sha256,omitempty"`
	Via       string `json:"via,omitempty"`
}

// Log is an open audit log. A nil *Log records nothing, so callers need no
// checks when auditing is off. Safe for concurrent use.
type Log struct {
	dir       string
	retention int // days; 0 keeps every file
	now       func() time.Time

	mu      sync.Mutex
	day     string
	file    *os.File
	line    bytes.Buffer // the record being written
	newline bool         // a torn record could not be cut off: start on a new line
	err     error        // the last write's failure, nil when healthy
}

// FileName is the audit file of the given day.
func FileName(day time.Time) string { return "audit-" + day.Format(time.DateOnly) + ".log" }

// Open starts the audit log in dir, keeping files for retentionDays days
// (0: forever).
func Open(dir string, retentionDays int) (*Log, error) {
	l := &Log{dir: dir, retention: retentionDays, now: time.Now}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.rotateLocked(l.now()); err != nil {
		return nil, err
	}
	return l, nil
}

// rotateLocked opens the file of now's day when it is not the open one, and
// removes files past the retention period.
func (l *Log) rotateLocked(now time.Time) error {
	day := now.Format(time.DateOnly)
	if day == l.day && l.file != nil && l.stillThere() {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(l.dir, FileName(now)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	if l.file != nil {
		l.file.Close()
	}
	l.file, l.day = f, day
	l.pruneLocked(now)
	return nil
}

// stillThere reports whether the open file is still the one at its path:
// a record written to a file that was removed or replaced would be lost
// without a word.
func (l *Log) stillThere() bool {
	open, err := l.file.Stat()
	if err != nil {
		return false
	}
	named, err := os.Stat(l.file.Name())
	return err == nil && os.SameFile(open, named)
}

func (l *Log) pruneLocked(now time.Time) {
	if l.retention <= 0 {
		return
	}
	cutoff := now.AddDate(0, 0, -l.retention).Format(time.DateOnly)
	files, _ := filepath.Glob(filepath.Join(l.dir, "audit-*.log"))
	for _, f := range files {
		day := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "audit-"), ".log")
		if _, err := time.Parse(time.DateOnly, day); err == nil && day < cutoff {
			os.Remove(f)
		}
	}
}

// write appends one event built by fill, as one line in one write call.
func (l *Log) write(event string, fill func(e *zerolog.Event)) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if err := l.rotateLocked(now); err != nil {
		l.err = err
		return err
	}
	l.line.Reset()
	if l.newline {
		l.line.WriteByte('\n')
	}
	zl := zerolog.New(&l.line)
	e := zl.Log().Str("timestamp", now.Format(time.RFC3339Nano)).Str("event", event)
	fill(e)
	e.Send()
	b := l.line.Bytes()
	n, err := l.file.Write(b)
	if err == nil && n == len(b) {
		l.newline, l.err = false, nil
		return nil
	}
	if err == nil {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(b))
	}
	err = fmt.Errorf("write audit log %s: %w", l.file.Name(), err)
	if n > 0 {
		// Cut the torn record off, so the file holds whole lines only.
		// When that fails too, the next record starts on a line of its own.
		fi, serr := l.file.Stat()
		if serr != nil || l.file.Truncate(fi.Size()-int64(n)) != nil {
			l.newline = true
		}
	}
	l.err = err
	return err
}

// Health reports whether the last write succeeded, and its error if not.
func (l *Log) Health() (healthy bool, err error) {
	if l == nil {
		return true, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err == nil, l.err
}

// Path is the file written today, or "" for a nil log.
func (l *Log) Path() string {
	if l == nil {
		return ""
	}
	return filepath.Join(l.dir, FileName(l.now()))
}

// Access records a policy decision: for one ref (action read), or for a
// lock or unlock (ref ""). An error means the decision is not on record.
func (l *Log) Access(p Peer, r Requester, action, ref, decision, reason, policyPath string) error {
	return l.write(AccessDecision, func(e *zerolog.Event) {
		e.Interface("peer_info", p).Interface("requester", r).Str("action", action).Str("reference", ref).
			Str("decision", decision).Str("reason", reason).Str("policy_path", policyPath)
	})
}

// Policy records a change of the policy in force.
func (l *Log) Policy(state, hash, reason, policyPath string) error {
	return l.write(PolicyChange, func(e *zerolog.Event) {
		e.Str("state", state).Str("hash", hash).Str("reason", reason).Str("policy_path", policyPath)
	})
}

// AuthFailure records a refused connection or request, or a backend that
// rejected its credentials.
func (l *Log) AuthFailure(p *Peer, reason string) error {
	return l.write(AuthFailure, func(e *zerolog.Event) {
		if p != nil {
			e.Interface("peer_info", p)
		}
		e.Str("reason", reason)
	})
}

// Session records a lock or unlock.
func (l *Log) Session(event, reason string) error {
	return l.write(event, func(e *zerolog.Event) { e.Str("reason", reason) })
}

// BackendLogin records a backend login and its outcome.
func (l *Log) BackendLogin(backend, method string, err error) {
	_ = l.write(BackendLogin, func(e *zerolog.Event) {
		e.Str("backend", backend).Str("method", method).Bool("success", err == nil)
		if err != nil {
			e.Str("reason", err.Error())
		}
	})
}

// Daemon records the daemon starting or stopping.
func (l *Log) Daemon(event string, pid int, version string) error {
	return l.write(event, func(e *zerolog.Event) { e.Int("pid", pid).Str("version", version) })
}

// Close closes the open file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	err := l.file.Close()
	l.file = nil
	return err
}

// Files returns the audit files in dir that may hold events since since,
// oldest first.
func Files(dir string, since time.Time) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.log"))
	first := since.AddDate(0, 0, -1).Format(time.DateOnly) // time zones
	var out []string
	for _, f := range files {
		day := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "audit-"), ".log")
		if day >= first {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}
