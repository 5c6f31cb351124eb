package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSIGTERMDuringABatch(t *testing.T) {
	e := newEnv(t)
	cmd := e.startDaemon("", "--backend=fake", "--fake-delay=1s")
	args := []string{"read"}
	want := ""
	for i := range 10 {
		ref := fmt.Sprintf("op://v/batch%d/f", i)
		args = append(args, ref)
		want += fv(ref) + "\n"
	}
	done := make(chan result, 1)
	go func() { done <- e.opx(args...) }()
	time.Sleep(400 * time.Millisecond) // the batch is in the backend
	cmd.Process.Signal(syscall.SIGTERM)
	r := <-done
	if r.code != 0 || r.stdout != want {
		t.Errorf("read in flight at SIGTERM = %+v; want it to finish", r)
	}
	for i := 0; i < 500 && alive(cmd.Process.Pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(cmd.Process.Pid) {
		t.Fatal("daemon still running after SIGTERM")
	}
	if _, err := os.Stat(e.sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// mountTmpfs mounts a tmpfs at dir with opts, or skips the test.
func mountTmpfs(t *testing.T, dir, opts string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small or read-only file system")
	}
	os.MkdirAll(dir, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

func TestReadOnlyDataDirIsAClearError(t *testing.T) {
	e := newEnv(t)
	mountTmpfs(t, e.data, "ro,size=64k,mode=0700")
	r := e.opx("daemon", "--backend=fake")
	if r.code != 1 || !strings.Contains(r.stderr, "opx: error:") || !strings.Contains(r.stderr, "read-only file system") || !strings.Contains(r.stderr, e.data) {
		t.Errorf("daemon on a read-only data dir = %+v", r)
	}
}

func TestFullDiskIsAClearError(t *testing.T) {
	e := newEnv(t)
	mountTmpfs(t, e.data, "size=8k,mode=0700")
	os.WriteFile(filepath.Join(e.data, "filler"), make([]byte, 64<<10), 0o600) // fills it
	r := e.opxEnv([]string{"OP_AUTHD_BACKEND=fake"}, "read", "op://a/b/c")
	if r.code != 1 || !strings.Contains(r.stderr, "no space left on device") {
		t.Errorf("read with a full data dir = %+v", r)
	}
}
