//go:build unix

package audit

import (
	"os"
	"syscall"
	"testing"
)

// removeOpen removes path, a file the log holds open.
func removeOpen(t *testing.T, path string) {
	t.Helper()
	mustDo(t, os.Remove(path))
}

// unlinksOpenFiles says whether removing a name of a file held open frees
// it at once; whyNoUnlink says why not.
const (
	unlinksOpenFiles = true
	whyNoUnlink      = ""
)

// wantPrivate fails the test unless path is a regular file of mode 0600.
func wantPrivate(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want a regular 0600 file", path, fi, err)
	}
}

// openToOthers lets others read path; makePrivate undoes it. openWhy is
// what the log says of such a file.
func openToOthers(t *testing.T, path string) { mustDo(t, os.Chmod(path, 0o644)) }
func makePrivate(t *testing.T, path string)  { mustDo(t, os.Chmod(path, 0o600)) }

const openWhy = "has mode 0644; opx writes only a regular 0600 file of its own: chmod 600 it or remove it"

// putUnfit puts at path an entry the log must not write to, a symlink to
// /dev/null, and returns what the log says of it.
func putUnfit(t *testing.T, path string) string {
	t.Helper()
	mustDo(t, os.Symlink("/dev/null", path))
	return "is a symlink"
}

// unfitCases are the entries of TestUnfitFileFailsClosedUntilRemoved that
// only Unix makes: symlinks, FIFOs, another uid.
var unfitCases = []unfitCase{
	{"symlink to /dev/null", "is a symlink", func(t *testing.T, path string) string {
		mustDo(t, os.Symlink("/dev/null", path))
		return ""
	}},
	{"symlink to a file of ours", "is a symlink", func(t *testing.T, path string) string {
		other := path + ".elsewhere"
		mustDo(t, os.WriteFile(other, nil, 0o600))
		mustDo(t, os.Symlink(other, path))
		return other
	}},
	{"FIFO", "is a named pipe (FIFO)", func(t *testing.T, path string) string {
		mustDo(t, syscall.Mkfifo(path, 0o600))
		return ""
	}},
	{"FIFO with a reader", "is a named pipe (FIFO)", func(t *testing.T, path string) string {
		mustDo(t, syscall.Mkfifo(path, 0o600))
		r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		mustDo(t, err)
		t.Cleanup(func() { r.Close() })
		return ""
	}},
	{"file of another user", "is owned by uid 65534", func(t *testing.T, path string) string {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a file to another user")
		}
		mustDo(t, os.WriteFile(path, nil, 0o600))
		mustDo(t, os.Chown(path, 65534, 65534))
		return path
	}},
}
