package cli

import (
	"golang.org/x/sys/windows"
)

// daemonLockOffset is the byte the daemon locks in its lock file, far past
// the pid it writes there (daemon/lockfile_windows.go: Windows locks are
// mandatory, so a lock over the pid would hide it).
const daemonLockOffset = 1 << 62

// lockFree reports whether no daemon holds the socket's lock file: it takes
// the lock (LockFileEx, as the daemon does) for a moment and lets go at
// once. The file is opened without following a reparse point.
func lockFree(path string) bool {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return false
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err == windows.ERROR_FILE_NOT_FOUND || err == windows.ERROR_PATH_NOT_FOUND {
		return true
	}
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	ol := windows.Overlapped{Offset: uint32(daemonLockOffset & 0xFFFFFFFF), OffsetHigh: uint32(daemonLockOffset >> 32)}
	if err := windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol); err != nil {
		return false
	}
	windows.UnlockFileEx(h, 0, 1, 0, &ol)
	return true
}

// processGone reports whether no process has pid (or it has exited and
// only a handle keeps its record).
func processGone(pid int) bool {
	h, err := windows.OpenProcess(windows.SYNCHRONIZE, false, uint32(pid))
	if err != nil {
		return err == windows.ERROR_INVALID_PARAMETER // no such process
	}
	defer windows.CloseHandle(h)
	ev, err := windows.WaitForSingleObject(h, 0)
	return err == nil && ev == windows.WAIT_OBJECT_0
}
