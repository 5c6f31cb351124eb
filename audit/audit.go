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
//
// Records go only to a regular 0600 file of the daemon's user with one
// name (on Windows, a file whose owner and DACL let no one else in, as
// package xdg checks them): before each record the log checks that the
// day's path still names the file it holds open, creates it again when it
// was removed, and fails closed while something else is there (a symlink
// to /dev/null, a FIFO, a file others can read). Health and the records of
// a lock or a stop (NoWait) never wait for a write that hangs.
package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/opxhq/opx/xdg"
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
	// Approval records a step of a question to the user about reads a
	// rule asks for: asked, answered, timed out, or an answer remembered
	// from before (opx approve --for) used.
	Approval = "APPROVAL"
)

// Steps of an APPROVAL.
const (
	StepAsked      = "asked"
	StepAnswered   = "answered"
	StepTimedOut   = "timed_out"
	StepRemembered = "remembered"
)

// Question is a question to the user as the audit log records it: its id
// (as opx approve shows it), the refs it is about (never values) and where
// they are read.
type Question struct {
	ID      string   `json:"id"`
	Refs    []string `json:"refs"`
	Account string   `json:"account,omitempty"`
	Server  string   `json:"server,omitempty"`
}

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
	// ActionApprove: a question about a read answered with opx approve,
	// or the questions listed.
	ActionApprove = "approve"
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
	*writer      // shared with the log NoWait returns
	nowait  bool // records never wait for another write (NoWait)
}

// queueSize bounds the records NoWait holds while another write is under
// way; past it they are dropped and counted.
const queueSize = 64

// stuckAfter is how long a write may wait on the file system before
// Health reports it.
const stuckAfter = 5 * time.Second

// writer is the state of an open log.
type writer struct {
	dir       string
	retention int // days; 0 keeps every file
	now       func() time.Time
	euid      int           // the only owner the file may have
	closeWait time.Duration // how long Close waits for a write under way

	// mu makes each record one write to the right file. It is held across
	// file system calls, which can hang (a network file system that went
	// away), so nothing that must answer (Health, NoWait, Close) waits
	// for it.
	mu      sync.Mutex
	day     string
	path    string      // the open file's
	file    *os.File    // nil until a fit file is open
	info    os.FileInfo // file as opened, to tell whether path still names it
	line    bytes.Buffer
	newline bool // a torn record could not be cut off: start on a new line
	closed  bool

	queue    chan queued  // NoWait records waiting for mu
	draining atomic.Bool  // a goroutine is writing queue out
	busy     atomic.Int64 // when the write under mu began (UnixNano), 0 when none is
	// opened is the file open now and its path, for Health to check
	// without the writer's lock.
	opened atomic.Pointer[openedFile]

	// health guards err and dropped, apart from mu, so that Health answers
	// while a write hangs.
	health  sync.Mutex
	err     error // the last write's failure, nil when healthy
	dropped int   // NoWait records dropped since the last record written
}

// queued is a NoWait record waiting for its write.
type queued struct {
	now   time.Time
	event string
	fill  func(e *zerolog.Event)
}

// FileName is the audit file of the given day.
func FileName(day time.Time) string { return "audit-" + day.Format(time.DateOnly) + ".log" }

// Open starts the audit log in dir, keeping files for retentionDays days
// (0: forever). Today's file must be fit to write (see rotateLocked).
func Open(dir string, retentionDays int) (*Log, error) {
	l := &Log{writer: &writer{dir: dir, retention: retentionDays, now: time.Now, euid: os.Geteuid(),
		closeWait: 2 * time.Second, queue: make(chan queued, queueSize)}}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.rotateLocked(l.now()); err != nil {
		return nil, err
	}
	return l, nil
}

