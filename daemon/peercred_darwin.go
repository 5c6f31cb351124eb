package daemon

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/opxhq/opx/policy"
)

// peerCred reads LOCAL_PEERCRED (uid, gid) and LOCAL_PEERPID (pid). macOS
// has no pidfd; identify compares start times instead.
func peerCred(c net.Conn) (*Peer, peerPin, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, noPin, fmt.Errorf("not a Unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, noPin, err
	}
	var xu *unix.Xucred
	var pid int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		xu, serr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if serr == nil {
			pid, serr = unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID)
		}
	}); err != nil {
		return nil, noPin, err
	}
	if serr != nil {
		return nil, noPin, fmt.Errorf("LOCAL_PEERCRED: %w", serr)
	}
	gid := 0
	if xu.Ngroups > 0 {
		gid = int(xu.Groups[0])
	}
	return &Peer{PID: pid, UID: int(xu.Uid), GID: gid}, noPin, nil
}

// peerPin would hold the connecting process; macOS has nothing to hold it by.
type peerPin struct{}

var noPin peerPin

func (peerPin) exact() bool { return false }
func (peerPin) alive() bool { return true }
func (peerPin) release()    {}

// peerSocketInode: macOS offers no way to find the client's end of a
// connection among a process's files without libproc; 0 means "not
// checked" (see holdsSocket).
func peerSocketInode(net.Conn) (uint32, error) { return 0, nil }

// fdScans would check that a process still holds its connection; macOS
// cannot tell (README, threat model): a process that connects and then runs
// another program is judged as the program it runs when it is identified.
type fdScans struct{}

func newFDScans() *fdScans { return &fdScans{} }

func (*fdScans) check(int, uint32, int) error { return nil }

// sameNamespaces: macOS has no mount or user namespaces.
func sameNamespaces(int) error { return nil }

// openExe opens the executable at the path the process was started from;
// unlike Linux's /proc/PID/exe, that path may since name another file.
func openExe(pid int) (*os.File, error) {
	d, err := policy.ReadProcess(pid)
	if err != nil {
		return nil, err
	}
	return os.Open(d.Path)
}
