package daemon

import (
	"bytes"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// peerCred reads LOCAL_PEERCRED (uid, gid) and LOCAL_PEERPID (pid). macOS
// has no pidfd; identify compares start times instead.
func peerCred(c *net.UnixConn) (*Peer, peerPin, error) {
	raw, err := c.SyscallConn()
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

// procInfo reads a process's executable (kern.procargs2) and parent
// (kern.proc.pid).
func procInfo(pid int) (procDetails, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return procDetails{}, err
	}
	args, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil {
		return procDetails{}, err
	}
	// argc (int32), then the executable path, NUL-terminated.
	if len(args) < 5 {
		return procDetails{}, fmt.Errorf("malformed kern.procargs2 for %d", pid)
	}
	path := args[4:]
	if i := bytes.IndexByte(path, 0); i >= 0 {
		path = path[:i]
	}
	st := kp.Proc.P_starttime
	start := uint64(st.Sec)*1e6 + uint64(st.Usec)
	return procDetails{path: string(path), ppid: int(kp.Eproc.Ppid), start: start}, nil
}

// nowTicks is the time in the unit of process start times (microseconds
// since the epoch).
func nowTicks() uint64 {
	var tv unix.Timeval
	if err := unix.Gettimeofday(&tv); err != nil {
		return 0
	}
	return uint64(tv.Sec)*1e6 + uint64(tv.Usec)
}

// peerSocketInode: macOS offers no way to find the client's end of a
// connection among a process's files without libproc; 0 means "not
// checked" (see holdsSocket).
func peerSocketInode(*net.UnixConn) (uint32, error) { return 0, nil }

// holdsSocket cannot be checked on macOS (README, threat model): a process
// that connects and then runs another program is judged as the program it
// runs when it is identified.
func holdsSocket(int, uint32) error { return nil }

// sameNamespaces: macOS has no mount or user namespaces.
func sameNamespaces(int) error { return nil }

// openExe opens the executable at the path the process was started from;
// unlike Linux's /proc/PID/exe, that path may since name another file.
func openExe(pid int) (*os.File, error) {
	d, err := procInfo(pid)
	if err != nil {
		return nil, err
	}
	return os.Open(d.path)
}
