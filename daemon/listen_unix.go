//go:build unix

package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/opxhq/opx/xdg"
)

// stopSignals end the daemon cleanly.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// ignoreSignals ignores the hangup of the terminal that started the
// daemon, and writes to a connection its client has closed.
func ignoreSignals() { signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE) }

// homeDir is the home directory ~/ rules are under: $HOME.
func homeDir() string { return os.Getenv("HOME") }

// maxSocketPath is the longest path a Unix socket address holds (macOS has
// 104 bytes, Linux 108, both counting the NUL).
const maxSocketPath = 103

// checkSocketPath refuses a socket path longer than a socket address holds.
func checkSocketPath(path string) error {
	if len(path) > maxSocketPath {
		return fmt.Errorf("socket path %s is %d bytes; the limit is %d: set OPX_SOCKET_PATH or --sock to a shorter path", path, len(path), maxSocketPath)
	}
	return nil
}

// listen removes a stale socket at path (the caller holds the lock: a
// socket there is a dead daemon's) and listens there.
func listen(path string) (net.Listener, error) {
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	return listenUnix(path)
}

// removeStaleSocket removes a socket left at path by a daemon that died.
// Anything else there (a user's file, a FIFO, a directory, a link) is never
// removed: it is an error naming the path.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check the socket path %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("socket path %s is not a socket (%s); opx removes only a stale socket there: move it away or choose another --sock", path, xdg.FileKind(fi.Mode()))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// removeOwnSocket removes the socket at path at shutdown if it is still the
// one ln made (not something another process put there since).
func removeOwnSocket(path string, ln net.Listener) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return
	}
	if mine, ok := ln.(interface{ sameFile(os.FileInfo) bool }); ok && !mine.sameFile(fi) {
		return
	}
	os.Remove(path)
}

// listenUnix listens on path with a socket file only the owner can use.
func listenUnix(path string) (net.Listener, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("check socket: %w", err)
	}
	return &ownedListener{ln, fi}, nil
}

// ownedListener remembers which file its socket is, so that shutdown removes
// only that one.
type ownedListener struct {
	net.Listener
	fi os.FileInfo
}

func (l *ownedListener) sameFile(fi os.FileInfo) bool { return os.SameFile(l.fi, fi) }
