//go:build unix

package e2e

// The daemon's life: started by the first command (or by its link name),
// one per socket, shut down by a signal, replaced when killed, refused when
// its files are unsafe or its config broken.

import (
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

	"github.com/opxhq/opx/e2e/harness"
)

func TestReadAutostartsOnAFreshMachine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	delete(e.Vars, "OPX_AUTHD_PATH") // as a user runs it: the client starts its own executable
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
		cmd := exec.Command(e.Daemon, append([]string{"daemon"}, args...)...)
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

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
