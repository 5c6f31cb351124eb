package daemon

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// TestSessionWindowFollowsLockAndUnlock: the daemon's session window takes
// WTS_SESSION_LOCK as a lock, and WTS_SESSION_UNLOCK as an unlock only
// when the system confirms the session is unlocked (any program of the
// user can post the window the message).
func TestSessionWindowFollowsLockAndUnlock(t *testing.T) {
	var mu sync.Mutex
	var events []sessionEvent
	status, stop := watchSession(os.Getenv, func(ev sessionEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	defer stop()
	if !strings.Contains(status, "the session's lock (WTS)") {
		t.Fatalf("status = %q, want the session's lock followed", status)
	}
	findWindowEx := user32.NewProc("FindWindowExW")
	sendMessage := user32.NewProc("SendMessageW")
	class, _ := windows.UTF16PtrFromString(SessionWindowClass(os.Getpid()))
	hwnd, _, err := findWindowEx.Call(hwndMessage, 0, uintptr(unsafe.Pointer(class)), 0)
	if hwnd == 0 {
		t.Fatalf("no session window of class %s: %v", SessionWindowClass(os.Getpid()), err)
	}
	sendMessage.Call(hwnd, wmWTSSessionChange, wtsSessionLock, 0)
	sendMessage.Call(hwnd, wmWTSSessionChange, wtsSessionUnlock, 0)
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(events) == 0 || !events[0].lock || events[0].sleep {
		t.Fatalf("events = %+v, want a lock first", events)
	}
	confirmed := sessionUnlocked()
	switch {
	case confirmed && (len(events) != 2 || events[1].lock || !events[1].trusted):
		t.Errorf("events = %+v; the system says the session is unlocked, want a trusted unlock", events)
	case !confirmed && len(events) != 1:
		t.Errorf("events = %+v; the system does not confirm the unlock, want none", events)
	}
	t.Logf("status %q; the system confirms an unlock: %v", status, confirmed)
}
