package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opxhq/opx/policy"
)

// Peer is the process at the other end of a connection, read from the raw
// Unix socket (on Windows, the named pipe) before the TLS layer, once,
// right after the connection is accepted (in a goroutine of its own: no
// connection waits on another's).
type Peer struct {
	PID, UID, GID int // UID and GID are -1 on Windows, as os.Getuid is there
	// SID is, on Windows, the user SID of the peer's token; "" elsewhere.
	SID       string
	Path      string // its executable ("" when unreadable)
	ExeSHA256 string // of its executable's content, when a rule needs it
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

// peerConn carries the peer of an accepted connection up to the handlers:
// id is set before done is closed; the first request then confirms it
// (confirmed).
type peerConn struct {
	net.Conn
	l     *peerListener
	proc  *procConns // the connecting process's entry in l.conns
	done  chan struct{}
	id    ident
	once  sync.Once
	final *Peer // id confirmed by the first request
	close sync.Once
}

// ident is what identify found of a connection's process.
type ident struct {
	peer *Peer
	// clientEnd is the inode of the client's end of the connection, which
	// the peer must still hold when its first request comes (0 where the
	// system cannot tell: macOS).
	clientEnd uint32
	// start is the peer's start time, to know it is the same process then.
	start uint64
}

// identifyTimeout bounds the wait for a peer's identification (reading
// /proc and, for exe_sha256 rules, hashing an executable).
const identifyTimeout = 10 * time.Second

// wait returns the peer once it is identified (not yet confirmed), or a
// refused peer when that takes longer than identifyTimeout or ctx ends.
func (c *peerConn) wait(ctx context.Context) *Peer {
	p, _ := c.identified(ctx)
	return p
}

// identified is wait, and whether the identification finished (only then
// may c.id be read: the goroutine that identifies writes it until done).
func (c *peerConn) identified(ctx context.Context) (*Peer, bool) {
	t := time.NewTimer(identifyTimeout)
	defer t.Stop()
	select {
	case <-c.done:
		return c.id.peer, true
	case <-t.C:
		return &Peer{Err: fmt.Errorf("the peer's identification did not finish within %s (the daemon is overloaded: %d connections open)", identifyTimeout, c.l.conns.openNow())}, false
	case <-ctx.Done():
		return &Peer{Err: fmt.Errorf("the request ended before the peer was identified")}, false
	}
}

// confirmed returns the peer once its identification is confirmed: it
// still holds the connection, as the process identified. fd is the client's
// own number for the connection (api.ConnFDHeader), or -1. Only the first
// request of a connection confirms it; later ones get the same answer.
func (c *peerConn) confirmed(ctx context.Context, fd int) *Peer {
	p, ok := c.identified(ctx)
	c.once.Do(func() {
		if !ok {
			c.final = p // not identified in time: refused for good
			return
		}
		c.final = c.l.confirm(c.id, fd)
	})
	return c.final
}

// Close closes the connection and gives its place back to its process.
func (c *peerConn) Close() error {
	err := c.Conn.Close()
	c.close.Do(func() { c.l.conns.release(c.proc) })
	return err
}

// peerListener identifies each connection as it is accepted, and refuses
// the connections of a process that holds too many already.
type peerListener struct {
	net.Listener
	self     string      // this executable, to recognise the opx client
	hashes   *exeHashes  // content hashes of executables, for exe_sha256 rules
	wantHash func() bool // whether the policy in force has exe_sha256 rules
	conns    *connTable  // connections by process
	holds    *fdScans    // finds a connection among a process's open files
	// started, if set, is called as each identification begins (tests).
	started func(net.Conn)
	// accepted, if set, is called for each connection, in its goroutine.
	accepted func()
}

// newPeerListener returns a listener over ln; log is told of refused
// connections.
func newPeerListener(ln net.Listener, log func(refusal)) *peerListener {
	return &peerListener{Listener: ln, conns: newConnTable(log), holds: newFDScans()}
}

// Accept returns the next connection at once and identifies its peer in a
// goroutine of its own, so that a thousand idle connections of other
// processes do not delay another client's identification. (A process can
// delay its own, with its own connections queued first: the check at its
// first request that it still holds the connection is what refuses one
// that has run another program since.) A
// connection whose process holds api.MaxConnsPerProcess already (or when
// the daemon holds api.MaxConns) is closed at once; the peer's credentials
// are read here for that, two getsockopt calls.
func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		accepted := policy.Now() // before any wait: it bounds a pid reuse
		p, pin, credErr := peerCred(c)
		pid := 0
		if p != nil {
			pid = p.PID
		}
		proc, ok := l.conns.admit(pid)
		if !ok {
			pin.release()
			c.Close()
			continue
		}
		pc := &peerConn{Conn: c, l: l, proc: proc, done: make(chan struct{})}
		go func() {
			if l.accepted != nil {
				l.accepted()
			}
			if l.started != nil {
				l.started(c)
			}
			// A process identifies identifySlots connections at a time,
			// so that one that floods does not take every core.
			proc.slots <- struct{}{}
			pc.id = l.identify(c, p, pin, credErr, accepted)
			<-proc.slots
			close(pc.done)
		}()
		return pc, nil
	}
}

