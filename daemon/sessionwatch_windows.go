package daemon

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	user32                   = windows.NewLazySystemDLL("user32.dll")
	procRegisterClassEx      = user32.NewProc("RegisterClassExW")
	procCreateWindowEx       = user32.NewProc("CreateWindowExW")
	procDefWindowProc        = user32.NewProc("DefWindowProcW")
	procGetMessage           = user32.NewProc("GetMessageW")
	procDispatchMessage      = user32.NewProc("DispatchMessageW")
	procPostMessage          = user32.NewProc("PostMessageW")
	procDestroyWindow        = user32.NewProc("DestroyWindow")
	procPostQuitMessage      = user32.NewProc("PostQuitMessage")
	wtsapi32                 = windows.NewLazySystemDLL("wtsapi32.dll")
	procWTSRegister          = wtsapi32.NewProc("WTSRegisterSessionNotification")
	procWTSUnRegister        = wtsapi32.NewProc("WTSUnRegisterSessionNotification")
	procWTSQuerySessionInfo  = wtsapi32.NewProc("WTSQuerySessionInformationW")
	procWTSFreeMemory        = wtsapi32.NewProc("WTSFreeMemory")
	powrprof                 = windows.NewLazySystemDLL("powrprof.dll")
	procPowerRegisterSuspend = powrprof.NewProc("PowerRegisterSuspendResumeNotification")
	procPowerUnregister      = powrprof.NewProc("PowerUnregisterSuspendResumeNotification")
)

const (
	wmClose              = 0x0010
	wmDestroy            = 0x0002
	wmWTSSessionChange   = 0x02B1
	wtsSessionLock       = 0x7
	wtsSessionUnlock     = 0x8
	pbtAPMSuspend        = 0x4
	hwndMessage          = ^uintptr(2) // HWND_MESSAGE, (HWND)-3
	deviceNotifyCallback = 2
	wtsSessionInfoEx     = 25
	wtsSessionStateUnloc = 1 // WTS_SESSIONSTATE_UNLOCK
)

// SessionWindowClass is the window class of the daemon's session window,
// with its pid: a message-only window that gets this session's lock and
// unlock (WTSRegisterSessionNotification).
func SessionWindowClass(pid int) string { return "opx-authd-session-" + strconv.Itoa(pid) }

// wndClassEx is WNDCLASSEXW.
type wndClassEx struct {
	size, style                        uint32
	wndProc                            uintptr
	clsExtra, wndExtra                 int32
	instance, icon, cursor, background windows.Handle
	menuName, className                *uint16
	iconSm                             windows.Handle
}

// msg is MSG.
type msg struct {
	hwnd           uintptr
	message        uint32
	wParam, lParam uintptr
	time           uint32
	pt             struct{ x, y int32 }
	private        uint32
}

// watchSession follows this Windows session: its lock and unlock, through
// a message-only window registered with WTSRegisterSessionNotification,
// and the machine's suspend (PowerRegisterSuspendResumeNotification). An
// unlock counts only when the system confirms the session is unlocked
// (WTSQuerySessionInformation): any program of the user can post the
// window a message. A lock counts as posted: it only takes secrets away.
func watchSession(_ func(string) string, event func(sessionEvent)) (status string, stop func()) {
	type started struct {
		hwnd uintptr
		err  error
	}
	ready := make(chan started, 1)
	go func() {
		// A window's messages go to the thread that made it.
		runtime.LockOSThread()
		hwnd, err := sessionWindow(event)
		ready <- started{hwnd, err}
		if err != nil {
			return
		}
		var m msg
		for {
			r, _, _ := procGetMessage.Call(uintptr(unsafe.Pointer(&m)), 0, 0, 0)
			if int32(r) <= 0 { // WM_QUIT, or an error
				return
			}
			procDispatchMessage.Call(uintptr(unsafe.Pointer(&m)))
		}
	}()
	st := <-ready
	var parts, missing []string
	var stops []func()
	if st.err != nil {
		missing = append(missing, "the session's lock is not followed: "+st.err.Error())
	} else {
		parts = append(parts, "the session's lock (WTS)")
		stops = append(stops, func() {
			procWTSUnRegister.Call(st.hwnd)
			procPostMessage.Call(st.hwnd, wmClose, 0, 0)
		})
	}
	if unregister, err := watchSuspend(event); err != nil {
		missing = append(missing, "sleep is not followed: "+err.Error())
	} else {
		parts = append(parts, "sleep")
		stops = append(stops, unregister)
	}
	status = strings.Join(parts, " and ")
	if len(missing) > 0 {
		if status != "" {
			status += "; "
		}
		status += strings.Join(missing, "; ")
	}
	return status, func() {
		for _, s := range stops {
			s()
		}
	}
}

