package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Peer is the process at the other end of a connection, read from the raw
// Unix socket before the TLS layer, once, when the connection is accepted.
type Peer struct {
	PID, UID, GID int
	Path          string // its executable ("" when unreadable)
	// Requester is the program that asked: the peer, or, when the peer is
	// the opx client itself, the process that ran it.
	Requester ProcInfo
	// Err is why the credentials could not be read; such a peer is refused.
	Err error
}

// ProcInfo identifies a process.
type ProcInfo struct {
	PID  int
	Path string
}

type peerKey struct{}

// peerConn carries the peer of an accepted connection up to ConnContext.
type peerConn struct {
	net.Conn
	peer *Peer
}

// peerListener reads each connection's peer as it is accepted.
type peerListener struct {
	net.Listener
	self string // this executable, to recognise the opx client
}

func (l peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &peerConn{Conn: c, peer: identify(c, l.self)}, nil
}

// identify reads c's peer credentials and works out the requester. When the
// peer is the opx client, the requester is its parent: the program that ran
// `opx read`. Both are resolved now, while the client is still connected.
//
// A pid can be reused, so each process is checked to be the one meant: on
// Linux 6.5+ the peer is pinned by a pidfd taken at connect time and must
// still be running after /proc has been read; elsewhere a peer that started
// after the connection was accepted is refused. The parent is the one read
// when the client still has it as parent afterwards (a child whose parent
// exits is re-parented at once), or, without a pidfd, when it is older than
// the client.
func identify(c net.Conn, self string) *Peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return &Peer{Err: fmt.Errorf("not a Unix socket connection")}
	}
	accepted := nowTicks()
	p, pin, err := peerCred(uc)
	defer pin.release()
	if err != nil {
		if p == nil {
			p = &Peer{}
		}
		p.Err = err
		return p
	}
	exited := func() error { return fmt.Errorf("process %d exited before it could be identified", p.PID) }
	if !pin.alive() {
		p.Err = exited()
		return p
	}
	info, err := procInfo(p.PID)
	if err != nil {
		p.Err = fmt.Errorf("read process %d: %w", p.PID, err)
		return p
	}
	if !pin.alive() {
		p.Err = exited()
		return p
	}
	if !pin.exact() && info.start != 0 && accepted != 0 && info.start > accepted+1 {
		p.Err = fmt.Errorf("process %d started after it connected (pid reused)", p.PID)
		return p
	}
	p.Path = info.path
	p.Requester = ProcInfo{PID: p.PID, Path: info.path}
	if self == "" || info.path != self || info.ppid <= 1 {
		return p
	}
	parent, err := procInfo(info.ppid)
	if err != nil {
		return p
	}
	if pin.exact() {
		again, err := procInfo(p.PID)
		if err != nil || again.ppid != info.ppid || !pin.alive() {
			return p
		}
	} else if parent.start != 0 && parent.start > info.start {
		return p
	}
	p.Requester = ProcInfo{PID: info.ppid, Path: parent.path}
	return p
}

// procDetails is what procInfo reads about a process.
type procDetails struct {
	path  string
	ppid  int
	start uint64 // start time, in the OS's unit (see nowTicks); 0 if unknown
}

// connContext puts the connection's peer in each request's context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if pc, ok := c.(*peerConn); ok {
		return context.WithValue(ctx, peerKey{}, pc.peer)
	}
	return ctx
}

// peerFrom returns the request's peer, or nil.
func peerFrom(ctx context.Context) *Peer {
	p, _ := ctx.Value(peerKey{}).(*Peer)
	return p
}

// selfExecutable is this program's resolved path.
func selfExecutable() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		return r
	}
	return exe
}

// ProcessPath returns the executable of process pid, as the daemon sees it.
func ProcessPath(pid int) (string, error) {
	d, err := procInfo(pid)
	return d.path, err
}

// SignedCheck verifies code signatures where the system has them (macOS);
// it is nil elsewhere.
func SignedCheck() func(path string) bool { return signedCheck() }
