package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/e2e/harness"
)

// statusAs is `opx status --json` run by prog (a peerhelper), for a test
// whose policy allows the test itself nothing (it would get the short
// answer).
func (e *testEnv) statusAs(prog string) api.Status {
	e.T.Helper()
	var st api.Status
	r := e.helper(prog, "opx", "status", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil || r.Code != 0 {
		e.T.Fatalf("status --json run by %s: %v\n%+v", prog, err, r)
	}
	return st
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestReadAutostartsOnAFreshMachine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.OpxEnv([]string{"OP_AUTHD_BACKEND=fake"}, "read", "op://a/b/c")
	if r.Code != 0 || r.Stdout != fv("op://a/b/c")+"\n" {
		t.Fatalf("opx read = %q (exit %d, stderr %q), want %q", r.Stdout, r.Code, r.Stderr, fv("op://a/b/c")+"\n")
	}
	for _, f := range []string{"token", "tls.crt", "tls.key"} {
		if m := mode(t, filepath.Join(e.DataDir, f)); m != 0o600 {
			t.Errorf("%s mode = %o, want 600", f, m)
		}
	}
	for _, d := range []string{e.DataDir, filepath.Dir(e.Sock)} {
		if m := mode(t, d); m != 0o700 {
			t.Errorf("%s mode = %o, want 700", d, m)
		}
	}
	if st := e.Status(); st.Backend != "fake" || st.Misses != 1 {
		t.Errorf("status after one read: backend %q misses %d", st.Backend, st.Misses)
	}
	// The second read is a cache hit of the same daemon.
	e.MustOpx("read", "op://a/b/c")
	if st := e.Status(); st.Hits != 1 || st.BackendCalls != 1 {
		t.Errorf("second read: hits %d backend calls %d, want 1 and 1", st.Hits, st.BackendCalls)
	}
}

func TestAutostartOffSaysSo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.OpxEnv([]string{"OPX_AUTOSTART=0"}, "read", "op://a/b/c")
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "opx: error: no opx daemon is running") || !strings.Contains(r.Stderr, "opx: hint:") {
		t.Fatalf("read with autostart off = %+v", r)
	}
}

func TestAutostartReportsADaemonThatCannotStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The default backend is opcli; with no op program to run, or a bad
	// flag value, the daemon exits and the client shows why.
	r := e.OpxEnv([]string{"OP_AUTHD_BACKEND=fake", "OP_AUTHD_TTL=-5s"}, "read", "op://a/b/c")
	if r.Code != 1 || !strings.Contains(r.Stderr, "daemon exited at start") || !strings.Contains(r.Stderr, "negative") {
		t.Fatalf("read with a broken daemon config = %+v", r)
	}
}

func TestDaemonByLinkNameAndReadOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon(filepath.Join(filepath.Dir(harness.Bins().Opx), "opx-authd"), "--backend=fake")
	refs := []string{"op://Private/db/password", "vault://secret/app#key", "bao://kv/x", "op://Private/db/password"}
	out := e.MustOpx(append([]string{"read"}, refs...)...)
	want := ""
	for _, r := range refs {
		want += fv(r) + "\n"
	}
	if out != want {
		t.Errorf("opx read = %q, want %q", out, want)
	}
	if out := e.MustOpx("read", "-n", "op://a/b/c"); out != fv("op://a/b/c") {
		t.Errorf("opx read -n = %q, want no newline", out)
	}
}

func TestReadFailurePrintsNothingOnStdout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	r := e.Opx("read", "--", "op://a/b/c", "ftp://x/y", "-op://a/b/c")
	if r.Code != 1 || r.Stdout != "" {
		t.Fatalf("read with bad refs: exit %d stdout %q", r.Code, r.Stdout)
	}
	for _, want := range []string{"opx: error: ftp://x/y: unknown scheme", "opx: error: -op://a/b/c: a reference may not start with '-'"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr %q does not contain %q", r.Stderr, want)
		}
	}
	if strings.Contains(r.Stderr, "op://a/b/c:") && strings.Count(r.Stderr, "opx: error:") != 2 {
		t.Errorf("stderr names a ref that did not fail: %q", r.Stderr)
	}
}

func TestAccountBeforeOrAfterTheSubcommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	want := backend.FakeValue("me@example.com", "op://a/b/c") + "\n"
	for _, args := range [][]string{
		{"--account=me@example.com", "read", "op://a/b/c"},
		{"read", "op://a/b/c", "--account", "me@example.com"},
	} {
		if out := e.MustOpx(args...); out != want {
			t.Errorf("opx %v = %q, want %q", args, out, want)
		}
	}
	if out := e.MustOpx("read", "op://a/b/c"); out != fv("op://a/b/c")+"\n" {
		t.Errorf("no account = %q: an account must be part of the cache key", out)
	}
	if st := e.Status(); st.CacheSize != 2 {
		t.Errorf("cache size = %d, want 2 (one per account)", st.CacheSize)
	}
}

func TestRunInjectsSecretsAndPassesExitStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	envFile := filepath.Join(e.Dir, "app.env")
	os.WriteFile(envFile, []byte("# app\nFROM_FILE=op://v/file/f\nLITERAL=\"hello world\"\n"), 0o600)
	r := e.OpxEnv([]string{"INHERITED=vault://secret/app#k", "PLAIN=keep"},
		"run", "--no-masking", "--env", "DB_PASS=op://Private/db/password", "--env-file", envFile, "--",
		"sh", "-c", `printf '%s|%s|%s|%s|%s\n' "$DB_PASS" "$FROM_FILE" "$INHERITED" "$LITERAL" "$PLAIN"; exit 7`)
	want := strings.Join([]string{fv("op://Private/db/password"), fv("op://v/file/f"), fv("vault://secret/app#k"), "hello world", "keep"}, "|") + "\n"
	if r.Stdout != want || r.Code != 7 {
		t.Fatalf("opx run = %q exit %d (stderr %q), want %q exit 7", r.Stdout, r.Code, r.Stderr, want)
	}
	if st := e.Status(); st.BackendCalls != 1 {
		t.Errorf("opx run made %d backend calls, want 1 (one round trip)", st.BackendCalls)
	}
}

func TestRunPassesSignals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	cmd := exec.Command(harness.Bins().Opx, "run", "--env", "X=op://a/b/c", "--", "sh", "-c", `echo ready; exec sleep 30`)
	cmd.Env = e.Environ()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	cmd.Wait()
	// opx passed the signal on and exits as a shell would for a command
	// that SIGUSR1 ended.
	if code := cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGUSR1) {
		t.Fatalf("opx run exited %d, want %d", code, 128+int(syscall.SIGUSR1))
	}
}

func TestResolveFormats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	out := e.MustOpx("resolve", "B=op://v/i/b", "A=vault://kv/a#x")
	if want := "A=" + fv("vault://kv/a#x") + "\nB=" + fv("op://v/i/b") + "\n"; out != want {
		t.Errorf("resolve = %q, want %q", out, want)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(e.MustOpx("resolve", "--json", "A=op://v/i/a")), &m); err != nil || m["A"] != fv("op://v/i/a") {
		t.Errorf("resolve --json = %v, %v", m, err)
	}
	if out := e.MustOpx("resolve", "--export", "A=op://v/i/a"); out != "export A='"+fv("op://v/i/a")+"'\n" {
		t.Errorf("resolve --export = %q", out)
	}
	r := e.Opx("resolve", "A=op://v/i/a", "B=nope")
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "B:") {
		t.Errorf("resolve with a bad ref = %+v", r)
	}
}

