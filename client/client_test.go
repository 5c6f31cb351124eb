//go:build unix

// Against the real daemon, which has no Windows port on this branch yet
// (issue 23): the Windows tests of the library are dial_windows_test.go.

package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/client"
)

// stop stops the daemon, if one runs, and waits for it to be gone.
func stop(t *testing.T) {
	t.Helper()
	c := client.New(client.Options{})
	defer c.Close()
	if _, err := c.Stop(context.Background()); err != nil {
		if errors.Is(err, client.ErrNotRunning) {
			return
		}
		t.Fatalf("Stop: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		probe := client.New(client.Options{})
		_, err := probe.Status(context.Background())
		probe.Close()
		if errors.Is(err, client.ErrNotRunning) {
			return
		}
	}
	t.Fatal("the daemon did not stop within 10 s")
}

// Reads takes more refs than the daemon takes in one request: every ref
// gets its value, and a ref given twice is read once.
func TestReadsMoreThanOneRequestHolds(t *testing.T) {
	c := client.New(client.Options{Autostart: true})
	defer c.Close()
	refs := make([]string, 0, 2*api.MaxRefs+2)
	for i := range 2*api.MaxRefs + 1 {
		refs = append(refs, fmt.Sprintf("op://v/item%d/password", i))
	}
	refs = append(refs, refs[0])
	res, err := c.Reads(context.Background(), client.Query{}, refs)
	if err != nil {
		t.Fatalf("Reads(%d refs): %v", len(refs), err)
	}
	if len(res) != 2*api.MaxRefs+1 {
		t.Errorf("Reads(%d refs) has %d results, want %d", len(refs), len(res), 2*api.MaxRefs+1)
	}
	for _, ref := range refs {
		r := res[ref]
		if r == nil || r.Err != nil || !strings.HasPrefix(string(r.Value), "fake_") {
			t.Fatalf("Reads: %s = %+v, want a value", ref, r)
		}
	}
}

// A program keeps one Client for its life; the daemon it reads through
// may stop meanwhile (its idle timeout, opx stop): the next read starts
// another, as the first one did.
func TestClientOutlivesTheDaemon(t *testing.T) {
	c := client.New(client.Options{Autostart: true})
	defer c.Close()
	ctx := context.Background()
	first, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop(t)
	v, err := c.Read(ctx, client.Query{}, "op://Private/db/password")
	if err != nil {
		t.Fatalf("Read after the daemon stopped: %v", err)
	}
	clear(v)
	now, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if now.PID == first.PID {
		t.Errorf("the daemon answering is still pid %d, which was stopped", now.PID)
	}
}

// Without Autostart, no daemon is started: the error says none runs, and
// a later call, once one runs, succeeds with the same Client.
func TestNoAutostart(t *testing.T) {
	stop(t)
	c := client.New(client.Options{})
	defer c.Close()
	_, err := c.Status(context.Background())
	if !errors.Is(err, client.ErrNotRunning) {
		t.Fatalf("Status with no daemon and no autostart = %v, want ErrNotRunning", err)
	}
	var e *client.Error
	if !errors.As(err, &e) || e.Hint == "" {
		t.Errorf("Status error %#v has no hint", err)
	}
	starter := client.New(client.Options{Autostart: true})
	defer starter.Close()
	if _, err := starter.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Errorf("Status once a daemon runs: %v", err)
	}
}

// A program whose PATH has no opx and that names no DaemonPath is told
// how to fix it, not that some other program failed.
func TestAutostartWithoutOpx(t *testing.T) {
	stop(t)
	t.Setenv("PATH", t.TempDir())
	c := client.New(client.Options{Autostart: true})
	defer c.Close()
	_, err := c.Status(context.Background())
	var e *client.Error
	if !errors.As(err, &e) || !strings.Contains(e.Message, "find opx") || !strings.Contains(e.Hint, "DaemonPath") {
		t.Fatalf("Status with no opx on PATH = %#v, want an error naming opx and DaemonPath", err)
	}
	// Named, it is found.
	c = client.New(client.Options{Autostart: true, DaemonPath: filepath.Join(opxDir, "opx")})
	defer c.Close()
	if _, err := c.Status(context.Background()); err != nil {
		t.Errorf("Status with DaemonPath: %v", err)
	}
	if _, err := os.Stat(filepath.Join(opxDir, "opx")); err != nil {
		t.Fatal(err)
	}
}

// A per-ref failure is typed: its code, and a hint when there is one.
func TestReadErrorIsTyped(t *testing.T) {
	c := client.New(client.Options{Autostart: true})
	defer c.Close()
	_, err := c.Read(context.Background(), client.Query{}, "op://Private")
	if !client.IsCode(err, api.CodeBadRequest) {
		t.Fatalf("Read(op://Private) = %v, want a %s error", err, api.CodeBadRequest)
	}
}
