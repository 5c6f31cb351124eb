package harness

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// SyncBuf is a bytes.Buffer safe for a writer and a reader at once: the
// output of a process the test reads while it runs.
type SyncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor waits until b holds want, and fails t after 20 s: a generous
// deadline for an event, so that a loaded machine does not fail the test.
func WaitFor(t testing.TB, b *SyncBuf, want string) {
	t.Helper()
	if !Eventually(20*time.Second, func() bool { return strings.Contains(b.String(), want) }) {
		t.Fatalf("waited 20 s for %q; have %q", want, b.String())
	}
}

// Eventually polls cond until it holds or within has passed, and reports
// whether it held. Tests wait for events this way, never for a fixed time.
func Eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// InFlight is an opx command started in the background, once the daemon
// shows its request in flight (so what the command checks first is behind
// it); Done has its end.
type InFlight struct {
	Stdout, Stderr SyncBuf
	Done           chan error
}

// StartInFlight runs opx ARGS in the background and returns once the
// daemon counts a backend call in flight (the command's, when nothing else
// runs).
func (e *Env) StartInFlight(args ...string) *InFlight {
	e.T.Helper()
	return e.StartInFlightEnv(nil, args...)
}

// StartInFlightEnv is StartInFlight with extra environment variables.
func (e *Env) StartInFlightEnv(extra []string, args ...string) *InFlight {
	e.T.Helper()
	f := &InFlight{Done: make(chan error, 1)}
	cmd := exec.Command(e.Client, args...)
	cmd.Env = e.Environ(extra...)
	cmd.Stdout, cmd.Stderr = &f.Stdout, &f.Stderr
	if err := cmd.Start(); err != nil {
		e.T.Fatal(err)
	}
	go func() { f.Done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for e.Status().InFlight == 0 {
		select {
		case err := <-f.Done:
			e.T.Fatalf("opx %q ended before it was seen at the daemon: %v, %q", args, err, f.Stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("opx %q never reached the daemon", args)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return f
}

// Parallel runs f(0) … f(n-1) at once and waits for them all.
func Parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}
