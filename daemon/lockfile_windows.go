package daemon

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/windows"
)

// ErrAlreadyRunning is returned when another daemon holds the socket's lock.
var ErrAlreadyRunning = errors.New("another opx daemon is already serving this socket")

// lockFile is an exclusive lock (LockFileEx) on a file next to the pipe's
// name file. Windows drops it when the handle closes or the process dies, so
// a crashed daemon never blocks the next one.
type lockFile struct{ f *os.File }

// lockOffset is where the lock's one byte lies: far past the pid the file
// holds. Windows locks are mandatory, so a lock over the pid would keep
// the next daemon from reading whose lock it meets.
const lockOffset = 1 << 62

// acquireLock takes the lock at path without waiting. When another daemon
// holds it the error wraps ErrAlreadyRunning and names that daemon's pid.
func acquireLock(path string) (*lockFile, error) {
	h, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	if err := checkLockFile(h, path); err != nil {
		windows.CloseHandle(h)
		return nil, err
	}
	if err := lockRange(h); err != nil {
		defer windows.CloseHandle(h)
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			if pid, ok := lockHolder(h); ok {
				return nil, fmt.Errorf("%w (pid %d)", ErrAlreadyRunning, pid)
			}
			return nil, ErrAlreadyRunning
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// f owns the handle from here (its finalizer would close it, and drop
	// the lock, were f not kept in the lockFile).
	f := os.NewFile(uintptr(h), path)
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &lockFile{f: f}, nil
}

// openLockFile opens or creates the lock file, never through a reparse
// point (a planted link would have the pid written into its target),
// shared so that the next daemon can open it to find it locked.
func openLockFile(path string) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, fmt.Errorf("open lock file: %w", err)
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_ALWAYS, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return 0, fmt.Errorf("open lock file %s: %w", path, err)
	}
	return h, nil
}

// lockRange locks the lock's byte, exclusively, without waiting.
func lockRange(h windows.Handle) error {
	ol := windows.Overlapped{Offset: uint32(lockOffset & 0xFFFFFFFF), OffsetHigh: uint32(lockOffset >> 32)}
	return windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
}

// lockHolder reads the pid the daemon holding the lock wrote.
func lockHolder(h windows.Handle) (int, bool) {
	b := make([]byte, 32)
	var n uint32
	ol := windows.Overlapped{}
	if err := windows.ReadFile(h, b, &n, &ol); err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	return pid, err == nil
}

// release drops the lock.
func (l *lockFile) release() {
	ol := windows.Overlapped{Offset: uint32(lockOffset & 0xFFFFFFFF), OffsetHigh: uint32(lockOffset >> 32)}
	_ = windows.UnlockFileEx(windows.Handle(l.f.Fd()), 0, 1, 0, &ol)
	_ = l.f.Close()
}

// checkLockFile refuses a lock file that is not a regular file of this user
// (a directory, a link or junction, a file another user made).
func checkLockFile(h windows.Handle, path string) error {
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return fmt.Errorf("check lock file %s: %w", path, err)
	}
	if info.FileAttributes&(windows.FILE_ATTRIBUTE_REPARSE_POINT|windows.FILE_ATTRIBUTE_DIRECTORY) != 0 {
		return fmt.Errorf("lock file %s is not a regular file (a link, junction or directory); remove it (opx makes its own)", path)
	}
	sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("check lock file %s: %w", path, err)
	}
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return fmt.Errorf("check lock file %s: cannot read its owner", path)
	}
	me, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return fmt.Errorf("check lock file %s: %w", path, err)
	}
	if !owner.Equals(me.User.Sid) {
		return fmt.Errorf("lock file %s is owned by %s, not by you; remove it", path, owner)
	}
	return nil
}
