//go:build windows

package winpipe

import (
	"context"
	"net"
	"time"

	"golang.org/x/sys/windows"
)

// Dial connects to the pipe \\.\pipe\NAME and returns its conn, a *Conn.
// While every instance is taken (ERROR_PIPE_BUSY: the daemon is between two
// Accepts) it tries again, with a backoff, until ctx is done. When no such
// pipe exists (no daemon listens) the error matches fs.ErrNotExist.
//
// The client lets the server identify it, never impersonate it
// (SECURITY_IDENTIFICATION).
func Dial(ctx context.Context, name string) (net.Conn, error) {
	path, err := pipePath(name)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: err}
	}
	addr := Addr(path)
	path16, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "pipe", Addr: addr, Err: err}
	}
	var t *time.Timer
	wait := time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return nil, &net.OpError{Op: "dial", Net: "pipe", Addr: addr, Err: err}
		}
		h, err := windows.CreateFile(path16, windows.GENERIC_READ|windows.GENERIC_WRITE,
			0, nil, windows.OPEN_EXISTING, dialFlags, 0)
		if err == nil {
			return newConn(h, addr), nil
		}
		if err != windows.ERROR_PIPE_BUSY {
			// ERROR_FILE_NOT_FOUND, as a syscall.Errno, matches fs.ErrNotExist.
			return nil, &net.OpError{Op: "dial", Net: "pipe", Addr: addr, Err: err}
		}
		// A backoff rather than WaitNamedPipe, which would hold a thread
		// and could not see ctx (nor does x/sys/windows wrap it).
		if t == nil {
			t = time.NewTimer(wait)
			defer t.Stop()
		} else {
			t.Reset(wait)
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}
