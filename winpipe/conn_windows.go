//go:build windows

package winpipe

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/windows"
)

// Conn is one end of a pipe connection: an *os.File on an overlapped handle,
// which the runtime's IOCP serves, so that reads and writes block no thread
// and deadlines work (Go 1.25 and later). It adds the net.Conn methods and
// errors: *net.OpError, net.ErrClosed once closed, and a timeout that is
// os.ErrDeadlineExceeded (net.Error's Timeout reports true).
type Conn struct {
	f    *os.File
	addr Addr
}

// newConn hands h to the runtime; from here the Conn owns it.
func newConn(h windows.Handle, addr Addr) *Conn {
	return &Conn{f: os.NewFile(uintptr(h), string(addr)), addr: addr}
}

func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.f.Read(b)
	return n, c.opError("read", err)
}

func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.f.Write(b)
	return n, c.opError("write", err)
}

// Close closes the handle, ending reads and writes in progress.
func (c *Conn) Close() error { return c.opError("close", c.f.Close()) }

// LocalAddr returns the pipe's path.
func (c *Conn) LocalAddr() net.Addr { return c.addr }

// RemoteAddr returns the pipe's path: a pipe client has no address of its own
// (its process is ClientPID's).
func (c *Conn) RemoteAddr() net.Addr { return c.addr }

func (c *Conn) SetDeadline(t time.Time) error {
	return c.opError("set deadline", c.f.SetDeadline(t))
}

func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.opError("set read deadline", c.f.SetReadDeadline(t))
}

func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.opError("set write deadline", c.f.SetWriteDeadline(t))
}

// SyscallConn gives the pipe handle to a function that runs while the Conn
// cannot close it (syscall.RawConn's Control): the way to call the system
// about this pipe, as ClientPID does.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.f.SyscallConn() }

// opError turns the *fs.PathError of an *os.File into the *net.OpError a
// net.Conn returns, its closed error into net.ErrClosed. io.EOF stays itself.
func (c *Conn) opError(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, os.ErrClosed) {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: "pipe", Addr: c.addr, Err: err}
}

// ClientPID returns the process id of the client at the other end of c, a
// conn that Listener.Accept returned or one that wraps it and gives it back
// with a NetConn method, as *tls.Conn does.
//
// The pid is the process that opened the pipe. It names that process only
// while it lives: a client may exit, leaving the pipe open in a child or a
// process it gave the handle to, and its pid go to a new process. So a caller
// that identifies the client must open the process at once
// (OpenProcess with PROCESS_QUERY_LIMITED_INFORMATION), hold that handle,
// which keeps the pid from being reused, while it reads the token's SID and
// the image path, and refuse a process created after the conn was accepted
// (GetProcessTimes): that one is a newcomer under a dead client's pid.
func ClientPID(c net.Conn) (uint32, error) {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	pc, ok := c.(*Conn)
	if !ok {
		return 0, fmt.Errorf("client pid: %T is not a pipe conn", c)
	}
	rc, err := pc.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("client pid: %w", err)
	}
	var pid uint32
	var perr error
	if err := rc.Control(func(fd uintptr) {
		perr = windows.GetNamedPipeClientProcessId(windows.Handle(fd), &pid)
	}); err != nil {
		return 0, fmt.Errorf("client pid: %w", err)
	}
	if perr != nil {
		return 0, fmt.Errorf("client pid: %w", perr)
	}
	return pid, nil
}
