//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/audit"
	"github.com/opxhq/opx/e2e/harness"
)

// The Windows build end to end under wine (issue 23): opx.exe autostarts
// its daemon on a named pipe, reads, conceals in opx run, locks, unlocks
// and stops; the policy judges the program that ran opx.exe.
//
// Every opx.exe here is run by the Windows peerhelper ("peerhelper opx
// ARGS" runs %OPX_BIN% ARGS), as a shell runs it on Windows: the daemon
// judges an opx client's parent, and a program wine starts from Linux has
// no Windows parent, so opx.exe run by the test directly is refused as
// unidentifiable. On Windows every program has one.

// winStatus is `opx.exe status --json` run by the Env's helper.
func winStatus(t *testing.T, e *harness.WinEnv) api.Status {
	t.Helper()
	r := e.Run(e.Helper, nil, "opx", "status", "--json")
	var st api.Status
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil {
		t.Fatalf("opx.exe status --json = %+v", r)
	}
	return st
}

// winFakeEnv is wine ready and an Env of it on the fake backend; the test
// logs how long it took under wine.
func winFakeEnv(t *testing.T) (*harness.Wine, *harness.WinEnv) {
	t.Helper()
	w := harness.NeedWine(t)
	e := w.NewEnv(t)
	e.Vars["OP_AUTHD_BACKEND"] = "fake"
	start := time.Now()
	t.Cleanup(func() { t.Logf("under wine: %s", time.Since(start).Round(time.Millisecond)) })
	return w, e
}

func TestWindowsReadRunLockStop(t *testing.T) {
	t.Parallel()
	w, e := winFakeEnv(t)
	ph := w.PeerHelper
	const ref = "op://a/b/c"

	// The first read autostarts the daemon, which records its pipe's name.
	if r := e.Run(ph, nil, "opx", "read", ref); r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Fatalf("opx.exe read %s (autostart) = %+v, want %q", ref, r, fv(ref))
	}
	pipeFile := filepath.Join(e.DataDir, "pipe")
	if b, err := os.ReadFile(pipeFile); err != nil || !strings.HasPrefix(string(b), "opx-authd-") {
		t.Errorf("pipe name file %s = %q, %v; want the pipe's name", pipeFile, b, err)
	}
	if r := e.Run(ph, nil, "opx", "read", ref); r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Fatalf("second opx.exe read = %+v", r)
	}
	if st := winStatus(t, e); st.Backend != "fake" || st.Hits != 1 || st.BackendCalls != 1 {
		t.Errorf("status after two reads = backend %q, hits %d, backend calls %d; want fake, 1, 1", st.Backend, st.Hits, st.BackendCalls)
	}

	// opx run: the child gets the value, its output shows the marker.
	r := e.Run(ph, nil, "opx", "run", "--env", "A="+ref, "--", "cmd", "/c", "echo %A%& if %A%=="+fv(ref)+" echo the child has the value")
	if r.Code != 0 || strings.Contains(r.Stdout, fv(ref)) || !strings.Contains(r.Stdout, "<concealed by opx>\n") ||
		!strings.Contains(r.Stdout, "the child has the value") {
		t.Errorf("opx.exe run -- cmd /c echo %%A%% = %+v; want the value concealed in the output, and given to the child", r)
	}

	// Lock: reads are refused, even from the cache, until unlock.
	if r := e.Run(ph, nil, "opx", "lock"); r.Code != 0 || !strings.Contains(r.Stdout, "locked") {
		t.Errorf("opx.exe lock = %+v", r)
	}
	if r := e.Run(ph, nil, "opx", "read", ref); r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "the session is locked") ||
		!strings.Contains(r.Stderr, "opx unlock") {
		t.Errorf("opx.exe read when locked = %+v; want exit 1, the session is locked, and the hint to unlock", r)
	}
	if r := e.Run(ph, nil, "opx", "unlock"); r.Code != 0 {
		t.Errorf("opx.exe unlock = %+v", r)
	}
	if r := e.Run(ph, nil, "opx", "read", ref); r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Errorf("opx.exe read after unlock = %+v", r)
	}

	// Stop: the daemon exits and removes its pipe's name file.
	if r := e.Run(ph, nil, "opx", "stop"); r.Code != 0 {
		t.Fatalf("opx.exe stop = %+v", r)
	}
	for i := 0; i < 200 && len(e.Procs()) > 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if pids := e.Procs(); len(pids) > 0 {
		t.Errorf("wine processes %v of the daemon left 10 s after opx.exe stop", pids)
	}
	if _, err := os.Stat(pipeFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pipe name file after stop: %v; want it removed", err)
	}
	if r := e.Run(ph, nil, "opx", "status", "--json"); r.Code != 3 || !strings.Contains(r.Stdout, `"running":false`) {
		t.Errorf("opx.exe status --json after stop = %+v; want exit 3, not running", r)
	}
}

