package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/opxhq/opx/policy"
)

// Peer is the process at the other end of a connection, read from the raw
// Unix socket before the TLS layer, once, right after the connection is
// accepted (in a goroutine of its own: no connection waits on another's).
type Peer struct {
	PID, UID, GID int
	Path          string // its executable ("" when unreadable)
	ExeSHA256     string // of its executable's content, when a rule needs it
	// Requester is the program that asked: the peer, or, when the peer is
	// the opx client itself, the process that ran it.
	Requester ProcInfo
	// Err is why the peer could not be identified; such a peer is refused.
	Err error
}

// ProcInfo identifies a process.
type ProcInfo struct {
	PID       int
	Path      string
	ExeSHA256 string // "" unless a rule needs it
	// ViaClient is true when this is the parent of the opx client, not the
	// peer itself.
	ViaClient bool
}

type peerKey struct{}

// peerConn carries the peer of an accepted connection up to the handlers;
// peer is set before done is closed.
type peerConn struct {
	net.Conn
	done chan struct{}
	peer *Peer
}

// identifyTimeout bounds the wait for a peer's identification (reading
// /proc and, for exe_sha256 rules, hashing an executable).
const identifyTimeout = 10 * time.Second

// wait returns the peer once it is identified, or a refused peer when that
// takes longer than identifyTimeout or ctx ends.
func (c *peerConn) wait(ctx context.Context) *Peer {
	t := time.NewTimer(identifyTimeout)
	defer t.Stop()
	select {
	case <-c.done:
		return c.peer
	case <-t.C:
		return &Peer{Err: fmt.Errorf("the peer's identification did not finish within %s", identifyTimeout)}
	case <-ctx.Done():
		return &Peer{Err: fmt.Errorf("the request ended before the peer was identified")}
	}
}

// peerListener identifies each connection as it is accepted.
type peerListener struct {
	net.Listener
	self     string      // this executable, to recognise the opx client
	hashes   *exeHashes  // content hashes of executables, for exe_sha256 rules
	wantHash func() bool // whether the policy in force has exe_sha256 rules
	// started, if set, is called as each identification begins (tests).
	started func(net.Conn)
	// accepted, if set, is called for each connection, in its goroutine.
	accepted func()
}

// Accept returns the next connection at once and identifies its peer in a
// goroutine of its own, so that a thousand idle connections do not delay
// another client's identification, and no connection's identification can
// be pushed past the moment its process runs another program.
func (l peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc := &peerConn{Conn: c, done: make(chan struct{})}
	accepted := policy.Now() // before any wait: it bounds a pid reuse
	go func() {
		if l.accepted != nil {
			l.accepted()
		}
		if l.started != nil {
			l.started(c)
		}
		pc.peer = l.identify(c, accepted)
		close(pc.done)
	}()
	return pc, nil
}

// identify reads c's peer credentials and works out the requester. When the
// peer is the opx client, the requester is its parent: the program that ran
// `opx read`.
//
// What is read must describe the process that holds the connection: the
// peer is checked, after its executable has been read, to still have the
// client's end of the socket among its open files (Linux: the end is found
// with sock_diag). A process that connected and then ran another program
// (close-on-exec drops the socket) or handed the connection to another
// process is refused. A peer in another mount or user namespace, or with
// another root, is refused: its paths are not the daemon's.
//
// A pid can be reused, so each process is checked to be the one meant: on
// Linux 6.5+ the peer is pinned by a pidfd taken at connect time and must
// still be running after /proc has been read; elsewhere a peer that started
// after the connection was accepted is refused. The parent is the one read
// when the client still has it as parent afterwards (a child whose parent
// exits is re-parented at once), or, without a pidfd, when it is older than
// the client.
func (l peerListener) identify(c net.Conn, accepted uint64) *Peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return &Peer{Err: fmt.Errorf("not a Unix socket connection")}
	}
	p, pin, err := peerCred(uc)
	defer pin.release()
	if err != nil {
		if p == nil {
			p = &Peer{}
		}
		p.Err = err
		return p
	}
	fail := func(err error) *Peer {
		p.Err = err
		return p
	}
	exited := func() error { return fmt.Errorf("process %d exited before it could be identified", p.PID) }
	clientEnd, err := peerSocketInode(uc)
	if err != nil {
		return fail(fmt.Errorf("find the client's end of the connection (Linux needs sock_diag for Unix sockets, CONFIG_UNIX_DIAG): %w", err))
	}
	if !pin.alive() {
		return fail(exited())
	}
	info, err := policy.ReadProcess(p.PID)
	if err != nil {
		return fail(fmt.Errorf("read process %d: %w", p.PID, err))
	}
	if !pin.exact() && info.Start != 0 && accepted != 0 && info.Start > accepted+1 {
		return fail(fmt.Errorf("process %d started after it connected (pid reused)", p.PID))
	}
	if err := sameNamespaces(p.PID); err != nil {
		return fail(err)
	}
	// A content hash that cannot be computed (an execute-only binary)
	// only means that no exe_sha256 rule can match.
	hash := func(pid int) string {
		if l.hashes == nil || l.wantHash == nil || !l.wantHash() {
			return ""
		}
		sum, _ := l.hashes.of(pid)
		return sum
	}
	sum := hash(p.PID)
	// Last: everything read above belongs to the program holding the
	// connection now (an exec since would have closed it).
	if err := holdsSocket(p.PID, clientEnd); err != nil {
		return fail(err)
	}
	if !pin.alive() {
		return fail(exited())
	}
	p.Path, p.ExeSHA256 = info.Path, sum
	p.Requester = ProcInfo{PID: p.PID, Path: info.Path, ExeSHA256: sum}
	if l.self == "" || info.Path != l.self {
		return p
	}
	// The peer is the opx client: the requester is the program that ran
	// it. When that cannot be established, the request is refused: judged
	// as opx itself, it would pass any rule naming opx, which every
	// program can run.
	noParent := func(why string) *Peer {
		return fail(fmt.Errorf("the program that ran the opx client (pid %d) cannot be identified: %s", p.PID, why))
	}
	if info.PPID <= 0 {
		return noParent("it has no parent in the daemon's pid namespace")
	}
	parent, err := policy.ReadProcess(info.PPID)
	if err != nil {
		return noParent(fmt.Sprintf("read process %d: %v", info.PPID, err))
	}
	if err := sameNamespaces(info.PPID); err != nil {
		return noParent(err.Error())
	}
	psum := hash(info.PPID)
	if pin.exact() {
		again, err := policy.ReadProcess(p.PID)
		if err != nil || again.PPID != info.PPID || !pin.alive() {
			return noParent(fmt.Sprintf("its parent %d exited while it was identified", info.PPID))
		}
	} else if parent.Start != 0 && parent.Start > info.Start {
		return noParent(fmt.Sprintf("process %d is younger than the client (pid reused)", info.PPID))
	}
	p.Requester = ProcInfo{PID: info.PPID, Path: parent.Path, ExeSHA256: psum, ViaClient: true}
	return p
}

// connContext puts the connection in each request's context, for
// peerFrom. It runs in the accept loop, so it must not wait.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if pc, ok := c.(*peerConn); ok {
		return context.WithValue(ctx, peerKey{}, pc)
	}
	return ctx
}

// peerFrom returns the request's peer once it is identified, or nil.
func peerFrom(ctx context.Context) *Peer {
	switch v := ctx.Value(peerKey{}).(type) {
	case *peerConn:
		return v.wait(ctx)
	case *Peer:
		return v
	}
	return nil
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
