//go:build windows

package policy

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"golang.org/x/sys/windows"
)

// ReadProcess reads a process's image path (QueryFullProcessImageNameW),
// creation time (GetProcessTimes) and parent (from a Toolhelp32 snapshot),
// all through one handle opened with PROCESS_QUERY_LIMITED_INFORMATION,
// which any process of the same user may be opened with. While a handle to
// a process is open its pid is not reused; the daemon holds one of its own
// while it identifies a peer.
//
// Windows keeps a process's parent pid as it was at creation: when the
// parent exits the pid may go to a newer process. PPID is that number; a
// caller that trusts it compares the parent's Start with the child's (a
// real parent is older).
func ReadProcess(pid int) (Process, error) {
	if pid <= 0 || pid > math.MaxUint32 {
		return Process{}, fmt.Errorf("no process %d", pid)
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return Process{}, fmt.Errorf("open process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	path, err := imagePath(h)
	if err != nil {
		return Process{}, fmt.Errorf("read the image of process %d: %w", pid, err)
	}
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return Process{}, fmt.Errorf("read the times of process %d: %w", pid, err)
	}
	ppid, err := parentOf(uint32(pid))
	if err != nil {
		return Process{}, err
	}
	return Process{Path: path, PPID: int(ppid), Start: filetime(created)}, nil
}

// imagePath is the Win32 path of the executable process h runs.
func imagePath(h windows.Handle) (string, error) {
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n := uint32(len(buf))
	if err := windows.QueryFullProcessImageName(h, 0, &buf[0], &n); err != nil {
		return "", err
	}
	return windows.UTF16ToString(buf[:n]), nil
}

// parentOf finds pid's parent pid in a snapshot of the processes.
func parentOf(pid uint32) (uint32, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	defer windows.CloseHandle(snap)
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		if e.ProcessID == pid {
			return e.ParentProcessID, nil
		}
	}
	if errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return 0, fmt.Errorf("process %d is not in the process list", pid)
	}
	return 0, fmt.Errorf("list processes: %w", err)
}

// filetime is ft as one number: 100-nanosecond intervals since 1601.
func filetime(ft windows.Filetime) uint64 {
	return uint64(ft.HighDateTime)<<32 | uint64(ft.LowDateTime)
}

// Now is the time in the unit of Process.Start (100 ns since 1601), from
// the precise clock: the coarse one lags it by up to a timer tick (15.6
// ms), and a process created within that tick would seem to start after
// now.
func Now() uint64 {
	var ft windows.Filetime
	windows.GetSystemTimePreciseAsFileTime(&ft)
	return filetime(ft)
}

// ReadParent reads a process's parent and start time (ReadProcess's).
func ReadParent(pid int) (ppid int, start uint64, err error) {
	p, err := ReadProcess(pid)
	return p.PPID, p.Start, err
}
