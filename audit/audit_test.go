package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRotationRetentionAndDenials(t *testing.T) {
	dir := t.TempDir()
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
	l.Access(peer, Requester{PID: 9, Path: "/usr/bin/kubectl"}, ActionRead, "op://Production/db/password", Deny, "no rule", "/p.json")
	l.Access(peer, Requester{PID: 9, Path: "/usr/bin/kubectl"}, ActionRead, "op://Production/db/password", Allow, "rule 0", "/p.json")
	clock = day1.Add(3 * time.Second) // past midnight
	l.Access(peer, Requester{PID: 9, Path: "/usr/bin/kubectl"}, ActionRead, "op://Production/db/password", Deny, "no rule", "/p.json")
	l.Access(peer, Requester{PID: 8, Path: "/tmp/evil"}, ActionRead, "op://Private/bank/pin", Deny, "no rule", "/p.json")
	l.AuthFailure(&peer, "invalid bearer token")
	l.Session(SessionLock, "idle_timeout")
	l.BackendLogin("vault", "userpass", errors.New("permission denied"))
	l.Daemon(DaemonStop, 1, "test")

	for _, day := range []string{"2026-11-28", "2026-11-29"} {
		if fi, err := os.Stat(filepath.Join(dir, "audit-"+day+".log")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("audit file of %s: %v", day, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "audit-2026-11-29.log"))
	for _, want := range []string{`"event":"ACCESS_DECISION"`, `"peer_info":{"PID":10,"UID":1000,"GID":1000,"Path":"/usr/bin/opx"}`,
		`"requester":{"PID":8,"Path":"/tmp/evil"}`, `"decision":"DENY"`, `"policy_path":"/p.json"`,
		`"event":"AUTH_FAILURE"`, `"event":"SESSION_LOCK"`, `"event":"BACKEND_LOGIN"`, `"success":false`, `"event":"DAEMON_STOP"`} {
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
	l.Access(Peer{}, Requester{}, ActionRead, "op://a/b/c", Allow, "", "")
	l.AuthFailure(nil, "x")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// A record is never written to a file that was removed or replaced: the
// log opens the day's file again.
func TestRemovedFileIsOpenedAgain(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Session(SessionLock, "first")
	path := filepath.Join(dir, FileName(time.Now()))
	os.Remove(path)
	if err := l.Session(SessionLock, "after removal"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), "after removal") {
		t.Errorf("after the file was removed: %q, %v", b, err)
	}
}
