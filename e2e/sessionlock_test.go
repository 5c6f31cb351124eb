//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/e2e/harness"
	"github.com/opxhq/opx/internal/notify/notifytest"
)

// login1 is the test logind (testdata/login1) on a bus of its own, and a
// session bus beside it.
type login1 struct {
	t       *testing.T
	system  *notifytest.Bus
	session *notifytest.Bus
	in      io.WriteCloser
	out     *bufio.Scanner
}

func startLogin1(t *testing.T) *login1 {
	t.Helper()
	l := &login1{t: t, system: notifytest.StartBus(t), session: notifytest.StartBus(t)}
	cmd := exec.Command(harness.Tool(t, "./testdata/login1"))
	cmd.Env = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + l.system.Addr}
	var err error
	if l.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.in.Close(); cmd.Process.Kill(); cmd.Wait() })
	l.out = bufio.NewScanner(out)
	if !l.out.Scan() || l.out.Text() != "ready" {
		t.Fatalf("the test logind did not start: %q", l.out.Text())
	}
	return l
}

// send has the test logind emit a signal, and returns when it has.
func (l *login1) send(cmd string) time.Time {
	l.t.Helper()
	start := time.Now()
	if _, err := io.WriteString(l.in, cmd+"\n"); err != nil {
		l.t.Fatal(err)
	}
	if !l.out.Scan() || l.out.Text() != "sent "+cmd {
		l.t.Fatalf("the test logind: %q after %q", l.out.Text(), cmd)
	}
	return start
}

// env points e's daemon at the test buses.
func (l *login1) env(e *testEnv) {
	e.Vars["DBUS_SYSTEM_BUS_ADDRESS"] = l.system.Addr
	e.Vars["DBUS_SESSION_BUS_ADDRESS"] = l.session.Addr
}

