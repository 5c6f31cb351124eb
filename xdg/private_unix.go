//go:build unix

package xdg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// mkdirPrivate makes dir with mode 0700, less the umask (settleDir puts
// back what the umask took).
func mkdirPrivate(dir string) error {
	return os.Mkdir(dir, 0o700)
}

// settleDir sets dir, just made by mkdirPrivate, to exactly 0700: Mkdir's
// mode is masked by the umask.
func settleDir(dir string) error {
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// checkPrivate reports a *NotPrivateError unless fi, the file or directory
// at path, is owned by the current effective uid and has no group or other
// permission bits. f, the file open, is not needed: fi holds both.
func checkPrivate(kind, path string, fi fs.FileInfo, _ *os.File) error {
	if err := checkOwner(kind, path, fi); err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		mode := "600"
		if kind == kindDir {
			mode = "700"
		}
		return &NotPrivateError{Kind: kind, Path: path,
			Fault: fmt.Sprintf("is open to other users (mode %04o)", perm),
			Fix:   "run: chmod " + mode + " " + path}
	}
	return nil
}

// checkOwner reports an error unless fi (of path, described by kind) is
// owned by the current effective uid.
func checkOwner(kind, path string, fi fs.FileInfo) error {
	uid, ok := ownerUID(fi)
	if !ok {
		return fmt.Errorf("%s %s: cannot read its owner", kind, path)
	}
	if me := os.Geteuid(); uid != me {
		return &NotPrivateError{Kind: kind, Path: path,
			Fault: fmt.Sprintf("is owned by uid %d, not by you (uid %d)", uid, me),
			Fix:   "remove it or run as its owner"}
	}
	return nil
}

// ownerUID returns the uid owning the file fi describes.
func ownerUID(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// openPrivate is OpenPrivate: O_NOFOLLOW refuses a final symlink (ELOOP)
// and O_NONBLOCK keeps a FIFO from blocking the open; a file created is
// made exactly 0600, whatever the umask.
func openPrivate(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if flag&os.O_CREATE != 0 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// createTemp creates a new temporary file in dir for WriteFileAtomic and
// WriteFileNew; setMode gives it its mode.
func createTemp(dir, pattern string, _ os.FileMode) (*os.File, error) {
	return os.CreateTemp(dir, pattern)
}

// setMode sets f's mode to perm (fchmod ignores the umask).
func setMode(f *os.File, perm os.FileMode) error {
	return f.Chmod(perm.Perm())
}

// replace renames the finished temporary file tmp over path.
func replace(tmp, path string) error {
	return os.Rename(tmp, path)
}

// linkNew puts the finished temporary file tmp in place at path, failing
// with an error matching fs.ErrExist when path exists: a hard link never
// replaces anything.
func linkNew(tmp, path string) error {
	return os.Link(tmp, path)
}

// syncDir flushes dir so a rename inside it survives a crash. File systems
// that cannot sync a directory are tolerated.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