func TestStatusHumanJSONAndNotRunning(t *testing.T) {
	// Counting daemons tells this env's from others' only where their
	// environment can be read (harness.DaemonsExact); elsewhere it runs alone.
	if harness.DaemonsExact() {
		t.Parallel()
	}
	e := newEnv(t)
	r := e.Opx("status")
	if r.Code != 3 || !strings.Contains(r.Stdout, "not running") {
		t.Fatalf("status with no daemon = %+v, want exit 3 and 'not running'", r)
	}
	if len(e.Daemons()) != 0 {
		t.Fatal("opx status started a daemon")
	}
	e.StartDaemon("", "--backend=fake", "--session-timeout=90s")
	e.MustOpx("read", "op://a/b/c")
	out := e.MustOpx("status")
	for _, want := range []string{"running", "backend   fake;", "1 miss (0 joined", "1 backend call,", "locks after 1m30s"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	st := e.Status()
	if st.Session.IdleTimeoutSeconds != 90 || st.Session.State != "unlocked" || st.SocketPath != e.Sock {
		t.Errorf("status = %+v", st)
	}
}

func TestSessionTimeoutInHours(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake", "--session-timeout", "8")
	if st := e.Status(); st.Session.IdleTimeoutSeconds != 8*3600 || !st.Session.Enabled {
		t.Errorf("--session-timeout 8: %+v, want 28800 s", st.Session)
	}
}

func TestSessionIdleLockWipesAndUnlocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake", "--session-timeout=2s")
	e.MustOpx("read", "op://a/b/c")
	deadline := time.Now().Add(15 * time.Second)
	for e.Status().Session.State != "locked" {
		if time.Now().After(deadline) {
			t.Fatal("session did not lock after 2 s idle")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st := e.Status(); st.CacheSize != 0 {
		t.Errorf("cache size when locked = %d, want 0", st.CacheSize)
	}
	r := e.Opx("read", "op://a/b/c")
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "locked") || !strings.Contains(r.Stderr, "opx: hint: run: opx unlock") {
		t.Fatalf("read while locked = %+v", r)
	}
	if out := e.MustOpx("unlock"); !strings.Contains(out, "unlocked") {
		t.Errorf("opx unlock = %q", out)
	}
	if out := e.MustOpx("read", "op://a/b/c"); out != fv("op://a/b/c")+"\n" {
		t.Errorf("read after unlock = %q", out)
	}
	if out := e.MustOpx("lock"); !strings.Contains(out, "locked") {
		t.Errorf("opx lock = %q", out)
	}
	if st := e.Status(); st.Session.State != "locked" || st.CacheSize != 0 {
		t.Errorf("after opx lock: %+v", st)
	}
}

func TestTwentyClientsStartOneDaemon(t *testing.T) {
	// Counting daemons tells this env's from others' only where their
	// environment can be read (harness.DaemonsExact); elsewhere it runs alone.
	if harness.DaemonsExact() {
		t.Parallel()
	}
	e := newEnv(t)
	var wg sync.WaitGroup
	results := make([]harness.Result, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.OpxEnv([]string{"OP_AUTHD_BACKEND=fake"}, "read", fmt.Sprintf("op://v/i/%d", i))
		}()
	}
	wg.Wait()
	for i, r := range results {
		if want := fv(fmt.Sprintf("op://v/i/%d", i)) + "\n"; r.Code != 0 || r.Stdout != want {
			t.Errorf("client %d: exit %d stdout %q stderr %q", i, r.Code, r.Stdout, r.Stderr)
		}
	}
	// The losers of the race exit: wait for them (a loser that stays fails
	// the test after the deadline), then count.
	var pids []int
	harness.Eventually(20*time.Second, func() bool { pids = e.Daemons(); return len(pids) <= 1 })
	if len(pids) != 1 {
		t.Errorf("%d daemons running (%v), want exactly 1", len(pids), pids)
	}
}

func TestClientKilledMidReadDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A backend call long enough for the test to see it in flight and
	// the others join it, however loaded the machine.
	e.StartDaemon("", "--backend=fake", "--fake-delay=10s")
	victim := exec.Command(harness.Bins().Opx, "read", "op://shared/item/f")
	victim.Env = e.Environ()
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	// The victim's read is in flight, then the others join it.
	if !harness.Eventually(30*time.Second, func() bool { return e.Status().InFlight > 0 }) {
		t.Fatal("the victim's read never reached the backend")
	}
	joined := e.Status().Coalesced
	var wg sync.WaitGroup
	results := make([]harness.Result, 4)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = e.Opx("read", "op://shared/item/f") }()
	}
	if !harness.Eventually(30*time.Second, func() bool { return e.Status().Coalesced >= joined+uint64(len(results)) }) {
		t.Fatal("the other clients never joined the victim's read")
	}
	victim.Process.Kill()
	victim.Wait()
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 || r.Stdout != fv("op://shared/item/f")+"\n" {
			t.Errorf("client %d after the victim died: %+v", i, r)
		}
	}
	if st := e.Status(); st.BackendCalls != 1 {
		t.Errorf("backend calls = %d, want 1", st.BackendCalls)
	}
}

func TestFiftyConcurrentReadsOneBackendCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake", "--fake-delay=300ms")
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.Opx("read", "op://v/hot/f"); r.Code != 0 || r.Stdout != fv("op://v/hot/f")+"\n" {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed > 0 {
		t.Errorf("%d of 50 reads failed", failed)
	}
	if st := e.Status(); st.BackendCalls != 1 {
		t.Errorf("backend calls = %d, want 1", st.BackendCalls)
	}
}

func TestBatchOfDistinctRefsIsOneCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake", "--fake-delay=300ms")
	args := []string{"read"}
	for i := range 100 {
		args = append(args, fmt.Sprintf("op://v/item%d/f", i))
	}
	out := e.MustOpx(args...)
	if n := strings.Count(out, "\n"); n != 100 {
		t.Fatalf("read printed %d lines, want 100", n)
	}
	if st := e.Status(); st.BackendCalls != 1 {
		t.Errorf("100 distinct refs in one read made %d backend calls, want 1", st.BackendCalls)
	}
}

func TestBadInputOverTheSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	hc, token := e.RawClient()
	hundredK := `{"refs":[` + strings.Repeat(`"op://v/i/f",`, 100000) + `"op://v/i/f"]}`
	over := `{"refs":[` + strings.Repeat(`"op://v/i/f",`, api.MaxRefs) + `"op://v/i/f"]}`
	for _, tc := range []struct {
		name, token, path, body string
		status                  int
		code                    string
	}{
		{"no token", "", "/v1/read", `{"ref":"op://v/i/f"}`, 401, "unauthorized"},
		{"wrong token", strings.Repeat("a", 64), "/v1/read", `{"ref":"op://v/i/f"}`, 401, "unauthorized"},
		{"malformed JSON", token, "/v1/read", `{"ref": op://`, 400, "bad_request"},
		{"leading dash", token, "/v1/read", `{"ref":"-op://v/i/f"}`, 400, "bad_request"},
		{"unknown scheme", token, "/v1/read", `{"ref":"gopher://v/i/f"}`, 400, "bad_request"},
		{"100k refs", token, "/v1/reads", hundredK, 413, "too_large"},
		{"more refs than the cap", token, "/v1/reads", over, 413, "too_large"},
		{"oversized body", token, "/v1/read", `{"ref":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := harness.Request(t, hc, tc.token, "POST", tc.path, strings.NewReader(tc.body))
			var eb api.ErrorBody
			if status != tc.status || json.Unmarshal([]byte(body), &eb) != nil || eb.Error == nil || eb.Error.Code != tc.code {
				t.Errorf("status %d body %.200s; want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	if out := e.MustOpx("read", "op://v/i/f"); out != fv("op://v/i/f")+"\n" {
		t.Errorf("read after bad input = %q", out)
	}
	r := e.OpxEnv(nil, "read", "op://v/i/f")
	if r.Code != 0 {
		t.Errorf("daemon stopped serving: %+v", r)
	}
}

func TestWrongTokenFileGivesAHint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	os.WriteFile(filepath.Join(e.DataDir, "token"), []byte(strings.Repeat("b", 64)), 0o600)
	r := e.Opx("read", "op://v/i/f")
	if r.Code != 1 || !strings.Contains(r.Stderr, "invalid bearer token") || !strings.Contains(r.Stderr, "opx: hint:") {
		t.Errorf("read with a stale token = %+v", r)
	}
}

func TestBackendTimeoutKeepsServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake", "--fake-delay=2s", "--backend-timeout=200ms")
	r := e.Opx("read", "op://v/i/slow")
	if r.Code != 1 || !strings.Contains(r.Stderr, "backend_timeout") {
		t.Fatalf("read from a hanging backend = %+v", r)
	}
	if st := e.Status(); st.CacheSize != 0 {
		t.Error("a timeout was cached")
	}
}

func TestSIGTERMShutsDownCleanly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cmd := e.StartDaemon("", "--backend=fake")
	e.MustOpx("read", "op://a/b/c")
	cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for harness.Alive(cmd.Process.Pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(e.Sock); !os.IsNotExist(err) {
		t.Errorf("socket still there after SIGTERM: %v", err)
	}
}

func TestKilledDaemonIsReplaced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A backend call long enough for the test to see the read in flight.
	fake := []string{"OP_AUTHD_BACKEND=fake", "OP_AUTHD_FAKE_DELAY=5s"}
	if r := e.OpxEnv(fake, "read", "op://a/b/c"); r.Code != 0 {
		t.Fatalf("first read: %+v", r)
	}
	old := e.DaemonPID()
	// Kill the daemon while a read is in flight: the client says so clearly.
	inflight := e.StartInFlightEnv(fake, "read", "op://a/b/slow")
	syscall.Kill(old, syscall.SIGKILL)
	var exit *exec.ExitError
	err := <-inflight.Done
	if stdout, stderr := inflight.Stdout.String(), inflight.Stderr.String(); !errors.As(err, &exit) || exit.ExitCode() != 1 || stdout != "" || !strings.Contains(stderr, "daemon") || !strings.Contains(stderr, "opx: hint:") {
		t.Errorf("read cut off by a killed daemon: %v, stdout %q, stderr %q; want exit 1 and a hint", err, stdout, stderr)
	}
	for i := 0; i < 200 && harness.Alive(old); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(e.Sock); err != nil {
		t.Fatalf("the killed daemon's socket should still be there: %v", err)
	}
	// The next client starts a new daemon over the stale socket and lock.
	if r := e.OpxEnv(fake, "read", "op://a/b/c"); r.Code != 0 || r.Stdout != fv("op://a/b/c")+"\n" {
		t.Fatalf("read after the daemon was killed: %+v", r)
	}
	if pid := e.DaemonPID(); pid == old || !harness.Alive(pid) {
		t.Errorf("daemon pid %d after restart (old %d)", pid, old)
	}
}

func TestSecondDaemonIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.StartDaemon("", "--backend=fake")
	r := e.Opx("daemon", "--backend=fake")
	if r.Code != 75 || !strings.Contains(r.Stderr, "already serving") || !strings.Contains(r.Stderr, fmt.Sprint(first.Process.Pid)) {
		t.Errorf("second daemon = %+v, want exit 75 naming pid %d", r, first.Process.Pid)
	}
	if c, err := net.Dial("unix", e.Sock); err != nil {
		t.Errorf("the first daemon's socket is gone: %v", err)
	} else {
		c.Close()
	}
}

func TestSocketDirOpenToOthersIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := filepath.Join(e.Dir, "open")
	os.Mkdir(dir, 0o755)
	os.Chmod(dir, 0o755)
	r := e.Opx("daemon", "--backend=fake", "--sock", filepath.Join(dir, "s.sock"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "open to other users") {
		t.Errorf("daemon in a 0755 dir = %+v", r)
	}
}

func TestConfigEnvFlagPrecedence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	os.MkdirAll(e.ConfigDir, 0o700)
	os.WriteFile(filepath.Join(e.ConfigDir, "config.json"), []byte(`{"backend":"fake","ttl":5,"session_timeout":"90s"}`), 0o600)
	check := func(extra []string, args []string, wantTTL int64) {
		t.Helper()
		cmd := exec.Command(harness.Bins().Opx, append([]string{"daemon"}, args...)...)
		cmd.Env = e.Environ(extra...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if c, err := net.Dial("unix", e.Sock); err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("daemon did not start")
			}
			time.Sleep(10 * time.Millisecond)
		}
		st := e.Status()
		if st.TTLSeconds != wantTTL || st.Backend != "fake" || st.Session.IdleTimeoutSeconds != 90 {
			t.Errorf("env %v flags %v: ttl %d backend %s idle %d; want ttl %d from the right source", extra, args, st.TTLSeconds, st.Backend, st.Session.IdleTimeoutSeconds, wantTTL)
		}
	}
	check(nil, nil, 5)
	check([]string{"OP_AUTHD_TTL=7s"}, nil, 7)
	check([]string{"OP_AUTHD_TTL=7s"}, []string{"--ttl=9s"}, 9)
}

func TestBrokenConfigStopsTheDaemon(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	os.MkdirAll(e.ConfigDir, 0o700)
	cfg := filepath.Join(e.ConfigDir, "config.json")
	os.WriteFile(cfg, []byte(`{"backend": "fake",`), 0o600)
	r := e.Opx("daemon")
	if r.Code != 1 || !strings.Contains(r.Stderr, cfg) {
		t.Errorf("daemon with a broken config = %+v, want an error naming %s", r, cfg)
	}
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if out := e.MustOpx("version"); !strings.HasPrefix(out, "opx ") {
		t.Errorf("opx version = %q", out)
	}
	out := e.MustOpx("--help")
	for _, cmd := range []string{"read", "run", "resolve", "status", "unlock", "lock", "version", "daemon"} {
		if !strings.Contains(out, cmd) {
			t.Errorf("--help does not list %s", cmd)
		}
	}
}

func TestReadOfMoreRefsThanOneRequestTakes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	args := []string{"read"}
	var want strings.Builder
	for i := range 1500 {
		ref := fmt.Sprintf("op://v/many/%d", i)
		args = append(args, ref)
		want.WriteString(fv(ref) + "\n")
	}
	if out := e.MustOpx(args...); out != want.String() {
		t.Errorf("read of 1,500 refs: %d bytes, want %d", len(out), want.Len())
	}
}
