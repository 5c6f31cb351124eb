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

// With the audit log on a full file system, a read whose decision cannot be
// recorded is refused (audit_unavailable) and status says the log is not
// healthy; once there is room again, reads are served and recorded. A
// record torn by the full disk is cut off, so every line of the file parses.
func TestAuditOnAFullDiskFailsClosed(t *testing.T) {
	e := newEnv(t)
	mountTmpfs(t, e.data, "size=256k,mode=0700")
	e.startDaemon("", "--backend=fake", "--enable-audit-log")
	if r := e.opx("read", "op://a/b/first"); r.code != 0 {
		t.Fatalf("first read: %+v", r)
	}
	filler := filepath.Join(e.data, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1024)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	// The audit file's last page may still take a few records: read until
	// the disk is really full, then a few more.
	served := []string{"op://a/b/first"}
	refused := 0
	for i := 0; i < 100 && refused < 3; i++ {
		ref := fmt.Sprintf("op://a/b/full%d", i)
		r := e.opx("read", ref)
		switch {
		case r.code == 0 && refused == 0:
			served = append(served, ref)
		case r.code == 1 && r.stdout == "" && strings.Contains(r.stderr, "audit_unavailable"):
			refused++
		default:
			t.Fatalf("read %s with the audit log's disk full = %+v, want audit_unavailable", ref, r)
		}
	}
	if refused == 0 {
		t.Fatal("100 reads were served and recorded on a full disk")
	}
	if st := e.status(); !st.Audit.Enabled || st.Audit.Healthy || !strings.Contains(st.Audit.Error, "no space left") {
		t.Errorf("status audit with a full disk = %+v", st.Audit)
	}
	os.Remove(filler)
	if r := e.opx("read", "op://a/b/after"); r.code != 0 || r.stdout != fv("op://a/b/after")+"\n" {
		t.Errorf("read once there is room again = %+v", r)
	}
	if st := e.status(); !st.Audit.Healthy || st.Audit.Error != "" {
		t.Errorf("status audit after the disk was freed = %+v", st.Audit)
	}
	var refs []string
	for _, m := range e.auditLines() { // fails the test on a line that does not parse
		if m["event"] == "ACCESS_DECISION" {
			refs = append(refs, m["reference"].(string))
		}
	}
	served = append(served, "op://a/b/after")
	if strings.Join(refs, " ") != strings.Join(served, " ") {
		t.Errorf("decisions on record: %v; want exactly the two reads that were served", refs)
	}
}
