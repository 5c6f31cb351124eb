//go:build unix

package daemon

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrAlreadyRunning is returned when another daemon holds the socket's lock.
var ErrAlreadyRunning = errors.New("another opx daemon is already serving this socket")

// lockFile is an exclusive, advisory lock on a file next to the socket. The
// kernel drops it when the process dies, so a crashed daemon never blocks
// the next one.
type lockFile struct{ f *os.File }

// acquireLock takes the lock at path without waiting. When another daemon
// holds it the error wraps ErrAlreadyRunning and names that daemon's pid.
func acquireLock(path string) (*lockFile, error) {
	// Never through a link (a planted one would have the pid written into
	// its target), and without blocking on a FIFO.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("lock file %s is a symbolic link; remove it (opx makes its own)", path)
		}
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := checkLockFile(f, path); err != nil {
		f.Close()
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b[:n]))); perr == nil {
				return nil, fmt.Errorf("%w (pid %d)", ErrAlreadyRunning, pid)
			}
			return nil, ErrAlreadyRunning
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &lockFile{f: f}, nil
}

// release drops the lock.
func (l *lockFile) release() {
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	_ = l.f.Close()
}

// checkLockFile refuses a lock file that is not a regular file of this user.
func checkLockFile(f *os.File, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("check lock file %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("lock file %s is not a regular file; remove it (opx makes its own)", path)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("lock file %s is owned by uid %d, not by you; remove it", path, st.Uid)
	}
	return nil
}
