package main

import (
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/windows"
)

// wtsLock sends the daemon with pid its session window's lock message
// (WM_WTSSESSION_CHANGE, WTS_SESSION_LOCK), as Windows does when the
// user's session locks.
func wtsLock(pid string) {
	if _, err := strconv.Atoi(pid); err != nil {
		os.Exit(2)
	}
	user32 := windows.NewLazySystemDLL("user32.dll")
	class, _ := windows.UTF16PtrFromString("opx-authd-session-" + pid)
	hwnd, _, err := user32.NewProc("FindWindowExW").Call(^uintptr(2), 0, uintptr(unsafe.Pointer(class)), 0)
	if hwnd == 0 {
		fmt.Fprintln(os.Stderr, "no session window:", err)
		os.Exit(1)
	}
	user32.NewProc("SendMessageW").Call(hwnd, 0x02B1, 0x7, 0)
}
