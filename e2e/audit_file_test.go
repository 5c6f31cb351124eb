//go:build unix

package e2e

// The audit file tried as an attacker running as the same user would
// (issue 21, item 5): today's audit-YYYY-MM-DD.log is replaced under a
// running daemon, and each test checks what the user would notice.

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opxhq/opx/e2e/harness"
)

// A same-user process replaces today's audit file with something a record
// written to would be lost in, or not be opx's own private file. Reads are
// refused (audit_unavailable) with the reason, status says the log is not
// healthy and why, lock and status still answer; once the bad entry is
// removed, a fresh file is created and reads are served and recorded again.
func TestAuditFileReplacedFailsClosed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		why  string // in the read's error and in status
		// replace puts the attacker's entry at path (the daemon's file was
		// removed first) and returns a file whose content must not change,
		// or "".
		replace func(t *testing.T, path string) string
	}{
		{"symlink to /dev/null", "is a symlink", func(t *testing.T, path string) string {
			must(t, os.Symlink("/dev/null", path))
			return ""
		}},
		{"FIFO", "is a named pipe", func(t *testing.T, path string) string {
			must(t, syscall.Mkfifo(path, 0o600))
			// Should anything open it to write, this unblocks it at the
			// end, so that an old daemon can be stopped.
			t.Cleanup(func() {
				if fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
					syscall.Close(fd)
				}
			})
			return ""
		}},
		{"FIFO with a reader", "is a named pipe", func(t *testing.T, path string) string {
			must(t, syscall.Mkfifo(path, 0o600))
			r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			must(t, err)
			t.Cleanup(func() { r.Close() })
			return ""
		}},
		{"file open to others", "has mode 0644", func(t *testing.T, path string) string {
			must(t, os.WriteFile(path, []byte("{}\n"), 0o644))
			must(t, os.Chmod(path, 0o644)) // whatever the umask
			return path
		}},
		{"hard link to another file", "has 2 hard links", func(t *testing.T, path string) string {
			other := filepath.Join(filepath.Dir(path), "other")
			must(t, os.WriteFile(other, []byte("mine\n"), 0o600))
			must(t, os.Link(other, path))
			return other
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.StartDaemon("", "--backend=fake", "--enable-audit-log")
			if r := e.OpxBounded("read", "op://a/b/before"); r.Code != 0 {
				t.Fatalf("read before the attack: %+v", r)
			}
			path := filepath.Join(e.DataDir, "audit-"+time.Now().Format(time.DateOnly)+".log")
			must(t, os.Remove(path))
			kept := tc.replace(t, path)
			var keptData []byte
			if kept != "" {
				keptData, _ = os.ReadFile(kept)
			}

			r := e.OpxBounded("read", "op://a/b/during")
			if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "audit_unavailable") ||
				!strings.Contains(r.Stderr, "audit log") || !strings.Contains(r.Stderr, tc.why) {
				t.Errorf("read with the audit file replaced = %+v; want audit_unavailable saying it %s", r, tc.why)
			}
			if st := e.StatusBounded(); !st.Audit.Enabled || st.Audit.Healthy || !strings.Contains(st.Audit.Error, tc.why) ||
				!strings.Contains(st.Audit.Error, filepath.Base(path)) || !strings.Contains(st.Audit.Error, "remove it") {
				t.Errorf("status audit with the file replaced = %+v; want unhealthy, saying it %s", st.Audit, tc.why)
			}
			// A lock goes ahead although it cannot be recorded.
			if r := e.OpxBounded("lock"); r.Code != 0 || !strings.Contains(r.Stdout, "locked") {
				t.Errorf("opx lock with the audit file replaced = %+v", r)
			}
			if st := e.StatusBounded(); st.Session.State != "locked" || st.Audit.Healthy {
				t.Errorf("status after the lock = session %+v, audit %+v", st.Session, st.Audit)
			}
			// An unlock is not served unrecorded.
			if r := e.OpxBounded("unlock"); r.Code == 0 || !strings.Contains(r.Stderr, "audit") {
				t.Errorf("opx unlock with the audit file replaced = %+v; want it refused", r)
			}
			if kept != "" {
				if b, _ := os.ReadFile(kept); !bytes.Equal(b, keptData) {
					t.Errorf("the attacker's file %s was written to:\n%s", filepath.Base(kept), b)
				}
			}

			// The user removes the bad entry: the next record makes a good file.
			must(t, os.Remove(path))
			if r := e.OpxBounded("unlock"); r.Code != 0 {
				t.Fatalf("opx unlock once the bad entry is removed = %+v", r)
			}
			if r := e.OpxBounded("read", "op://a/b/after"); r.Code != 0 || r.Stdout != fv("op://a/b/after")+"\n" {
				t.Errorf("read once the bad entry is removed = %+v", r)
			}
			if st := e.StatusBounded(); !st.Audit.Healthy || st.Audit.Error != "" {
				t.Errorf("status audit once the bad entry is removed = %+v", st.Audit)
			}
			if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Fatalf("audit file after recovery: %v, %v", fi, err)
			}
			var refs []string
			for _, m := range e.auditLines() {
				if m["event"] == "ACCESS_DECISION" && m["action"] == "read" {
					refs = append(refs, m["reference"].(string))
				}
			}
			if strings.Join(refs, " ") != "op://a/b/after" {
				t.Errorf("reads on record in the new file: %v; want the one after recovery", refs)
			}
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(fv("op://a/b/after"))) {
				t.Error("the audit log holds a secret value")
			}
		})
	}
}

// With a FIFO in place of the audit file and no read since, lock, status
// and stop answer, and the daemon stops: the README promises a lock even
// when the audit log cannot record it (on the old main each of them waited
// for good for a reader of the FIFO).
func TestAuditFileFIFODoesNotHangLockStatusOrStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon("", "--backend=fake", "--enable-audit-log")
	path := filepath.Join(e.DataDir, "audit-"+time.Now().Format(time.DateOnly)+".log")
	must(t, os.Remove(path))
	must(t, syscall.Mkfifo(path, 0o600))
	t.Cleanup(func() { // unblocks whatever waits to write to it
		if fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			syscall.Close(fd)
		}
	})

	if r := e.OpxBounded("lock"); r.Code != 0 || !strings.Contains(r.Stdout, "locked") {
		t.Errorf("opx lock with a FIFO for the audit file = %+v", r)
	}
	if st := e.StatusBounded(); st.Session.State != "locked" || st.Audit.Healthy || !strings.Contains(st.Audit.Error, "is a named pipe") {
		t.Errorf("status after the lock = session %+v, audit %+v; want locked, and the audit log unhealthy with why", st.Session, st.Audit)
	}
	if r := e.OpxBounded("stop"); r.Code != 0 || !strings.Contains(r.Stdout, "stopped") {
		t.Errorf("opx stop with a FIFO for the audit file = %+v", r)
	}
	for deadline := time.Now().Add(harness.AnswerWithin); syscall.Kill(d.Process.Pid, 0) == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon (pid %d) is still running %s after opx stop", d.Process.Pid, harness.AnswerWithin)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