// identify works out the requester of the connection c, whose peer
// credentials are p (pinned by pin, or credErr). When the peer is the opx
// client, the requester is its parent: the program that ran `opx read`.
//
// What is read must describe the process that holds the connection: the
// peer is checked, at its first request, to still have the client's end of
// the socket among its open files (confirm). A process that connected and
// then ran another program (close-on-exec drops the socket) or handed the
// connection to another process is refused. A peer in another mount or user
// namespace, or with another root, is refused: its paths are not the
// daemon's.
//
// A pid can be reused, so each process is checked to be the one meant: on
// Linux 6.5+ the peer is pinned by a pidfd taken at connect time and must
// still be running after /proc has been read; elsewhere a peer that started
// after the connection was accepted is refused. The parent is the one read
// when the client still has it as parent afterwards (a child whose parent
// exits is re-parented at once), or, without a pidfd, when it is older than
// the client.
func (l *peerListener) identify(c net.Conn, p *Peer, pin peerPin, credErr error, accepted uint64) ident {
	defer pin.release()
	if credErr != nil {
		if p == nil {
			p = &Peer{}
		}
		p.Err = credErr
		return ident{peer: p}
	}
	fail := func(err error) ident {
		p.Err = err
		return ident{peer: p}
	}
	exited := func() error { return fmt.Errorf("process %d exited before it could be identified", p.PID) }
	clientEnd, err := peerSocketInode(c)
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
	if !pin.alive() {
		return fail(exited())
	}
	p.Path, p.ExeSHA256 = info.Path, sum
	p.Requester = ProcInfo{PID: p.PID, Path: info.Path, ExeSHA256: sum}
	id := ident{peer: p, clientEnd: clientEnd, start: info.Start}
	if l.self == "" || !sameExecutable(info.Path, l.self) {
		return id
	}
	// The peer is the opx client: the requester is the program that ran
	// it. When that cannot be established, the request is refused: judged
	// as opx itself, it would pass any rule naming opx, which every
	// program can run.
	noParent := func(why string) ident {
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
	return id
}

// confirm checks, after everything identify read, that the process
// identified still holds the connection (an exec since would have closed
// it; a hand-over leaves it with another process) and is still the one
// identified (its start time). fd is the client's number for the
// connection, or -1: with it the check is one look-up, without it every
// open file of the process is listed.
func (l *peerListener) confirm(id ident, fd int) *Peer {
	p := id.peer
	if p.Err != nil {
		return p
	}
	refuse := func(err error) *Peer {
		q := *p
		q.Err = err
		return &q
	}
	if err := l.holds.check(p.PID, id.clientEnd, fd); err != nil {
		return refuse(err)
	}
	if id.start != 0 {
		if info, err := policy.ReadProcess(p.PID); err != nil || info.Start != id.start {
			return refuse(fmt.Errorf("process %d exited after it connected", p.PID))
		}
	}
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

// peerFrom returns the request's peer once it is identified and
// confirmed, or nil.
func peerFrom(ctx context.Context) *Peer {
	return peerOf(ctx, -1)
}

// peerOf is peerFrom for the first request of a connection, which may name
// the client's file descriptor for it (api.ConnFDHeader; -1 for none).
func peerOf(ctx context.Context, fd int) *Peer {
	switch v := ctx.Value(peerKey{}).(type) {
	case *peerConn:
		return v.confirmed(ctx, fd)
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