// A default_deny policy that allows one copy of the helper by exe_sha256:
// that copy reads; the other, the same program under another path with
// another content, is refused, by its image path; the audit log records
// both with the Windows image paths.
func TestWindowsPolicy(t *testing.T) {
	t.Parallel()
	w, e := winFakeEnv(t)
	e.Vars["OP_AUTHD_ENABLE_AUDIT_LOG"] = "true"
	const ref = "op://a/b/c"

	data, err := os.ReadFile(w.PeerHelper)
	if err != nil {
		t.Fatal(err)
	}
	// B differs by a byte past the end of the image, which Windows ignores:
	// the same program, another hash.
	a, b := filepath.Join(e.Dir, "helper-a.exe"), filepath.Join(e.Dir, "helper-b.exe")
	if err := os.WriteFile(a, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, append(bytes.Clone(data), 0), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := os.MkdirAll(e.ConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	policy := `{"default_deny": true, "allow": [{"exe_sha256": "` + hex.EncodeToString(sum[:]) + `", "refs": ["*"]}]}`
	if err := os.WriteFile(filepath.Join(e.ConfigDir, "policy.json"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	e.Helper = a // the cleanup's opx.exe stop must be allowed

	if r := e.Run(a, nil, "opx", "read", ref); r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Fatalf("helper A (allowed by exe_sha256) opx.exe read = %+v, want %q", r, fv(ref))
	}
	winB := w.WinPath(b)
	// The path as a Windows user writes it: a backslash is escaped only in
	// a message that has a control character to escape (cli.Printable).
	r := e.Run(b, nil, "opx", "read", ref)
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "forbidden") || !strings.Contains(r.Stderr, winB) {
		t.Errorf("helper B (no rule) opx.exe read = %+v; want exit 1, forbidden, naming %s", r, winB)
	}
	if st := winStatus(t, e); st.Policy.State != "loaded" || !st.Policy.DefaultDeny {
		t.Errorf("status policy = %+v; want loaded, default_deny", st.Policy)
	}

	recs := winAudit(t, e)
	want := map[string]string{audit.Allow: w.WinPath(a), audit.Deny: winB}
	for _, rec := range recs {
		if rec.Reference != ref || !strings.EqualFold(rec.Requester.Path, want[rec.Decision]) {
			continue
		}
		if rec.Decision == audit.Allow && rec.Requester.ExeSHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("audit ALLOW record = %+v; want helper A's exe_sha256", rec)
		}
		delete(want, rec.Decision)
	}
	if len(want) > 0 {
		t.Errorf("audit log %+v lacks the records %v (decision: requester)", recs, want)
	}
	if r := e.Run(a, nil, "opx", "stop"); r.Code != 0 {
		t.Errorf("helper A opx.exe stop = %+v", r)
	}
}

// winAudit reads today's audit file of e.
func winAudit(t *testing.T, e *harness.WinEnv) []audit.Record {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(e.DataDir, "audit-*.log"))
	var recs []audit.Record
	for _, m := range matches {
		f, err := os.Open(m)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var rec audit.Record
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Errorf("audit line does not parse: %q", sc.Text())
			}
			recs = append(recs, rec)
		}
		f.Close()
	}
	return recs
}

// TestWindowsSessionLockLocksOpx: the session's lock, as Windows tells the
// daemon's session window, locks opx.exe as opx lock does; opx unlock
// opens it and the value is fetched again.
func TestWindowsSessionLockLocksOpx(t *testing.T) {
	t.Parallel()
	w, e := winFakeEnv(t)
	ph := w.PeerHelper
	const ref = "op://a/b/lock"
	if r := e.Run(ph, nil, "opx", "read", ref); r.Code != 0 {
		t.Fatalf("opx.exe read = %+v", r)
	}
	st := winStatus(t, e)
	if !strings.Contains(st.Session.Follows, "the session's lock (WTS)") {
		t.Fatalf("status follows %q", st.Session.Follows)
	}
	if r := e.Run(ph, nil, "wtslock", strconv.Itoa(st.PID)); r.Code != 0 {
		t.Fatalf("peerhelper wtslock = %+v", r)
	}
	deadline := time.Now().Add(20 * time.Second)
	for st = winStatus(t, e); st.Session.State != api.StateLocked && time.Now().Before(deadline); st = winStatus(t, e) {
		time.Sleep(50 * time.Millisecond)
	}
	if st.Session.State != api.StateLocked || st.Session.LockReason != "screen_locked" || st.CacheSize != 0 {
		t.Fatalf("after the session's lock: session %+v, cache %d", st.Session, st.CacheSize)
	}
	if r := e.Run(ph, nil, "opx", "read", ref); r.Code == 0 || !strings.Contains(r.Stderr, "the session is locked") {
		t.Errorf("opx.exe read while locked = %+v", r)
	}
	if r := e.Run(ph, nil, "opx", "unlock"); r.Code != 0 {
		t.Fatalf("opx.exe unlock = %+v", r)
	}
	if r := e.Run(ph, nil, "opx", "read", ref); r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Errorf("opx.exe read after unlock = %+v", r)
	}
	if r := e.Run(ph, nil, "opx", "stop"); r.Code != 0 {
		t.Errorf("opx.exe stop = %+v", r)
	}
}
