package policy

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ReadProcess reads a process's executable, parent and start time from
// /proc.
func ReadProcess(pid int) (Process, error) {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return Process{}, err
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Process{}, err
	}
	// The command name may hold spaces and parentheses: fields start
	// after the last ')'.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return Process{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, _ := strconv.Atoi(fields[1])
	var start uint64
	if len(fields) > 19 {
		start, _ = strconv.ParseUint(fields[19], 10, 64) // field 22: starttime, in clock ticks since boot
	}
	// The kernel marks an executable that was removed (an upgrade
	// replaced it) with " (deleted)"; a file that is really named so
	// still has links.
	if trimmed, ok := strings.CutSuffix(exe, " (deleted)"); ok {
		var st unix.Stat_t
		if unix.Stat("/proc/"+strconv.Itoa(pid)+"/exe", &st) == nil && st.Nlink == 0 {
			exe = trimmed
		}
	}
	return Process{Path: exe, PPID: ppid, Start: start}, nil
}

// ReadParent reads a process's parent and start time, without its
// executable: /proc/PID/stat, which every process of the machine may read,
// where the executable's link is closed to other users and to processes
// that made themselves undumpable.
func ReadParent(pid int) (ppid int, start uint64, err error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, _ = strconv.Atoi(fields[1])
	start, _ = strconv.ParseUint(fields[19], 10, 64)
	return ppid, start, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// Now is the time since boot in the unit of Process.Start.
func Now() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*clockTicks + uint64(ts.Nsec)/(1e9/clockTicks)
}

// SignedCheck is nil on Linux: executables carry no code signatures, so a
// require_signed rule cannot be satisfied.
func SignedCheck() func(path string) bool { return nil }
