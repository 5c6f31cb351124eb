package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerCred reads SO_PEERCRED: the pid, uid and gid of the process that
// connected, and pins that process with SO_PEERPIDFD (Linux 6.5+), a pidfd
// taken at connect time that names the process itself, not its pid.
func peerCred(c net.Conn) (*Peer, peerPin, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, noPin, fmt.Errorf("not a Unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, noPin, err
	}
	var cred *unix.Ucred
	var serr, perr error
	pidfd := -1
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if serr == nil {
			pidfd, perr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
		}
	}); err != nil {
		return nil, noPin, err
	}
	if serr != nil {
		return nil, noPin, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	p := &Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}
	switch {
	case perr == nil: // the kernel opens it close-on-exec
		return p, peerPin{fd: pidfd}, nil
	case errors.Is(perr, unix.ENOPROTOOPT):
		// A kernel before 6.5: identify falls back to comparing start times.
		return p, noPin, nil
	default:
		// ESRCH, or EINVAL from 6.5 to 6.14 for a peer already reaped.
		return p, noPin, fmt.Errorf("process %d exited before it could be identified", p.PID)
	}
}

// peerPin holds the connecting process by pidfd while it is identified.
type peerPin struct{ fd int }

var noPin = peerPin{fd: -1}

// exact reports whether the pin names the process itself.
func (p peerPin) exact() bool { return p.fd >= 0 }

// alive reports whether the pinned process is still running, so that its
// pid cannot have been reused; true when there is no pin.
func (p peerPin) alive() bool {
	if p.fd < 0 {
		return true
	}
	return unix.PidfdSendSignal(p.fd, 0, nil, 0) == nil
}

func (p peerPin) release() {
	if p.fd >= 0 {
		unix.Close(p.fd)
	}
}

// sock_diag for AF_UNIX (linux/unix_diag.h); x/sys/unix has no types for it.
const (
	udiagShowPeer = 0x4 // UDIAG_SHOW_PEER
	unixDiagPeer  = 2   // UNIX_DIAG_PEER
)

// peerSocketInode returns the inode of the client's end of c, as the kernel
// knows it (sock_diag's UNIX_DIAG_PEER for c's own inode), so that the
// connecting process can be checked to still hold that socket.
func peerSocketInode(c net.Conn) (uint32, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, fmt.Errorf("not a Unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("stat the connection: %w", serr)
	}
	return sockDiagPeer(uint32(st.Ino))
}

// sockDiagPeer asks sock_diag for the peer of the Unix socket with inode ino.
func sockDiagPeer(ino uint32) (uint32, error) {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(s)
	// nlmsghdr (16 bytes) + unix_diag_req (24 bytes).
	req := make([]byte, 40)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], 40)
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1) // sequence
	req[16] = unix.AF_UNIX
	ne.PutUint32(req[20:], ^uint32(0)) // every state
	ne.PutUint32(req[24:], ino)
	ne.PutUint32(req[28:], udiagShowPeer)
	ne.PutUint32(req[32:], ^uint32(0)) // no cookie
	ne.PutUint32(req[36:], ^uint32(0))
	if err := unix.Sendto(s, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("sock_diag: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(s, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("sock_diag: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, fmt.Errorf("sock_diag: %w", err)
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.NLMSG_ERROR:
			if len(m.Data) >= 4 {
				if errno := int32(ne.Uint32(m.Data)); errno != 0 {
					return 0, fmt.Errorf("sock_diag: %w", syscall.Errno(-errno))
				}
			}
		case unix.SOCK_DIAG_BY_FAMILY:
			// unix_diag_msg is 16 bytes (its inode at offset 4), then
			// attributes.
			if len(m.Data) < 16 || ne.Uint32(m.Data[4:]) != ino {
				continue
			}
			attrs := m.Data[16:]
			for len(attrs) >= 4 {
				l, typ := int(ne.Uint16(attrs)), ne.Uint16(attrs[2:])
				if l < 4 || l > len(attrs) {
					break
				}
				if typ == unixDiagPeer && l >= 8 {
					return ne.Uint32(attrs[4:]), nil
				}
				if next := (l + 3) &^ 3; next < len(attrs) {
					attrs = attrs[next:]
				} else {
					break
				}
			}
		}
	}
	return 0, errors.New("sock_diag: the connection has no peer")
}

// fdScans checks that a process holds a socket among its open files: with
// the client's number for it, one look-up; without, a listing of every open
// file of the process. Listings of one process are shared: a check waits for
// the next listing that starts after it asked, and one runs at a time per
// process, so N connections of a process that holds N files cost a few
// listings, not N (each of N look-ups).
type fdScans struct {
	mu       sync.Mutex
	byPID    map[int]*pidScans
	listings atomic.Uint64 // listings made, for tests
}

