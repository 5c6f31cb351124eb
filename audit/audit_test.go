package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/internal/testdir"
)

func TestRotationRetentionAndDenials(t *testing.T) {
	dir := testdir.New(t)
	old := filepath.Join(dir, "audit-2020-01-01.log")
	os.WriteFile(old, []byte("{}\n"), 0o600)
	l, err := Open(dir, 30)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("a file past the retention period was kept")
	}
	day1 := time.Date(2026, 11, 28, 23, 59, 58, 0, time.Local)
	clock := day1
	l.now = func() time.Time { return clock }
	peer := Peer{PID: 10, UID: 1000, GID: 1000, Path: "/usr/bin/opx"}
	l.Access(peer, Requester{PID: 9, Path: "/usr/bin/kubectl"}, Decision{Action: ActionRead, Ref: "op://Production/db/password", Verdict: Deny, Reason: "no rule", PolicyPath: "/p.json"})
	l.Access(peer, Requester{PID: 9, Path: "/usr/bin/kubectl"}, Decision{Action: ActionRead, Ref: "op://Production/db/password", Verdict: Allow, Reason: "rule 0", PolicyPath: "/p.json"})
	clock = day1.Add(3 * time.Second) // past midnight
	l.Access(peer, Requester{PID: 9, Path: "/usr/bin/kubectl"}, Decision{Action: ActionRead, Ref: "op://Production/db/password", Verdict: Deny, Reason: "no rule", PolicyPath: "/p.json"})
	l.Access(peer, Requester{PID: 8, Path: "/tmp/evil"}, Decision{Action: ActionRead, Ref: "op://Private/bank/pin", Verdict: Deny, Reason: "no rule", PolicyPath: "/p.json"})
	l.AuthFailure(&peer, "invalid bearer token")
	l.Session(SessionLock, "idle_timeout")
	l.BackendLogin("vault", "userpass", errors.New("permission denied"))
	l.Daemon(DaemonStop, 1, "test", "opx stop")

	for _, day := range []string{"2026-11-28", "2026-11-29"} {
		wantPrivate(t, filepath.Join(dir, "audit-"+day+".log"))
	}
	b, _ := os.ReadFile(filepath.Join(dir, "audit-2026-11-29.log"))
	for _, want := range []string{`"event":"ACCESS_DECISION"`, `"peer_info":{"PID":10,"UID":1000,"GID":1000,"Path":"/usr/bin/opx"}`,
		`"requester":{"PID":8,"Path":"/tmp/evil"}`, `"decision":"DENY"`, `"policy_path":"/p.json"`,
		`"event":"AUTH_FAILURE"`, `"event":"SESSION_LOCK"`, `"event":"BACKEND_LOGIN"`, `"success":false`, `"event":"DAEMON_STOP"`, `"reason":"opx stop"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("audit file lacks %s:\n%s", want, b)
		}
	}

	denials, err := Denials(dir, day1.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(denials) != 2 || denials[0].Path != "/tmp/evil" && denials[1].Path != "/tmp/evil" {
		t.Fatalf("denials = %+v", denials)
	}
	for _, d := range denials {
		if d.Path == "/usr/bin/kubectl" && d.Count != 2 {
			t.Errorf("kubectl denials counted %d across the two daily files, want 2", d.Count)
		}
	}
	if recent, _ := Denials(dir, day1.Add(2*time.Second)); len(recent) != 2 || recent[0].Count+recent[1].Count != 2 {
		t.Errorf("denials since midnight = %+v", recent)
	}
}

func TestNilLogRecordsNothing(t *testing.T) {
	var l *Log
	l.Access(Peer{}, Requester{}, Decision{Action: ActionRead, Ref: "op://a/b/c", Verdict: Allow, Reason: "", PolicyPath: ""})
	l.AuthFailure(nil, "x")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// A record is never written to a file that was removed or replaced: the
// log opens the day's file again.
func TestRemovedFileIsOpenedAgain(t *testing.T) {
	dir := testdir.New(t)
	l, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Session(SessionLock, "first")
	path := filepath.Join(dir, FileName(time.Now()))
	removeOpen(t, path)
	if err := l.Session(SessionLock, "after removal"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), "after removal") {
		t.Errorf("after the file was removed: %q, %v", b, err)
	}
}

// day is the fixed clock of the file tests, away from midnight.
var day = time.Date(2026, 12, 2, 12, 0, 0, 0, time.Local)

// openAt opens a log in a new directory on the fixed clock and writes one
// record, so that the day's file exists; it returns the log and the path.
func openAt(t *testing.T) (*Log, string) {
	t.Helper()
	dir := testdir.New(t)
	l, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	l.now = func() time.Time { return day }
	if err := l.Session(SessionLock, "before"); err != nil {
		t.Fatal(err)
	}
	return l, filepath.Join(dir, FileName(day))
}

// within fails the test when f has not returned in 10 s: what it runs must
// not wait for a write that does not return.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s waits for a write that does not return", what)
	}
}

// unfitCase is an entry put in place of the day's file that the log must
// not write to.
type unfitCase struct {
	name, why string
	// replace puts the entry at path and returns a file that must not be
	// written to, or "".
	replace func(t *testing.T, path string) string
}

// An entry put in place of the day's file that a record would be lost in,
// or that is not the log's own private file, fails closed: the write
// returns why, Health says so, nothing is written there; once the entry is
// removed, the next record makes a new file. (The cases only one OS can
// make are in unfitCases.)
func TestUnfitFileFailsClosedUntilRemoved(t *testing.T) {
	cases := []unfitCase{
		{"file others can read", openWhy, func(t *testing.T, path string) string {
			mustDo(t, os.WriteFile(path, []byte("{}\n"), 0o600))
			openToOthers(t, path)
			return path
		}},
		{"hard link to another file", "has 2 hard links", func(t *testing.T, path string) string {
			other := path + ".elsewhere"
			mustDo(t, os.WriteFile(other, nil, 0o600))
			mustDo(t, os.Link(other, path))
			return other
		}},
		{"directory", "is a directory", func(t *testing.T, path string) string {
			mustDo(t, os.Mkdir(path, 0o700))
			return ""
		}},
	}
	for _, tc := range append(cases, unfitCases...) {
		t.Run(tc.name, func(t *testing.T) {
			l, path := openAt(t)
			removeOpen(t, path)
			kept := tc.replace(t, path)
			var keptData []byte
			if kept != "" {
				keptData, _ = os.ReadFile(kept)
			}
			var err, noWaitErr, herr error
			var healthy bool
			within(t, "a record", func() {
				err = l.Session(SessionLock, "during")
				noWaitErr = l.NoWait().Session(SessionLock, "during, no wait")
				healthy, herr = l.Health()
			})
			want := FileName(day) + " " + tc.why
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "remove it") {
				t.Errorf("Session() = %v, want an error with %q", err, want)
			}
			if noWaitErr == nil || !strings.Contains(noWaitErr.Error(), tc.why) {
				t.Errorf("NoWait().Session() = %v, want an error with %q", noWaitErr, tc.why)
			}
			if healthy || herr == nil || !strings.Contains(herr.Error(), want) {
				t.Errorf("Health() = %v, %v; want false, %q", healthy, herr, want)
			}
			if kept != "" {
				if b, _ := os.ReadFile(kept); !bytes.Equal(b, keptData) {
					t.Errorf("a record was written to %s: %q", filepath.Base(kept), b)
				}
			}

			mustDo(t, os.RemoveAll(path))
			if err := l.Session(SessionLock, "after"); err != nil {
				t.Fatalf("Session() once the entry is removed = %v", err)
			}
			if healthy, err := l.Health(); !healthy || err != nil {
				t.Errorf("Health() once the entry is removed = %v, %v", healthy, err)
			}
			wantPrivate(t, path)
			if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"reason":"after"`) || strings.Contains(string(b), "during") {
				t.Errorf("the new file holds %q; want the record after", b)
			}
		})
	}
}