// NoWait returns l as a log whose records never wait for another write:
// when one is under way (it may hang on its file system), a record is
// queued and written after it, in the background, and once queueSize are
// waiting, dropped and counted (Health reports it; the next record written
// says how many in dropped_before). For the records of what goes ahead
// whether or not it is recorded: a lock, a stop, a forget. A nil error
// means written or queued.
func (l *Log) NoWait() *Log {
	if l == nil {
		return nil
	}
	return &Log{writer: l.writer, nowait: true}
}

// rotateLocked makes the open file the one of now's day, still named by its
// path and fit to write, opening the path again when it is not: a record
// written to a file that was removed or replaced would be lost without a
// word. A missing file is created; anything else there that is not a
// regular 0600 file of the daemon's user with no other name (a symlink to
// /dev/null, a FIFO, a file others can read, a hard link to another file)
// fails closed until the user removes it.
func (l *writer) rotateLocked(now time.Time) error {
	day := now.Format(time.DateOnly)
	if l.file != nil && day == l.day {
		fi, err := os.Lstat(l.path)
		if err == nil && os.SameFile(fi, l.info) {
			return unfit(l.path, fi, l.euid) // chmod'ed or linked in place
		}
	}
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
	path := filepath.Join(l.dir, FileName(now))
	f, fi, err := openFit(path, l.euid)
	if err != nil {
		return err
	}
	l.file, l.info, l.path, l.day = f, fi, path, day
	l.opened.Store(&openedFile{path: path, info: fi})
	l.pruneLocked(now)
	return nil
}

// openedFile is the file the log writes, as Health checks it.
type openedFile struct {
	path string
	info os.FileInfo
}

// healthCheckWait bounds Health's look at the path: a file system that
// hangs makes it say nothing rather than wait.
const healthCheckWait = 200 * time.Millisecond

// pathFault says what is wrong when the path no longer names the open
// file, fit to write ("" when it does, or when the look did not finish).
func (l *writer) pathFault() string {
	o := l.opened.Load()
	if o == nil {
		return ""
	}
	done := make(chan string, 1)
	go func() {
		fi, err := os.Lstat(o.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			done <- "" // the next record creates it again
		case err != nil:
			done <- err.Error()
		case !os.SameFile(fi, o.info):
			if uerr := unfit(o.path, fi, l.euid); uerr != nil {
				done <- uerr.Error()
			} else {
				done <- "" // a good file put back: the next record opens it
			}
		default:
			if uerr := unfit(o.path, fi, l.euid); uerr != nil {
				done <- uerr.Error()
			} else {
				done <- ""
			}
		}
	}()
	select {
	case why := <-done:
		return why
	case <-time.After(healthCheckWait):
		return ""
	}
}

