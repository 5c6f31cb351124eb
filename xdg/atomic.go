package xdg

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFileAtomic writes data to path with perm via a temp file in the same
// directory, fsync, rename, then fsyncs the directory (on Windows the
// rename is written through instead). perm is set exactly,
// whatever the umask; on Windows a perm with no group or other bits makes
// the file owner-only from its creation (a protected DACL granting only the
// current user), and any other perm leaves it the directory's inherited
// ACL. On any error the temp file is removed and the original file is
// untouched.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := createTemp(dir, "."+filepath.Base(path)+".tmp-*", perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	if err := writeSync(f, data, perm); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := replace(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeSync sets f's mode to perm (setMode), writes data and flushes it to
// stable storage.
func writeSync(f *os.File, data []byte, perm os.FileMode) error {
	if err := setMode(f, perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

// OpenPrivate opens path for a file only the current user may use. flag is
// os.O_RDONLY, os.O_WRONLY or os.O_RDWR, with os.O_APPEND, and with
// os.O_CREATE|os.O_EXCL to create a new file (O_CREATE alone and O_TRUNC
// are refused). It never follows a symlink at path (on Windows, any reparse
// point: the link itself is opened) and never waits on a FIFO. A file it
// creates is private from its creation: mode 0600 on Unix whatever the
// umask, and on Windows a protected DACL granting only the current user.
// On Windows others may delete or rename the file while it is open, as on
// Unix. The caller checks what it opened (a directory opens too, read-only).
func OpenPrivate(path string, flag int) (*os.File, error) {
	const known = os.O_RDONLY | os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREATE | os.O_EXCL
	if flag&^known != 0 || flag&os.O_CREATE != 0 && flag&os.O_EXCL == 0 {
		return nil, &fs.PathError{Op: "open", Path: path, Err: errors.New("OpenPrivate takes only O_RDONLY, O_WRONLY, O_RDWR, O_APPEND and O_CREATE with O_EXCL")}
	}
	return openPrivate(path, flag)
}

// ReadPrivateFile reads a file the daemon owns (the token, the TLS key),
// refusing one that is not a regular file (a symlink included, or on
// Windows any reparse point), is owned by another user, or that others may
// read or write. The error says how to fix it. A missing file gives an
// error matching fs.ErrNotExist.
func ReadPrivateFile(path string) ([]byte, error) {
	f, err := OpenPrivate(path, os.O_RDONLY)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("private file %s is a symlink; remove it and restart the daemon to write a new one: %w", path, err)
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("private file %s is %s, not a regular file; remove it and restart the daemon to write a new one", path, FileKind(fi.Mode()))
	}
	if err := checkPrivate(kindFile, path, fi, f); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// CheckPrivateFile reports an error unless the open file f is owned by the
// current user and open to no one else, as ReadPrivateFile checks it: on
// Unix by its owner uid and mode, on Windows by its owner SID and DACL. A
// *NotPrivateError says what is wrong and how to fix it.
func CheckPrivateFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return checkPrivate(kindFile, f.Name(), fi, f)
}

// WriteFileNew is WriteFileAtomic for a path that must not exist: the
// finished temporary file is put into place by an operation that fails with
// an error matching fs.ErrExist when something took the name meanwhile, and
// never replaces it (a hard link on Unix, a rename without replace on
// Windows).
func WriteFileNew(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := createTemp(dir, "."+filepath.Base(path)+".tmp-*", perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := writeSync(f, data, perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := linkNew(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