// A log does not start on an entry it would not write to.
func TestOpenRefusesAnUnfitFile(t *testing.T) {
	dir := testdir.New(t)
	now := time.Now()
	why := putUnfit(t, filepath.Join(dir, FileName(now)))
	if later := now.Add(time.Minute); FileName(later) != FileName(now) { // midnight
		putUnfit(t, filepath.Join(dir, FileName(later)))
	}
	if l, err := Open(dir, 0); err == nil || !strings.Contains(err.Error(), why) {
		l.Close()
		t.Errorf("Open() with the day's file unfit = %v, want an error with %q", err, why)
	}
}

// The open file opened to others or given another name in place fails
// closed too, and recovers once it is put right, in the same file.
func TestFileChangedInPlace(t *testing.T) {
	l, path := openAt(t)
	records := []string{"before"}
	for _, tc := range []struct {
		name, why  string
		spoil, fix func() error
		unlinks    bool // fix removes a name of the open file
	}{
		{"open to others", openWhy, func() error { openToOthers(t, path); return nil }, func() error { makePrivate(t, path); return nil }, false},
		{"another name", "has 2 hard links", func() error { return os.Link(path, path+".copy") }, func() error { return os.Remove(path + ".copy") }, true},
	} {
		if tc.unlinks && !unlinksOpenFiles {
			t.Logf("%s: not tried: %s", tc.name, whyNoUnlink)
			continue
		}
		mustDo(t, tc.spoil())
		if err := l.Session(SessionLock, tc.name); err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: Session() = %v, want an error with %q", tc.name, err, tc.why)
		}
		mustDo(t, tc.fix())
		if err := l.Session(SessionLock, "after "+tc.name); err != nil {
			t.Errorf("after %s was undone: Session() = %v", tc.name, err)
		}
		records = append(records, "after "+tc.name)
	}
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "\n"); n != len(records) || !strings.Contains(string(b), records[len(records)-1]) {
		t.Errorf("the file holds %d records, want the %d written (%q):\n%s", n, len(records), records, b)
	}
}