// waitLocked waits for e's daemon to be locked (or, with want false, to
// stay unlocked for half a second), and returns how long after since it
// saw the lock.
func waitLocked(t *testing.T, e *testEnv, want bool, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	if !want {
		deadline = time.Now().Add(500 * time.Millisecond)
	}
	var last api.SessionStatus
	for time.Now().Before(deadline) {
		if last = e.Status().Session; last.State == api.StateLocked {
			if !want {
				t.Fatal("the daemon locked")
			}
			return time.Since(since)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if want {
		t.Fatalf("the daemon did not lock within 10 s: %+v\n%s", last, e.DaemonLog())
	}
	return 0
}

// wipedAfter is how long after sent the daemon's log says the session
// locked (the cache is wiped before that line is written).
func wipedAfter(t *testing.T, e *testEnv, sent time.Time) time.Duration {
	t.Helper()
	var at time.Time
	for _, line := range strings.Split(e.DaemonLog(), "\n") {
		var rec struct {
			Time    time.Time `json:"time"`
			Message string    `json:"message"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Message == "session locked" && rec.Time.After(sent) {
			at = rec.Time
		}
	}
	if at.IsZero() {
		t.Fatalf("the daemon's log has no lock after %s", sent)
	}
	return at.Sub(sent)
}

// TestScreenLockLocksOpx: logind's Lock of this user's session, its
// LockedHint, PrepareForSleep and the desktop screensaver's ActiveChanged
// each lock opx as opx lock does: a cached read is refused with
// session_locked and the daemon's memory holds no value; after opx unlock
// the values are fetched again. Another user's session locking changes
// nothing.
func TestScreenLockLocksOpx(t *testing.T) {
	t.Parallel()
	l := startLogin1(t)
	e := newEnv(t)
	l.env(e)
	e.Vars["OP_AUTHD_BACKEND"] = "fake"
	e.Vars["OP_AUTHD_ENABLE_AUDIT_LOG"] = "true"
	cmd := e.StartDaemon(harness.Bins().Daemon, "daemon")
	if st := e.Status(); !strings.Contains(st.Session.Follows, "logind") || !strings.Contains(st.Session.Follows, "screensaver") {
		t.Fatalf("status says the daemon follows %q", st.Session.Follows)
	}
	const ref = "op://v/i/screen"
	screensaver := func() time.Time {
		start := time.Now()
		send := exec.Command("dbus-send", "--bus="+l.session.Addr, "--type=signal", "/org/freedesktop/ScreenSaver", "org.freedesktop.ScreenSaver.ActiveChanged", "boolean:true")
		if out, err := send.CombinedOutput(); err != nil {
			t.Fatalf("dbus-send: %v\n%s", err, out)
		}
		return start
	}
	for _, tc := range []struct {
		name   string
		signal func() time.Time
		reason string
	}{
		{"Lock", func() time.Time { return l.send("lock") }, "screen_locked"},
		{"LockedHint", func() time.Time { return l.send("hint true") }, "screen_locked"},
		{"PrepareForSleep", func() time.Time { return l.send("sleep") }, "sleep"},
		{"screensaver", screensaver, "screen_locked"},
	} {
		e.MustOpx("read", ref)
		before := e.Status().BackendCalls
		if r := e.Opx("read", ref); r.Code != 0 || e.Status().BackendCalls != before {
			t.Fatalf("%s: the value is not cached before the signal: %+v", tc.name, r)
		}
		sent := tc.signal()
		waitLocked(t, e, true, sent)
		t.Logf("%s: the cache was wiped %s after the signal was sent", tc.name, wipedAfter(t, e, sent))
		if st := e.Status(); st.Session.LockReason != tc.reason || st.CacheSize != 0 {
			t.Errorf("%s: status session %+v, cache %d; want locked for %s, the cache empty", tc.name, st.Session, st.CacheSize, tc.reason)
		}
		if r := e.Opx("read", ref); r.Code == 0 || !strings.Contains(r.Stderr, "the session is locked") || r.Stdout != "" {
			t.Errorf("%s: a read after the signal = %+v, want refused: the session is locked", tc.name, r)
		}
		harness.AssertNoSecrets(t, cmd.Process.Pid, [][]byte{[]byte(fv(ref))})
		e.MustOpx("unlock")
		before = e.Status().BackendCalls
		if out := e.MustOpx("read", ref); out != fv(ref)+"\n" || e.Status().BackendCalls != before+1 {
			t.Errorf("%s: after opx unlock the read = %q with %d backend calls, want it fetched again", tc.name, out, e.Status().BackendCalls-before)
		}
		l.send("hint false")
		l.send("wake")
	}
	audits, _ := filepath.Glob(filepath.Join(e.DataDir, "audit-*.log"))
	var records string
	for _, f := range audits {
		b, _ := os.ReadFile(f)
		records += string(b)
	}
	for _, want := range []string{"screen_locked: the screen locked (logind)", "screen_locked: the screen locked (logind LockedHint)",
		"sleep: the machine is going to sleep (logind)", "screen_locked: the screensaver started"} {
		if !strings.Contains(records, want) {
			t.Errorf("the audit log has no lock record %q", want)
		}
	}
	l.send("other-lock")
	waitLocked(t, e, false, time.Now())
	if l.send("unlock"); e.Status().Session.State != api.StateUnlocked {
		t.Error("the screen's unlock changed the session without --unlock-with-session")
	}
}

// TestUnlockWithSession: with --unlock-with-session, the screen's unlock
// (logind's) opens the session its lock closed, but not one opx lock
// closed.
func TestUnlockWithSession(t *testing.T) {
	t.Parallel()
	l := startLogin1(t)
	e := newEnv(t)
	l.env(e)
	e.Vars["OP_AUTHD_BACKEND"] = "fake"
	e.Vars["OP_AUTHD_UNLOCK_WITH_SESSION"] = "true"
	e.StartDaemon("")
	waitLocked(t, e, true, l.send("lock"))
	l.send("unlock")
	deadline := time.Now().Add(10 * time.Second)
	for e.Status().Session.State != api.StateUnlocked && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r := e.Opx("read", "op://v/i/back"); r.Code != 0 {
		t.Fatalf("a read after the screen unlocked = %+v", r)
	}
	e.MustOpx("lock")
	l.send("unlock")
	waitLocked(t, e, true, time.Now())
	time.Sleep(300 * time.Millisecond)
	if st := e.Status().Session; st.State != api.StateLocked || st.LockReason != "manual" {
		t.Errorf("after opx lock and the screen's unlock: %+v, want still locked by opx lock", st)
	}
}

// TestScreenLockOffOrNoBus: with --lock-on-screen-lock=false the signals
// change nothing; with no bus at all nothing changes either, and status
// says what is not followed.
func TestScreenLockOffOrNoBus(t *testing.T) {
	t.Parallel()
	l := startLogin1(t)
	off := newEnv(t)
	l.env(off)
	off.Vars["OP_AUTHD_BACKEND"] = "fake"
	off.StartDaemon("", "--lock-on-screen-lock=false")
	if f := off.Status().Session.Follows; !strings.Contains(f, "off") {
		t.Errorf("status follows %q, want off", f)
	}
	off.MustOpx("read", "op://v/i/off")
	l.send("lock")
	l.send("sleep")
	waitLocked(t, off, false, time.Now())

	none := newEnv(t)
	none.Vars["OP_AUTHD_BACKEND"] = "fake"
	none.Vars["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/system_bus_socket"
	none.Vars["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent/bus"
	none.StartDaemon("")
	if f := none.Status().Session.Follows; !strings.Contains(f, "no system bus") || !strings.Contains(f, "no session bus") {
		t.Errorf("status follows %q, want it to say there is no bus", f)
	}
	if out := none.MustOpx("status"); !strings.Contains(out, "no system bus") {
		t.Errorf("opx status does not say the screen lock is not followed:\n%s", out)
	}
	if r := none.Opx("doctor"); !strings.Contains(r.Stdout, "no system bus") || !strings.Contains(r.Stdout, "lock it yourself with opx lock") {
		t.Errorf("opx doctor does not say the screen lock is not followed:\n%s", r.Stdout)
	}
	if out := none.MustOpx("read", "op://v/i/none"); out != fv("op://v/i/none")+"\n" {
		t.Errorf("read with no bus = %q", out)
	}
}
