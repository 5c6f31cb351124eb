//go:build unix

package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The daemon removes nothing at the socket path but a socket: a user's file,
// FIFO or directory there is an error naming the path, and stays as it was.
func TestDaemonNeverRemovesANonSocketAtTheSocketPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := filepath.Join(e.Dir, "w")
	os.MkdirAll(dir, 0o700)
	notes := filepath.Join(dir, "notes.txt")
	fifo := filepath.Join(dir, "fifo")
	sub := filepath.Join(dir, "sub")
	link := filepath.Join(dir, "link")
	os.WriteFile(notes, []byte("my notes\n"), 0o600)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(sub, 0o700)
	os.Symlink(notes, link)
	for _, path := range []string{notes, fifo, sub, link} {
		r := e.Opx("daemon", "--backend=fake", "--sock", path)
		if r.Code == 0 || !strings.Contains(r.Stderr, path) || !strings.Contains(r.Stderr, "not a socket") {
			t.Errorf("daemon --sock %s = %+v, want an error naming the path", path, r)
		}
	}
	if b, err := os.ReadFile(notes); err != nil || string(b) != "my notes\n" {
		t.Errorf("notes.txt after the daemon tried its path: %q, %v", b, err)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo after the daemon tried its path: %v, %v", fi, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link after the daemon tried its path: %v, %v", fi, err)
	}
	// A stale socket (a daemon killed with SIGKILL) is still replaced.
	stale := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false) // as SIGKILL leaves it
	l.Close()
	if _, err := os.Lstat(stale); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	e.Vars["OPX_SOCKET_PATH"] = stale
	e.Sock = stale
	e.StartDaemon("", "--backend=fake")
	if out := e.MustOpx("read", "op://a/b/c"); out != fv("op://a/b/c")+"\n" {
		t.Errorf("read through the daemon that replaced a stale socket = %q", out)
	}
}

// The lock file is never followed through a link, and must be a regular
// file of the user: a planted link's target is left as it was.
func TestLockFileIsNotFollowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	victim := filepath.Join(e.Dir, "victim")
	os.WriteFile(victim, []byte("keep me\n"), 0o600)
	os.MkdirAll(filepath.Dir(e.Sock), 0o700)
	if err := os.Symlink(victim, e.Sock+".lock"); err != nil {
		t.Fatal(err)
	}
	r := e.Opx("daemon", "--backend=fake")
	if r.Code == 0 || !strings.Contains(r.Stderr, e.Sock+".lock") {
		t.Errorf("daemon with a planted lock link = %+v, want an error naming the lock file", r)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep me\n" {
		t.Errorf("the link's target was overwritten: %q", b)
	}
	os.Remove(e.Sock + ".lock")
	if err := syscall.Mkfifo(e.Sock+".lock", 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(e.Sock + ".lock") // the cleanup reads the lock file
	if r := e.Opx("daemon", "--backend=fake"); r.Code == 0 || !strings.Contains(r.Stderr, "not a regular file") {
		t.Errorf("daemon with a FIFO as lock file = %+v", r)
	}
}