// While a write hangs (on a file system that went away, say), Health
// answers and NoWait records do not wait: they are queued, then dropped
// and counted; once the write returns, the queued ones are written in
// order and the next record says how many were dropped.
func TestNoWaitNeverWaitsForAStuckWrite(t *testing.T) {
	l, path := openAt(t)
	// A write that hangs holds mu since a minute ago: hold it the same way.
	l.mu.Lock()
	l.busy.Store(time.Now().Add(-time.Minute).UnixNano())
	var errs []error
	var healthy bool
	var herr error
	within(t, "a NoWait record", func() {
		for i := range queueSize + 1 {
			errs = append(errs, l.NoWait().Session(SessionLock, fmt.Sprint("queued ", i)))
		}
		healthy, herr = l.Health()
	})
	for i, err := range errs[:queueSize] {
		if err != nil {
			t.Errorf("record %d: NoWait().Session() = %v, want it queued", i, err)
		}
	}
	if err := errs[queueSize]; err == nil || !strings.Contains(err.Error(), "dropped") {
		t.Errorf("record past the queue: NoWait().Session() = %v, want it dropped", err)
	}
	if healthy || herr == nil || !strings.Contains(herr.Error(), "dropped while a write had not returned: 1") ||
		!strings.Contains(herr.Error(), "a write has waited 1m0s") {
		t.Errorf("Health() while a write hangs = %v, %v", healthy, herr)
	}
	l.busy.Store(0)
	l.mu.Unlock()

	within(t, "the queue", func() {
		for {
			l.mu.Lock()
			n := len(l.queue)
			l.mu.Unlock()
			if n == 0 && !l.draining.Load() {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	if healthy, err := l.Health(); !healthy {
		t.Errorf("Health() once the queue is written = %v, %v", healthy, err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 1+queueSize || !strings.Contains(lines[1], `"reason":"queued 0","dropped_before":1`) ||
		!strings.Contains(lines[queueSize], fmt.Sprintf(`"reason":"queued %d"`, queueSize-1)) {
		t.Errorf("the file holds %d lines, want the first record and the %d queued in order, the first saying 1 was dropped:\n%s",
			len(lines), queueSize, b)
	}
}

// Close writes what NoWait queued, and does not wait for a write that
// does not return.
func TestCloseDoesNotWaitForAStuckWrite(t *testing.T) {
	l, path := openAt(t)
	l.mu.Lock()
	mustDo(t, l.NoWait().Daemon(DaemonStop, 1, "test", "signal"))
	l.closeWait = 10 * time.Millisecond
	var err error
	within(t, "Close", func() { err = l.Close() })
	if err == nil || !strings.Contains(err.Error(), "has not returned") {
		t.Errorf("Close() while a write hangs = %v, want an error", err)
	}
	l.closeWait = time.Minute
	l.mu.Unlock()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"event":"DAEMON_STOP"`) {
		t.Errorf("the record queued before Close was not written:\n%s", b)
	}
	if err := l.Session(SessionLock, "closed"); err == nil {
		t.Error("a record was written after Close")
	}
}

func TestNilLogNoWait(t *testing.T) {
	var l *Log
	if err := l.NoWait().Session(SessionLock, "x"); err != nil {
		t.Error(err)
	}
	if healthy, err := l.Health(); !healthy || err != nil {
		t.Errorf("Health() of a nil log = %v, %v", healthy, err)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Health sees what was put in the file's place before the next record
// fails on it (status must not say healthy meanwhile).
func TestHealthSeesAReplacedFileBeforeTheNextRecord(t *testing.T) {
	dir := testdir.New(t)
	l, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ok, err := l.Health(); !ok {
		t.Fatalf("Health of a new log = %v", err)
	}
	path := filepath.Join(dir, FileName(time.Now()))
	removeOpen(t, path)
	why := putUnfit(t, path)
	if ok, err := l.Health(); ok || err == nil || !strings.Contains(err.Error(), why) {
		t.Errorf("Health with an unfit entry in the file's place = %v, %v; want unhealthy, saying %q", ok, err, why)
	}
}
