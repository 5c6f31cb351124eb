//go:build windows

package audit

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Under wine, which runs these tests in CI (make wintest), security
// descriptors are stored as a Unix mode and made up from it when read:
// the tests check what the log sets and how it reads a descriptor, not
// what Windows would enforce. xdg's tests say more.

// underWine reports whether the tests run under wine, whose ntdll exports
// wine_get_version.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// removeOpen removes path, a file the log holds open. Windows frees the
// name at once (DeleteFile's POSIX semantics, since Windows 10 1809 on
// NTFS); wine keeps it until the last handle is closed, as Windows did
// before, so there the file is first renamed aside, which frees the name.
func removeOpen(t *testing.T, path string) {
	t.Helper()
	if underWine() {
		aside := path + ".removed"
		mustDo(t, os.Rename(path, aside))
		path = aside
	}
	mustDo(t, os.Remove(path))
}

// unlinksOpenFiles says whether removing a name of a file held open frees
// it at once: not under wine (see removeOpen), where a hard link to the
// log's file cannot be undone while the log holds it.
var unlinksOpenFiles = !underWine()

const whyNoUnlink = "wine keeps a removed name of an open file until the file is closed"

// user is the current user's SID, as a string.
func user(t *testing.T) string {
	t.Helper()
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	return tu.User.Sid.String()
}

// wantPrivate fails the test unless path is a regular file owned by the
// current user whose DACL grants that user full control and no one else
// anything: protected, one ACE, on Windows; under wine, which makes the
// descriptor up from the Unix mode, beside the SYSTEM ACE it always adds.
func wantPrivate(t *testing.T, path string) {
	t.Helper()
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("%s: %v, %v; want a regular file", path, fi, err)
		return
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("GetNamedSecurityInfo(%q): %v", path, err)
	}
	me := user(t)
	if owner, _, err := sd.Owner(); err != nil || owner.String() != me {
		t.Errorf("%s is owned by %v (%v), want %s", path, owner, err, me)
	}
	ctl, _, _ := sd.Control()
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		t.Fatalf("DACL of %s = %v, %v; want one", path, dacl, err)
	}
	var grants []string
	for i := range uint32(dacl.AceCount) {
		var a *windows.ACCESS_ALLOWED_ACE
		mustDo(t, windows.GetAce(dacl, i, &a))
		sid := (*windows.SID)(unsafe.Pointer(&a.SidStart)).String()
		if a.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE || underWine() && sid == "S-1-5-18" {
			continue
		}
		if sid != me || a.Mask != 0x1F01FF {
			t.Errorf("%s grants %s access %#x; want only %s full control", path, sid, a.Mask, me)
		}
		grants = append(grants, sid)
	}
	if len(grants) != 1 || !underWine() && (ctl&windows.SE_DACL_PROTECTED == 0 || dacl.AceCount != 1) {
		t.Errorf("%s: protected=%v, %d ACEs, grants to %v; want a protected DACL granting %s alone",
			path, ctl&windows.SE_DACL_PROTECTED != 0, dacl.AceCount, grants, me)
	}
}

// setDACL gives path the DACL in sddl, protected from inheritance.
func setDACL(t *testing.T, path, sddl string) {
	t.Helper()
	sd, err := windows.SecurityDescriptorFromString(sddl)
	mustDo(t, err)
	dacl, _, err := sd.DACL()
	mustDo(t, err)
	mustDo(t, windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil))
}

// openToOthers lets Everyone read path; makePrivate undoes it. openWhy is
// what the log says of such a file.
func openToOthers(t *testing.T, path string) {
	setDACL(t, path, "D:P(A;;FA;;;"+user(t)+")(A;;FR;;;WD)")
}

// makePrivate grants the user alone. Under wine it also denies Everyone:
// wine turns a DACL into a Unix mode, and gives the "other" bits to
// Everyone unless an ACE denies it. (Windows reads ACEs in order, so the
// deny after the user's allow would not take the user's access away
// there either; it is left out on Windows all the same.)
func makePrivate(t *testing.T, path string) {
	sddl := "D:P(A;;FA;;;" + user(t) + ")"
	if underWine() {
		sddl += "(D;;FA;;;WD)"
	}
	setDACL(t, path, sddl)
}

const openWhy = "is open to other users"

// putUnfit puts at path an entry the log must not write to, a file Everyone
// may read, and returns what the log says of it.
func putUnfit(t *testing.T, path string) string {
	t.Helper()
	mustDo(t, os.WriteFile(path, nil, 0o600))
	openToOthers(t, path)
	return openWhy
}

// unfitCases are the entries of TestUnfitFileFailsClosedUntilRemoved that
// only Windows makes: a symlink, where one can be made.
var unfitCases = []unfitCase{
	{"symlink to a file of ours", "is a symlink", func(t *testing.T, path string) string {
		other := path + ".elsewhere"
		mustDo(t, os.WriteFile(other, nil, 0o600))
		if err := os.Symlink(other, path); err != nil {
			t.Skipf("cannot make a symlink here: %v", err)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Skipf("os.Symlink succeeded but made nothing (wine 8 does that): %v", err)
		}
		return other
	}},
}
