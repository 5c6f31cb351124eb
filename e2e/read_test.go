//go:build unix

package e2e

// opx read: values in order, nothing on stdout on failure, many refs, and
// reads that share one backend call. --account, before or after the
// subcommand, is tested on the 1Password backend (TestOPTwoAccounts).

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opxhq/opx/e2e/harness"
)

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

// opx read, resolve and run take more refs than the daemon takes in one
// request (api.MaxRefs): they split them, and every value comes back in
// its place.
func TestMoreRefsThanOneRequestTakes(t *testing.T) {
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

	var pairs, runArgs []string
	for i := range 2500 {
		kv := fmt.Sprintf("V%04d=op://bulk/item%d/f", i, i)
		pairs = append(pairs, kv)
		runArgs = append(runArgs, "--env", kv)
	}
	out := e.MustOpx(append([]string{"resolve"}, pairs...)...)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2500 || lines[2499] != "V2499="+fv("op://bulk/item2499/f") {
		t.Fatalf("resolve of 2,500: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	r := e.Opx(append(append([]string{"run", "--no-masking"}, runArgs...), "--", "sh", "-c", `echo "$V0000 $V1999 $V2499"`)...)
	if want := fv("op://bulk/item0/f") + " " + fv("op://bulk/item1999/f") + " " + fv("op://bulk/item2499/f") + "\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("run with 2,500: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

// Reads that arrive together share backend calls (README: coalescing and
// batching): 100 distinct refs in one opx read are one call; 50 concurrent
// opx read processes of one ref are one call; and 8 concurrent
// --no-cache reads of it, which may not take the cached value, still share
// one call. The backend is slow enough for every process to arrive while
// the first call is out, however loaded the machine.
func TestReadsShareBackendCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake", "--fake-delay=5s")
	calls := func() uint64 { return e.Status().BackendCalls }

	args := []string{"read"}
	for i := range 100 {
		args = append(args, fmt.Sprintf("op://v/item%d/f", i))
	}
	out := e.MustOpx(args...)
	if n := strings.Count(out, "\n"); n != 100 {
		t.Fatalf("read printed %d lines, want 100", n)
	}
	if n := calls(); n != 1 {
		t.Errorf("100 distinct refs in one read made %d backend calls, want 1", n)
	}

	// readConcurrently runs n opx read processes of one ref at once, with
	// flags, and returns how many did not answer its value alone.
	const hot = "op://v/hot/f"
	readConcurrently := func(n int, flags ...string) (failed int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range n {
			wg.Go(func() {
				if r := e.Opx(append(append([]string{"read"}, flags...), hot)...); r.Code != 0 || r.Stdout != fv(hot)+"\n" || r.Stderr != "" {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return failed
	}
	before := calls()
	if failed := readConcurrently(50); failed > 0 {
		t.Errorf("%d of 50 reads failed", failed)
	}
	if n := calls() - before; n != 1 {
		t.Errorf("50 concurrent reads of one ref made %d backend calls, want 1", n)
	}

	before = calls()
	if failed := readConcurrently(8, "--no-cache"); failed > 0 {
		t.Errorf("%d of 8 --no-cache reads failed", failed)
	}
	if n := calls() - before; n != 1 {
		t.Errorf("8 concurrent --no-cache reads made %d backend calls, want 1", n)
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
