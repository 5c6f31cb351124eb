//go:build windows

package cli

import (
	"os"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// underWine reports whether the tests run under wine, whose ntdll exports
// wine_get_version.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// wantFileMode fails the test unless the file at path has what --file-mode
// perm promises on Windows, read back from its security descriptor: with
// no group or other bits, a file owned by the current user whose protected
// DACL grants that user alone full control; with any, the ACL the directory
// passes on (an unprotected DACL). Wine keeps no DACL but makes one up from
// the Unix mode (the owner's ACE, SYSTEM's always, no protected flag), so
// there the owner-only case allows SYSTEM and the inherited case is not
// checked.
func wantFileMode(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	tok, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	me := tok.User.Sid.String()
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("GetNamedSecurityInfo(%q): %v", path, err)
	}
	ctl, _, err := sd.Control()
	if err != nil {
		t.Fatal(err)
	}
	protected := ctl&windows.SE_DACL_PROTECTED != 0
	if perm&0o077 != 0 {
		if underWine() {
			t.Logf("--file-mode %#o: wine keeps no inherited ACL to check on %s", perm, path)
		} else if protected {
			t.Errorf("--file-mode %#o made %s a protected DACL, want the one its directory passes on", perm, path)
		}
		return
	}
	owner, _, err := sd.Owner()
	if err != nil || owner.String() != me {
		t.Errorf("%s is owned by %v (%v), want %s", path, owner, err, me)
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		t.Fatalf("DACL of %s = %v, %v; want one", path, dacl, err)
	}
	allowed := []string{me}
	if underWine() {
		allowed = append(allowed, "S-1-5-18") // SYSTEM, which wine always adds
	}
	var mine bool
	for i := range uint32(dacl.AceCount) {
		var a *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &a); err != nil {
			t.Fatal(err)
		}
		sid := (*windows.SID)(unsafe.Pointer(&a.SidStart)).String()
		if a.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE || !slices.Contains(allowed, sid) {
			t.Errorf("--file-mode %#o: %s has an ACE of type %d for %s, want only %v allowed", perm, path, a.Header.AceType, sid, allowed)
		}
		mine = mine || sid == me
	}
	if !mine {
		t.Errorf("--file-mode %#o: %s grants nothing to its owner %s", perm, path, me)
	}
	if !protected && !underWine() {
		t.Errorf("--file-mode %#o: %s has an unprotected DACL, want one that inherits nothing", perm, path)
	}
}

// skipUnlessLinked skips the test when the symlink at link could not be
// made (err from os.Symlink: Windows needs developer mode or the privilege)
// or cannot be seen: wine 8's CreateSymbolicLink returns success and makes
// nothing.
func skipUnlessLinked(t *testing.T, err error, link string) {
	t.Helper()
	if err != nil {
		t.Skipf("cannot make a symlink here: %v", err)
	}
	if _, err := os.Lstat(link); err != nil {
		t.Skipf("os.Symlink(%q) succeeded but made nothing (wine 8 does that): %v", link, err)
	}
}