// openFit opens path to append, creating it private to the daemon's user
// when missing, and checks that the file opened is fit (unfit).
// xdg.OpenPrivate refuses a symlink (it opens a Windows reparse point
// itself, for unfit to refuse) and does not wait for a FIFO nobody reads,
// where a plain open would follow the link or wait for a reader.
func openFit(path string, euid int) (*os.File, os.FileInfo, error) {
	const flags = os.O_WRONLY | os.O_APPEND
	f, err := xdg.OpenPrivate(path, flags|os.O_CREATE|os.O_EXCL)
	if errors.Is(err, fs.ErrExist) {
		f, err = xdg.OpenPrivate(path, flags)
	}
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil {
			if uerr := unfit(path, fi, euid); uerr != nil {
				return nil, nil, uerr
			}
		}
		return nil, nil, fmt.Errorf("open audit log: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = unfit(path, fi, euid)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// unfit says why fi, the entry at path, is not a file the log writes to:
// only a regular file of euid's, mode 0600 and one name, is (on Windows,
// see ownership in file_windows.go).
func unfit(path string, fi os.FileInfo, euid int) error {
	what, fix := "", "remove it"
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		what = "is a symlink"
	case m&fs.ModeNamedPipe != 0:
		what = "is a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		what = "is a socket"
	case m&fs.ModeDevice != 0:
		what = "is a device"
	case m.IsDir():
		what = "is a directory"
	case !m.IsRegular():
		what = "is not a regular file"
	}
	if what == "" {
		what, fix = ownership(path, fi, euid)
	}
	if what == "" {
		return nil
	}
	return fmt.Errorf("%s %s; opx writes only %s: %s", filepath.Base(path), what, fitFile, fix)
}

func (l *writer) pruneLocked(now time.Time) {
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
	if l.nowait {
		return l.writeNoWait(l.now(), event, fill)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writeLocked(l.now(), event, fill)
}

// writeNoWait writes the record at once when no other write is under way
// or waiting, and queues it otherwise (see NoWait).
func (l *writer) writeNoWait(now time.Time, event string, fill func(e *zerolog.Event)) error {
	if len(l.queue) == 0 && l.mu.TryLock() {
		defer l.mu.Unlock()
		return l.writeLocked(now, event, fill)
	}
	select {
	case l.queue <- queued{now, event, fill}:
	default:
		l.health.Lock()
		l.dropped++
		l.health.Unlock()
		return errors.New("audit log busy: a write has not returned and the records waiting for it are too many; this one is dropped")
	}
	if l.draining.CompareAndSwap(false, true) {
		go l.drain()
	}
	return nil
}

// drain writes the queued records out, then stops.
func (l *writer) drain() {
	for {
		l.mu.Lock()
		l.flushLocked()
		l.draining.Store(false)
		l.mu.Unlock()
		// A record queued after the flush but before draining was cleared
		// started no goroutine of its own.
		if len(l.queue) == 0 || !l.draining.CompareAndSwap(false, true) {
			return
		}
	}
}

func (l *writer) flushLocked() {
	for {
		select {
		case q := <-l.queue:
			l.writeLocked(q.now, q.event, q.fill)
		default:
			return
		}
	}
}

// writeLocked appends one event stamped now, built by fill, as one line in
// one write call, and records the outcome for Health.
func (l *writer) writeLocked(now time.Time, event string, fill func(e *zerolog.Event)) error {
	if l.closed {
		return errors.New("audit log closed")
	}
	l.busy.Store(time.Now().UnixNano())
	defer l.busy.Store(0)
	if err := l.rotateLocked(now); err != nil {
		l.setHealth(err, 0)
		return err
	}
	l.health.Lock()
	dropped := l.dropped
	l.health.Unlock()
	l.line.Reset()
	if l.newline {
		l.line.WriteByte('\n')
	}
	zl := zerolog.New(&l.line)
	e := zl.Log().Str("timestamp", now.Format(time.RFC3339Nano)).Str("event", event)
	fill(e)
	if dropped > 0 {
		e.Int("dropped_before", dropped)
	}
	e.Send()
	b := l.line.Bytes()
	n, err := l.file.Write(b)
	if err == nil && n == len(b) {
		l.newline = false
		l.setHealth(nil, dropped)
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
	l.setHealth(err, 0)
	return err
}

// setHealth records a write's outcome; recorded is how many dropped
// records the written one accounted for.
func (l *writer) setHealth(err error, recorded int) {
	l.health.Lock()
	defer l.health.Unlock()
	l.err = err
	l.dropped -= recorded
}

// Health reports whether the log records: not when the last write failed,
// when records were dropped since the last one written (NoWait), or while
// a write has waited on its file system for more than stuckAfter; err says
// why. It never waits for a write.
func (l *Log) Health() (healthy bool, err error) {
	if l == nil {
		return true, nil
	}
	l.health.Lock()
	var why []string
	if l.err != nil {
		why = append(why, l.err.Error())
	}
	if l.dropped > 0 {
		why = append(why, fmt.Sprintf("records dropped while a write had not returned: %d", l.dropped))
	}
	l.health.Unlock()
	if why == nil {
		// Something put in the file's place shows before the next record
		// fails on it.
		if fault := l.pathFault(); fault != "" {
			why = append(why, fault)
		}
	}
	if t := l.busy.Load(); t != 0 {
		if d := time.Since(time.Unix(0, t)); d > stuckAfter {
			why = append(why, fmt.Sprintf("a write has waited %s on the audit log's file system", d.Round(time.Second)))
		}
	}
	if len(why) == 0 {
		return true, nil
	}
	return false, errors.New(strings.Join(why, "; "))
}

// Path is the file written today, or "" for a nil log.
func (l *Log) Path() string {
	if l == nil {
		return ""
	}
	return filepath.Join(l.dir, FileName(l.now()))
}

// Decision is one access decision as the log records it.
type Decision struct {
	Action string // ActionRead, ActionLock, ...
	Ref    string // the ref of a read; "" for the other actions
	// Account is the 1Password account the read named ("" is the default
	// account, and is not recorded).
	Account string
	// IdentityKind and Identity are the 1Password service account or
	// Connect server an op:// read was made as (its kind, and its short
	// fingerprint: never a token); "" for the desktop app's sign-in, and
	// not recorded then.
	IdentityKind, Identity string
	// Login is the server and method a verify tried (ActionVerify only).
	Login      *Login
	Verdict    string // Allow or Deny
	Reason     string
	PolicyPath string
}

// Login is a Vault or OpenBao login as the log records it: where it went
// and how, never a credential.
type Login struct {
	Kind      string `json:"kind"`
	Address   string `json:"address"`
	Namespace string `json:"namespace,omitempty"`
	Method    string `json:"method"`
}

// Access records a policy decision: for one ref (action read), or for
// another action (ref ""). An error means the decision is not on record.
func (l *Log) Access(p Peer, r Requester, d Decision) error {
	return l.write(AccessDecision, func(e *zerolog.Event) {
		e.Interface("peer_info", p).Interface("requester", r).Str("action", d.Action).Str("reference", d.Ref)
		if d.Account != "" {
			e.Str("account", d.Account)
		}
		if d.Identity != "" {
			e.Str("identity_kind", d.IdentityKind).Str("identity", d.Identity)
		}
		if d.Login != nil {
			e.Interface("login", d.Login)
		}
		e.Str("decision", d.Verdict).Str("reason", d.Reason).Str("policy_path", d.PolicyPath)
	})
}

// Approval records a step of question q about requester r's reads: step
// (StepAsked, ...), the answer ("yes" or "no"; "" when asked), the channel
// it came through (askpass, notification, opx approve, timeout, remembered)
// and, for opx approve, the program that answered (by) and how long the
// answer is remembered.
func (l *Log) Approval(p Peer, r Requester, q Question, step, answer, channel string, by *Requester, rememberFor time.Duration) error {
	return l.write(Approval, func(e *zerolog.Event) {
		e.Interface("peer_info", p).Interface("requester", r).Interface("question", q).Str("step", step)
		if answer != "" {
			e.Str("answer", answer)
		}
		if channel != "" {
			e.Str("channel", channel)
		}
		if by != nil {
			e.Interface("answered_by", by)
		}
		if rememberFor > 0 {
			e.Float64("remember_seconds", rememberFor.Seconds())
		}
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

// Daemon records the daemon starting or stopping, and why when reason is
// not "" ("opx stop", "signal", "idle for 5m0s (--exit-when-idle)").
func (l *Log) Daemon(event string, pid int, version, reason string) error {
	return l.write(event, func(e *zerolog.Event) {
		e.Int("pid", pid).Str("version", version)
		if reason != "" {
			e.Str("reason", reason)
		}
	})
}

// Close writes the records NoWait queued and closes the open file. When a
// write has not returned within closeWait, it gives up on both and leaves
// the file to the process's exit, so that a daemon stops even with its
// audit log on a file system that hangs.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.flushLocked()
		l.closed = true
		var err error
		if l.file != nil {
			err = l.file.Close()
			l.file = nil
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(l.closeWait):
		return fmt.Errorf("close audit log: a write has not returned after %s", l.closeWait)
	}
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
