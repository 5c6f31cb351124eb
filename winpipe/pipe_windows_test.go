//go:build windows

package winpipe

import (
	"errors"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Wine keeps a pipe's security descriptor but does not enforce it, nor
// FILE_FLAG_FIRST_PIPE_INSTANCE, nor the impersonation level a client asks
// for. So these tests check the values opx passes; under wine, nothing here
// can show that Windows acts on them (TestSecondListenFails does, on Windows).

func TestOpenMode(t *testing.T) {
	for _, first := range []bool{true, false} {
		m := openMode(first)
		if m&windows.PIPE_ACCESS_DUPLEX != windows.PIPE_ACCESS_DUPLEX || m&windows.FILE_FLAG_OVERLAPPED == 0 {
			t.Errorf("openMode(%v) = %#x, want duplex and overlapped", first, m)
		}
		if got := m&windows.FILE_FLAG_FIRST_PIPE_INSTANCE != 0; got != first {
			t.Errorf("openMode(%v) has FILE_FLAG_FIRST_PIPE_INSTANCE: %v, want %v", first, got, first)
		}
	}
	if pipeMode&windows.PIPE_REJECT_REMOTE_CLIENTS == 0 {
		t.Errorf("pipeMode = %#x, want PIPE_REJECT_REMOTE_CLIENTS", pipeMode)
	}
	if pipeMode&(windows.PIPE_TYPE_MESSAGE|windows.PIPE_READMODE_MESSAGE|windows.PIPE_NOWAIT) != 0 {
		t.Errorf("pipeMode = %#x, want byte type, byte reads, blocking", pipeMode)
	}
}

func TestDialFlags(t *testing.T) {
	// The impersonation level is the two bits at 16 (SECURITY_ANONYMOUS 0 to
	// SECURITY_DELEGATION 3); without SECURITY_SQOS_PRESENT they are ignored.
	const levelMask = 3 << 16
	if dialFlags&windows.SECURITY_SQOS_PRESENT == 0 || dialFlags&levelMask != windows.SECURITY_IDENTIFICATION {
		t.Errorf("dialFlags = %#x, want SECURITY_SQOS_PRESENT and level SECURITY_IDENTIFICATION", dialFlags)
	}
	if dialFlags&windows.FILE_FLAG_OVERLAPPED == 0 {
		t.Errorf("dialFlags = %#x, want FILE_FLAG_OVERLAPPED", dialFlags)
	}
}

// TestOwnerOnly checks the descriptor Listen builds and the one the system
// keeps for the pipe it created: the current user owns it, and its DACL is
// protected and grants that user alone.
func TestOwnerOnly(t *testing.T) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	user := u.User.Sid

	built, err := ownerOnly()
	if err != nil {
		t.Fatalf("ownerOnly() = %v", err)
	}
	checkOwnerOnly(t, "built", built, user)

	l, _ := listen(t)
	live, err := windows.GetSecurityInfo(l.next, windows.SE_KERNEL_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("GetSecurityInfo(pipe) = %v", err)
	}
	checkOwnerOnly(t, "pipe's", live, user)
}

func checkOwnerOnly(t *testing.T, which string, sd *windows.SECURITY_DESCRIPTOR, user *windows.SID) {
	t.Helper()
	t.Logf("%s descriptor: %s", which, sd)
	owner, _, err := sd.Owner()
	if err != nil || owner == nil || !owner.Equals(user) {
		t.Errorf("%s descriptor's owner = %v, %v, want %v", which, owner, err, user)
	}
	control, _, err := sd.Control()
	if err != nil || control&windows.SE_DACL_PROTECTED == 0 || control&windows.SE_DACL_PRESENT == 0 {
		t.Errorf("%s descriptor's control = %#x, %v, want a DACL present and protected", which, control, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		t.Fatalf("%s descriptor's DACL = %v, %v, want one", which, dacl, err)
	}
	if dacl.AceCount != 1 {
		t.Fatalf("%s DACL has %d entries, want 1", which, dacl.AceCount)
	}
	var ace *windows.ACCESS_ALLOWED_ACE
	if err := windows.GetAce(dacl, 0, &ace); err != nil {
		t.Fatalf("GetAce(%s DACL, 0) = %v", which, err)
	}
	sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
	if ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE || !sid.Equals(user) {
		t.Errorf("%s DACL's entry: type %d for %v, want allowed (%d) for %v",
			which, ace.Header.AceType, sid, windows.ACCESS_ALLOWED_ACE_TYPE, user)
	}
	// The system may store GENERIC_ALL mapped to the file rights it means,
	// FILE_ALL_ACCESS (which x/sys/windows does not name).
	const fileAllAccess = windows.STANDARD_RIGHTS_REQUIRED | windows.SYNCHRONIZE | 0x1ff
	if ace.Mask != windows.GENERIC_ALL && ace.Mask != fileAllAccess {
		t.Errorf("%s DACL's entry grants %#x, want GENERIC_ALL or FILE_ALL_ACCESS", which, ace.Mask)
	}
	if ace.Header.AceFlags&windows.INHERITED_ACE != 0 {
		t.Errorf("%s DACL's entry is inherited", which)
	}
}

// TestSecondListenFails is the squatter's case: the name is taken, so Listen
// must fail rather than add an instance to someone else's pipe.
func TestSecondListenFails(t *testing.T) {
	if underWine() {
		t.Skip("wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE (TestOpenMode checks the flag)")
	}
	_, name := listen(t)
	l, err := Listen(name)
	if err == nil {
		l.Close()
	}
	if !errors.Is(err, ErrPipeTaken) {
		t.Fatalf("Listen(a name already listened on) = %v, want %v", err, ErrPipeTaken)
	}
}
