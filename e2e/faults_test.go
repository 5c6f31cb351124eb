//go:build unix

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opxhq/opx/e2e/harness"
)

func TestSIGTERMDuringABatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A backend call long enough for the test to see the batch in flight.
	cmd := e.StartDaemon("", "--backend=fake", "--fake-delay=5s")
	args := []string{"read"}
	want := ""
	for i := range 10 {
		ref := fmt.Sprintf("op://v/batch%d/f", i)
		args = append(args, ref)
		want += fv(ref) + "\n"
	}
	read := e.StartInFlight(args...) // the batch is in the backend
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-read.Done; err != nil || read.Stdout.String() != want {
		t.Errorf("read in flight at SIGTERM: %v, stdout %q, stderr %q; want it to finish", err, read.Stdout.String(), read.Stderr.String())
	}
	for i := 0; i < 500 && harness.Alive(cmd.Process.Pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if harness.Alive(cmd.Process.Pid) {
		t.Fatal("daemon still running after SIGTERM")
	}
	if _, err := os.Stat(e.Sock); !os.IsNotExist(err) {
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
	t.Parallel()
	e := newEnv(t)
	mountTmpfs(t, e.DataDir, "ro,size=64k,mode=0700")
	r := e.Opx("daemon", "--backend=fake")
	if r.Code != 1 || !strings.Contains(r.Stderr, "opx: error:") || !strings.Contains(r.Stderr, "read-only file system") || !strings.Contains(r.Stderr, e.DataDir) {
		t.Errorf("daemon on a read-only data dir = %+v", r)
	}
}

func TestFullDiskIsAClearError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mountTmpfs(t, e.DataDir, "size=8k,mode=0700")
	os.WriteFile(filepath.Join(e.DataDir, "filler"), make([]byte, 64<<10), 0o600) // fills it
	r := e.OpxEnv([]string{"OP_AUTHD_BACKEND=fake"}, "read", "op://a/b/c")
	if r.Code != 1 || !strings.Contains(r.Stderr, "no space left on device") {
		t.Errorf("read with a full data dir = %+v", r)
	}
}

// With the audit log on a full file system, a read whose decision cannot be
// recorded is refused (audit_unavailable) and status says the log is not
// healthy; once there is room again, reads are served and recorded. A
// record torn by the full disk is cut off, so every line of the file parses.
func TestAuditOnAFullDiskFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mountTmpfs(t, e.DataDir, "size=256k,mode=0700")
	e.StartDaemon("", "--backend=fake", "--enable-audit-log")
	if r := e.Opx("read", "op://a/b/first"); r.Code != 0 {
		t.Fatalf("first read: %+v", r)
	}
	filler := filepath.Join(e.DataDir, "filler")
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
		r := e.Opx("read", ref)
		switch {
		case r.Code == 0 && refused == 0:
			served = append(served, ref)
		case r.Code == 1 && r.Stdout == "" && strings.Contains(r.Stderr, "audit_unavailable"):
			refused++
		default:
			t.Fatalf("read %s with the audit log's disk full = %+v, want audit_unavailable", ref, r)
		}
	}
	if refused == 0 {
		t.Fatal("100 reads were served and recorded on a full disk")
	}
	if st := e.Status(); !st.Audit.Enabled || st.Audit.Healthy || !strings.Contains(st.Audit.Error, "no space left") {
		t.Errorf("status audit with a full disk = %+v", st.Audit)
	}
	os.Remove(filler)
	if r := e.Opx("read", "op://a/b/after"); r.Code != 0 || r.Stdout != fv("op://a/b/after")+"\n" {
		t.Errorf("read once there is room again = %+v", r)
	}
	if st := e.Status(); !st.Audit.Healthy || st.Audit.Error != "" {
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