// sessionWindow makes the message-only window and registers it for this
// session's notifications.
func sessionWindow(event func(sessionEvent)) (uintptr, error) {
	class, err := windows.UTF16PtrFromString(SessionWindowClass(os.Getpid()))
	if err != nil {
		return 0, err
	}
	proc := syscall.NewCallback(func(hwnd, message, wParam, lParam uintptr) uintptr {
		switch message {
		case wmWTSSessionChange:
			switch wParam {
			case wtsSessionLock:
				event(sessionEvent{lock: true, cause: "the session locked (WTS)"})
			case wtsSessionUnlock:
				if sessionUnlocked() {
					event(sessionEvent{lock: false, trusted: true, cause: "the session unlocked (WTS)"})
				}
			}
			return 0
		case wmClose:
			procDestroyWindow.Call(hwnd)
			return 0
		case wmDestroy:
			procPostQuitMessage.Call(0)
			return 0
		}
		r, _, _ := procDefWindowProc.Call(hwnd, message, wParam, lParam)
		return r
	})
	wc := wndClassEx{size: uint32(unsafe.Sizeof(wndClassEx{})), wndProc: proc, className: class}
	if r, _, err := procRegisterClassEx.Call(uintptr(unsafe.Pointer(&wc))); r == 0 {
		return 0, fmt.Errorf("RegisterClassEx: %w", err)
	}
	hwnd, _, err := procCreateWindowEx.Call(0, uintptr(unsafe.Pointer(class)), 0, 0, 0, 0, 0, 0, hwndMessage, 0, 0, 0)
	if hwnd == 0 {
		return 0, fmt.Errorf("CreateWindowEx: %w", err)
	}
	if r, _, err := procWTSRegister.Call(hwnd, 0 /* NOTIFY_FOR_THIS_SESSION */); r == 0 {
		procDestroyWindow.Call(hwnd)
		return 0, fmt.Errorf("WTSRegisterSessionNotification: %w", err)
	}
	return hwnd, nil
}

// sessionUnlocked asks the system whether this session is unlocked.
func sessionUnlocked() bool {
	var buf *byte
	var n uint32
	const currentSession = 0xFFFFFFFF // WTS_CURRENT_SESSION
	if r, _, _ := procWTSQuerySessionInfo.Call(0, currentSession, wtsSessionInfoEx, uintptr(unsafe.Pointer(&buf)), uintptr(unsafe.Pointer(&n))); r == 0 || buf == nil {
		return false
	}
	defer procWTSFreeMemory.Call(uintptr(unsafe.Pointer(buf)))
	// WTSINFOEXW: Level (4 bytes), then WTSINFOEX_LEVEL1_W: SessionId,
	// SessionState, SessionFlags (4 bytes each).
	if n < 16 {
		return false
	}
	flags := *(*int32)(unsafe.Add(unsafe.Pointer(buf), 12))
	return flags == wtsSessionStateUnloc
}

// suspendParams is DEVICE_NOTIFY_SUBSCRIBE_PARAMETERS.
type suspendParams struct {
	callback, context uintptr
}

// suspendCallback, once registered, must live as long as the process.
var suspendCallback struct {
	params suspendParams
	event  func(sessionEvent)
}

// watchSuspend registers for the machine's suspend.
func watchSuspend(event func(sessionEvent)) (unregister func(), err error) {
	if err := procPowerRegisterSuspend.Find(); err != nil {
		return nil, err
	}
	suspendCallback.event = event
	suspendCallback.params.callback = syscall.NewCallback(func(context, typ, setting uintptr) uintptr {
		if typ == pbtAPMSuspend && suspendCallback.event != nil {
			suspendCallback.event(sessionEvent{lock: true, sleep: true, cause: "the machine is going to sleep"})
		}
		return 0
	})
	var handle uintptr
	r, _, _ := procPowerRegisterSuspend.Call(deviceNotifyCallback, uintptr(unsafe.Pointer(&suspendCallback.params)), uintptr(unsafe.Pointer(&handle)))
	if r != 0 {
		return nil, fmt.Errorf("PowerRegisterSuspendResumeNotification: %w", windows.Errno(r))
	}
	if handle == 0 {
		return nil, errors.New("PowerRegisterSuspendResumeNotification gave no handle")
	}
	return func() { procPowerUnregister.Call(handle) }, nil
}
