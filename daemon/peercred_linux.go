package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// peerCred reads SO_PEERCRED: the pid, uid and gid of the process that
// connected, and pins that process with SO_PEERPIDFD (Linux 6.5+), a pidfd
// taken at connect time that names the process itself, not its pid.
func peerCred(c *net.UnixConn) (*Peer, peerPin, error) {
	raw, err := c.SyscallConn()
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
	case errors.Is(perr, unix.ESRCH):
		return p, noPin, fmt.Errorf("process %d exited before it could be identified", p.PID)
	default:
		// An older kernel: identify falls back to comparing start times.
		return p, noPin, nil
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

// procInfo reads a process's executable and parent from /proc.
func procInfo(pid int) (procDetails, error) {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return procDetails{}, err
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procDetails{}, err
	}
	// The command name may hold spaces and parentheses: fields start
	// after the last ')'.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return procDetails{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, _ := strconv.Atoi(fields[1])
	var start uint64
	if len(fields) > 19 {
		start, _ = strconv.ParseUint(fields[19], 10, 64) // field 22: starttime, in clock ticks since boot
	}
	return procDetails{path: strings.TrimSuffix(exe, " (deleted)"), ppid: ppid, start: start}, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// nowTicks is the time since boot in the unit of process start times.
func nowTicks() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*clockTicks + uint64(ts.Nsec)/(1e9/clockTicks)
}
