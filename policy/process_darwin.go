package policy

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// ReadProcess reads a process's executable (kern.procargs2) and parent
// (kern.proc.pid).
func ReadProcess(pid int) (Process, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return Process{}, err
	}
	args, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil {
		return Process{}, err
	}
	// argc (int32), then the executable path, NUL-terminated.
	if len(args) < 5 {
		return Process{}, fmt.Errorf("malformed kern.procargs2 for %d", pid)
	}
	path := args[4:]
	if i := bytes.IndexByte(path, 0); i >= 0 {
		path = path[:i]
	}
	st := kp.Proc.P_starttime
	start := uint64(st.Sec)*1e6 + uint64(st.Usec)
	return Process{Path: string(path), PPID: int(kp.Eproc.Ppid), Start: start}, nil
}

// Now is the time in the unit of Process.Start (microseconds since the
// epoch).
func Now() uint64 {
	var tv unix.Timeval
	if err := unix.Gettimeofday(&tv); err != nil {
		return 0
	}
	return uint64(tv.Sec)*1e6 + uint64(tv.Usec)
}

// SignedCheck verifies an executable's code signature with codesign.
func SignedCheck() func(path string) bool {
	return func(path string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, "/usr/bin/codesign", "--verify", "--strict", "--", path).Run() == nil
	}
}

// ReadParent reads a process's parent and start time (ReadProcess's).
func ReadParent(pid int) (ppid int, start uint64, err error) {
	p, err := ReadProcess(pid)
	return p.PPID, p.Start, err
}
