package main

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a bytes.Buffer safe for a writer and a reader at once.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, b *syncBuf, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %q; have %q", want, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inFlight is an opx command started in the background, once the daemon
// shows its request in flight (so what the command checks first is behind
// it); done has its end.
type inFlight struct {
	stdout, stderr syncBuf
	done           chan error
}

func (e *testEnv) startInFlight(args ...string) *inFlight {
	e.t.Helper()
	f := &inFlight{done: make(chan error, 1)}
	cmd := exec.Command(opxBin, args...)
	cmd.Env = e.environ()
	cmd.Stdout, cmd.Stderr = &f.stdout, &f.stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { f.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for e.status().InFlight == 0 {
		select {
		case err := <-f.done:
			e.t.Fatalf("opx %q ended before it was seen at the daemon: %v, %q", args, err, f.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("opx %q never reached the daemon", args)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return f
}