type pidScans struct {
	running bool
	next    *fdScan // the listing not started yet
}

// fdScan is one listing of a process's open files: the inodes of its
// sockets, set before done is closed.
type fdScan struct {
	done  chan struct{}
	socks map[uint32]bool
	err   error
}

func newFDScans() *fdScans { return &fdScans{byPID: map[int]*pidScans{}} }

// check reports an error unless process pid has the socket with inode ino
// among its open files. fd, when not -1, is where the client says it is.
//
// It first waits out an exec the process may be in: opening its environ
// takes the lock an exec holds from replacing the program until it has
// closed the close-on-exec files, so the check never sees the new program
// with the old program's connection still open.
func (s *fdScans) check(pid int, ino uint32, fd int) error {
	if ino == 0 {
		return fmt.Errorf("the client's end of the connection of process %d is gone", pid)
	}
	waitOutExec(pid)
	want := "socket:[" + strconv.FormatUint(uint64(ino), 10) + "]"
	if fd >= 0 {
		if l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(fd)); err == nil && l == want {
			return nil
		}
	}
	sc := s.nextScan(pid)
	<-sc.done
	if sc.err != nil {
		return fmt.Errorf("list the open files of process %d: %w", pid, sc.err)
	}
	if sc.socks[ino] {
		return nil
	}
	return fmt.Errorf("process %d no longer holds the connection (it ran another program, or handed the connection to another process)", pid)
}

// nextScan returns the listing of pid's files that starts after this call.
func (s *fdScans) nextScan(pid int) *fdScan {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.byPID[pid]
	if ps == nil {
		ps = &pidScans{}
		s.byPID[pid] = ps
	}
	if ps.next == nil {
		ps.next = &fdScan{done: make(chan struct{})}
	}
	sc := ps.next
	if !ps.running {
		ps.running = true
		go s.run(pid, ps)
	}
	return sc
}

// run makes pid's listings one after another while checks wait for one.
func (s *fdScans) run(pid int, ps *pidScans) {
	for {
		s.mu.Lock()
		sc := ps.next
		ps.next = nil
		if sc == nil {
			ps.running = false
			delete(s.byPID, pid)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		waitOutExec(pid)
		s.listings.Add(1)
		sc.socks, sc.err = socketsOf(pid)
		close(sc.done)
	}
}

// socketsOf lists the inodes of the sockets process pid has open.
func socketsOf(pid int) (map[uint32]bool, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	socks := map[uint32]bool{}
	for {
		names, err := f.Readdirnames(1024)
		for _, n := range names {
			l, err := os.Readlink(dir + n)
			if err != nil {
				continue
			}
			if rest, ok := strings.CutPrefix(l, "socket:["); ok {
				if ino, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 32); err == nil {
					socks[uint32(ino)] = true
				}
			}
		}
		if err == io.EOF {
			return socks, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// waitOutExec returns once an exec process pid may be in has finished (see
// fdScans.check).
func waitOutExec(pid int) {
	if f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/environ"); err == nil {
		f.Close()
	}
}

// namespaceNames are the namespaces a peer must share with the daemon for
// its executable path to mean what it means to the daemon.
var namespaceNames = [...]string{"mnt", "user"}

// sameNamespaces reports an error unless process pid is in the daemon's
// mount and user namespaces, with the daemon's root directory: in another
// mount namespace (or chroot) a path such as /usr/bin/sleep can be any
// file the process bound there.
func sameNamespaces(pid int) error {
	proc := "/proc/" + strconv.Itoa(pid)
	for _, ns := range namespaceNames {
		mine, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			return fmt.Errorf("read the daemon's %s namespace: %w", ns, err)
		}
		theirs, err := os.Readlink(proc + "/ns/" + ns)
		if err != nil {
			return fmt.Errorf("read the %s namespace of process %d: %w", ns, pid, err)
		}
		if mine != theirs {
			return fmt.Errorf("process %d is in another %s namespace (%s, the daemon's is %s)", pid, ns, theirs, mine)
		}
	}
	var mine, theirs unix.Stat_t
	if err := unix.Stat("/proc/self/root", &mine); err != nil {
		return fmt.Errorf("stat the daemon's root: %w", err)
	}
	if err := unix.Stat(proc+"/root", &theirs); err != nil {
		return fmt.Errorf("stat the root of process %d: %w", pid, err)
	}
	if mine.Dev != theirs.Dev || mine.Ino != theirs.Ino {
		return fmt.Errorf("process %d has another root directory (chroot)", pid)
	}
	return nil
}

// openExe opens the executable process pid runs: the file itself, whatever
// path it has or had.
func openExe(pid int) (*os.File, error) {
	return os.Open("/proc/" + strconv.Itoa(pid) + "/exe")
}
