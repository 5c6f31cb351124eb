package console

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/opxhq/opx/xdg"
)

var (
	kernel32              = windows.NewLazySystemDLL("kernel32.dll")
	getConsoleProcessList = kernel32.NewProc("GetConsoleProcessList")
	getConsoleWindow      = kernel32.NewProc("GetConsoleWindow")
	freeConsole           = kernel32.NewProc("FreeConsole")
)

// processes is how many processes share this one's console: 0 when it has
// none.
func processes() int {
	var pids [2]uint32
	n, _, _ := getConsoleProcessList.Call(uintptr(unsafe.Pointer(&pids[0])), uintptr(len(pids)))
	return int(n)
}

// Detach leaves the console when it was made for the daemon alone (see
// leave), so that a logon task or a double-click leaves no window behind.
// Output that went to that console (or NUL) goes to logFile from then on,
// appended, as autostart's daemon writes it: os.Stdout, os.Stderr and the
// process's standard handles, which the runtime writes a panic to. It
// reports whether it left.
func Detach(logFile string) (bool, error) {
	window, _, _ := getConsoleWindow.Call()
	return detach(logFile, window != 0)
}

// detach is Detach once it knows whether the console shows a window.
func detach(logFile string, window bool) (bool, error) {
	if !leave(processes(), window) {
		return false, nil
	}
	// What goes to a file or a pipe is someone's (a redirection,
	// autostart's log) and stays; what goes to the console, NUL or
	// nowhere goes to the log. Asked before the console goes.
	kept := func(f *os.File) bool {
		t, err := windows.GetFileType(windows.Handle(f.Fd()))
		return err == nil && (t == windows.FILE_TYPE_DISK || t == windows.FILE_TYPE_PIPE)
	}
	keepOut, keepErr := kept(os.Stdout), kept(os.Stderr)
	if ok, _, err := freeConsole.Call(); ok == 0 {
		return false, fmt.Errorf("leave the console: %w", err)
	}
	if keepOut && keepErr {
		return true, nil
	}
	if err := xdg.EnsureDir(filepath.Dir(logFile)); err != nil {
		return true, err
	}
	log, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return true, fmt.Errorf("open the daemon log: %w", err)
	}
	if !keepOut {
		_ = windows.SetStdHandle(windows.STD_OUTPUT_HANDLE, windows.Handle(log.Fd()))
		os.Stdout = log
	}
	if !keepErr {
		_ = windows.SetStdHandle(windows.STD_ERROR_HANDLE, windows.Handle(log.Fd()))
		os.Stderr = log
	}
	return true, nil
}

// HideChild has cmd, a console program, start without a console window
// when this process has no console to share with it: Windows would open a
// window for each op otherwise.
func HideChild(cmd *exec.Cmd) {
	if processes() > 0 {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= windows.CREATE_NO_WINDOW
}
