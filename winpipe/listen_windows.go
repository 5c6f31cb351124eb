//go:build windows

package winpipe

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Listener serves a named pipe: a net.Listener whose Accept returns *Conn.
//
// A pipe instance serves one client, so the Listener keeps one instance
// waiting at all times: Accept waits for a client on it and creates the next
// before it returns the connected one. A client that dials in between finds
// ERROR_PIPE_BUSY for that moment, and Dial waits it out. And as a pipe lives
// while any instance of it does, the name never lapses while the Listener is
// open: no other process can create it and have opx's clients come to it.
type Listener struct {
	addr   Addr
	path16 *uint16
	sa     windows.SecurityAttributes // the owner-only DACL, for each instance
	event  windows.Handle             // ov's event, manual reset

	// acceptMu holds one Accept at a time, as they share next, ov and
	// event, and holds Close back from closing them under an Accept.
	acceptMu sync.Mutex

	// mu orders Close against the start of a connect: a connect starts, or
	// Close marks the Listener closed, under mu, so that either Close's
	// CancelIoEx finds the connect pending or the connect never starts.
	mu     sync.Mutex
	closed bool
	next   windows.Handle // the waiting instance, always one until Close
	ov     windows.Overlapped
}

// Listen creates the pipe \\.\pipe\NAME, owned by and open to the current
// user alone, and returns a Listener on it. It fails, with ErrPipeTaken, if
// another process created that name first.
func Listen(name string) (*Listener, error) {
	path, err := pipePath(name)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "pipe", Err: err}
	}
	addr := Addr(path)
	path16, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "pipe", Addr: addr, Err: err}
	}
	sd, err := ownerOnly()
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "pipe", Addr: addr, Err: err}
	}
	l := &Listener{addr: addr, path16: path16}
	l.sa = windows.SecurityAttributes{
		Length:             uint32(unsafe.Sizeof(l.sa)),
		SecurityDescriptor: sd,
	}
	if l.event, err = windows.CreateEvent(nil, 1, 0, nil); err != nil {
		return nil, &net.OpError{Op: "listen", Net: "pipe", Addr: addr, Err: err}
	}
	if l.next, err = l.create(true); err != nil {
		windows.CloseHandle(l.event)
		// FILE_FLAG_FIRST_PIPE_INSTANCE fails with ERROR_ACCESS_DENIED when
		// the name exists; a squatter's pipe with its one instance taken may
		// answer ERROR_PIPE_BUSY first.
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_PIPE_BUSY) {
			err = fmt.Errorf("%w (%v)", ErrPipeTaken, err)
		}
		return nil, &net.OpError{Op: "listen", Net: "pipe", Addr: addr, Err: err}
	}
	return l, nil
}

// create makes an instance of the pipe; first asks that it be the first.
func (l *Listener) create(first bool) (windows.Handle, error) {
	return windows.CreateNamedPipe(l.path16, openMode(first), pipeMode,
		windows.PIPE_UNLIMITED_INSTANCES, bufSize, bufSize, 0, &l.sa)
}

// Accept waits for a client and returns its conn, a *Conn. Once the Listener
// is closed it returns net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	l.acceptMu.Lock()
	defer l.acceptMu.Unlock()
	if err := l.connect(); err != nil {
		return nil, &net.OpError{Op: "accept", Net: "pipe", Addr: l.addr, Err: err}
	}
	// The next instance before this one goes: clients always find one
	// waiting, and the name never lapses for another process to create. If
	// none can be made, this client is let go and its instance waits again.
	next, err := l.create(false)
	if err != nil {
		windows.DisconnectNamedPipe(l.next)
		return nil, &net.OpError{Op: "accept", Net: "pipe", Addr: l.addr, Err: err}
	}
	l.mu.Lock()
	h, closed := l.next, l.closed
	l.next = next
	l.mu.Unlock()
	if closed { // Close came as the client connected: it is let go
		windows.CloseHandle(h)
		return nil, &net.OpError{Op: "accept", Net: "pipe", Addr: l.addr, Err: net.ErrClosed}
	}
	return newConn(h, l.addr), nil
}

// connect waits for a client to connect to the waiting instance, l.next. It
// returns net.ErrClosed once Close is called.
func (l *Listener) connect() error {
	// l.next is read without mu: only Accept, which the caller is, changes it.
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return net.ErrClosed
		}
		l.ov = windows.Overlapped{HEvent: l.event}
		err := windows.ConnectNamedPipe(l.next, &l.ov)
		l.mu.Unlock()
		if err == windows.ERROR_IO_PENDING {
			var n uint32
			err = windows.GetOverlappedResult(l.next, &l.ov, &n, true)
		}
		if err == nil || err == windows.ERROR_PIPE_CONNECTED { // the latter: before the connect began
			return nil
		}
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		if closed { // Close's CancelIoEx: ERROR_OPERATION_ABORTED
			return net.ErrClosed
		}
		// ERROR_NO_DATA: a client came and went. Free the instance for the
		// next; any other failure is reported, and the next Accept tries again.
		derr := windows.DisconnectNamedPipe(l.next)
		if err == windows.ERROR_NO_DATA && derr == nil {
			continue
		}
		return err
	}
}

// Close stops the Listener: a pending Accept returns net.ErrClosed, and the
// waiting instance goes, so that a later Dial finds no pipe (if no conn is
// still open: the pipe lives while any instance does). Open conns are theirs
// to close.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: "pipe", Addr: l.addr, Err: net.ErrClosed}
	}
	l.closed = true
	windows.CancelIoEx(l.next, nil) // ERROR_NOT_FOUND when no connect is pending
	l.mu.Unlock()

	l.acceptMu.Lock() // an Accept in flight returns, now, before its handles close
	defer l.acceptMu.Unlock()
	windows.CloseHandle(l.next)
	windows.CloseHandle(l.event)
	return nil
}

// Addr returns the pipe's path.
func (l *Listener) Addr() net.Addr { return l.addr }
