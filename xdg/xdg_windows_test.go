//go:build windows

package xdg

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/opxhq/opx/internal/testdir"
	"golang.org/x/sys/windows"
)

// These tests check what opx sets in a security descriptor and how it
// reads one, not what Windows enforces with it: under wine, which runs them
// in CI (make wintest), descriptors are not enforced. Wine keeps no DACL
// either: it stores a file's Unix mode and makes the descriptor up from it
// when asked (the owner, SYSTEM always, Everyone for the "other" bits), so
// that a protected flag is never read back and a NULL DACL reads back as
// full access for Everyone. The tests say where they expect that; on
// Windows they hold to the stricter form.

// underWine reports whether the tests run under wine, whose ntdll exports
// wine_get_version.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// me is the current user's SID.
func me(t *testing.T) *windows.SID {
	t.Helper()
	sid, err := currentUser()
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// sid parses s, failing the test if it cannot.
func sid(t *testing.T, s string) *windows.SID {
	t.Helper()
	v, err := windows.StringToSid(s)
	if err != nil {
		t.Fatalf("StringToSid(%q): %v", s, err)
	}
	return v
}

func TestResolveWindows(t *testing.T) {
	home := testdir.New(t)
	legacyHome := testdir.New(t)
	legacy := filepath.Join(legacyHome, ".op-authd")
	if err := os.Mkdir(legacy, 0o700); err != nil {
		t.Fatal(err)
	}
	local, roaming := filepath.Join(home, "Local"), filepath.Join(home, "Roaming")
	xdgData, xdgConfig := filepath.Join(home, "xdg", "data"), filepath.Join(home, "xdg", "config")
	appData := map[string]string{"HOME": home, "LOCALAPPDATA": local, "APPDATA": roaming}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	override := filepath.Join(home, "other", "pipe")

	type want struct {
		legacy             bool
		data, config, sock string
	}
	appWant := want{false, filepath.Join(local, "op-authd"), filepath.Join(roaming, "op-authd"), filepath.Join(local, "op-authd", "pipe")}
	xdgWant := want{false, filepath.Join(xdgData, "op-authd"), filepath.Join(xdgConfig, "op-authd"), filepath.Join(xdgData, "op-authd", "pipe")}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want want
	}{
		{"LOCALAPPDATA and APPDATA", appData, appWant},
		{"xdg set", with(appData, "XDG_DATA_HOME", xdgData, "XDG_CONFIG_HOME", xdgConfig), xdgWant},
		{"xdg set with trailing separators", with(appData, "XDG_DATA_HOME", xdgData+`\`, "XDG_CONFIG_HOME", xdgConfig+`\\`), xdgWant},
		{"only data home", with(appData, "XDG_DATA_HOME", xdgData), want{false, xdgWant.data, appWant.config, xdgWant.sock}},
		{"xdg relative", with(appData, "XDG_DATA_HOME", "data", "XDG_CONFIG_HOME", `.\config`), appWant},
		// A path with no drive is relative on Windows: an MSYS-style value
		// counts as unset.
		{"xdg without a drive", with(appData, "XDG_DATA_HOME", "/xdg/data", "XDG_CONFIG_HOME", `\xdg\config`), appWant},
		{"runtime dir ignored", with(appData, "XDG_RUNTIME_DIR", filepath.Join(home, "run")), appWant},
		{"no LOCALAPPDATA or APPDATA", map[string]string{"HOME": home}, want{false,
			filepath.Join(home, "AppData", "Local", "op-authd"), filepath.Join(home, "AppData", "Roaming", "op-authd"),
			filepath.Join(home, "AppData", "Local", "op-authd", "pipe")}},
		{"legacy", with(appData, "HOME", legacyHome), want{true, legacy, legacy, filepath.Join(legacy, "pipe")}},
		{"legacy ignores xdg", with(appData, "HOME", legacyHome, "XDG_DATA_HOME", xdgData), want{true, legacy, legacy, filepath.Join(legacy, "pipe")}},
		{"override", with(appData, "OPX_SOCKET_PATH", override), want{false, appWant.data, appWant.config, override}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := resolve(envFunc(tc.env), noHome)
			if err != nil {
				t.Fatalf("Resolve(%v) error: %v", tc.env, err)
			}
			w := tc.want
			for _, c := range []struct {
				field, got, want string
			}{
				{"DataDir", p.DataDir, w.data},
				{"ConfigDir", p.ConfigDir, w.config},
				{"ConfigFile", p.ConfigFile, filepath.Join(w.config, "config.json")},
				{"PolicyFile", p.PolicyFile, filepath.Join(w.config, "policy.json")},
				{"SocketPath", p.SocketPath, w.sock},
				{"LockFile", p.LockFile, w.sock + ".lock"},
				{"TokenFile", p.TokenFile, filepath.Join(w.data, "token")},
				{"KeyFile", p.KeyFile, filepath.Join(w.data, "tls.key")},
				{"LogFile", p.LogFile, filepath.Join(w.data, "opx-authd.log")},
			} {
				if c.got != c.want {
					t.Errorf("Resolve(%v).%s = %q, want %q", tc.env, c.field, c.got, c.want)
				}
			}
			if p.Legacy != w.legacy {
				t.Errorf("Resolve(%v).Legacy = %v, want %v", tc.env, p.Legacy, w.legacy)
			}
		})
	}
}

// With HOME empty, the home directory is %USERPROFILE% (os.UserHomeDir).
func TestResolveUserProfile(t *testing.T) {
	profile := testdir.New(t)
	t.Setenv("HOME", "")
	t.Setenv("USERPROFILE", profile)
	t.Setenv("LOCALAPPDATA", "")
	t.Setenv("APPDATA", "")
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("OPX_SOCKET_PATH", "")
	p, err := Resolve(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(profile, "AppData", "Local", "op-authd"); p.DataDir != want {
		t.Errorf("Resolve with USERPROFILE=%q and no HOME: DataDir = %q, want %q", profile, p.DataDir, want)
	}
	if want := filepath.Join(profile, "AppData", "Roaming", "op-authd"); p.ConfigDir != want {
		t.Errorf("Resolve with USERPROFILE=%q and no HOME: ConfigDir = %q, want %q", profile, p.ConfigDir, want)
	}
}

// ace is one ACE as a test reads it back.
type ace struct {
	typ, flags byte
	mask       windows.ACCESS_MASK
	sid        string
}

// security reads path's owner, whether its DACL is protected, and its ACEs.
func security(t *testing.T, path string) (owner string, protected bool, aces []ace) {
	t.Helper()
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("GetNamedSecurityInfo(%q): %v", path, err)
	}
	o, _, err := sd.Owner()
	if err != nil {
		t.Fatalf("owner of %q: %v", path, err)
	}
	ctl, _, err := sd.Control()
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		t.Fatalf("DACL of %q = %v, %v; want one", path, dacl, err)
	}
	for i := range uint32(dacl.AceCount) {
		var a *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &a); err != nil {
			t.Fatal(err)
		}
		aces = append(aces, ace{a.Header.AceType, a.Header.AceFlags, a.Mask, (*windows.SID)(unsafe.Pointer(&a.SidStart)).String()})
	}
	return o.String(), ctl&windows.SE_DACL_PROTECTED != 0, aces
}

// wantOwnerOnly fails the test unless path is owned by the current user and
// its DACL grants that user full control (inherited inside when dir) and
// no one else anything: protected, one ACE, on Windows; under wine, which
// makes the descriptor up from the Unix mode, the user's ACE beside the
// SYSTEM one wine always adds, and no protected flag.
func wantOwnerOnly(t *testing.T, path string, dir bool) {
	t.Helper()
	user := me(t).String()
	var flags byte
	if dir {
		flags = windows.OBJECT_INHERIT_ACE | windows.CONTAINER_INHERIT_ACE
	}
	mine := ace{windows.ACCESS_ALLOWED_ACE_TYPE, flags, fileAllAccess, user}
	owner, protected, aces := security(t, path)
	if owner != user {
		t.Errorf("%s is owned by %s, want %s", path, owner, user)
	}
	if underWine() {
		system := ace{windows.ACCESS_ALLOWED_ACE_TYPE, flags, fileAllAccess, "S-1-5-18"}
		for _, a := range aces {
			if a != mine && a != system {
				t.Errorf("%s has ACE %+v; want only %+v (and wine's %+v)", path, a, mine, system)
			}
		}
		if !containsACE(aces, mine) {
			t.Errorf("%s has ACEs %+v; want %+v among them", path, aces, mine)
		}
		return
	}
	if !protected || len(aces) != 1 || aces[0] != mine {
		t.Errorf("%s has protected=%v ACEs %+v; want a protected DACL of %+v alone", path, protected, aces, mine)
	}
}

func containsACE(aces []ace, a ace) bool {
	for _, x := range aces {
		if x == a {
			return true
		}
	}
	return false
}

// setDACL gives path the DACL in sddl (such as "D:P(A;;FA;;;WD)"),
// protected from inheritance, with SetNamedSecurityInfo.
func setDACL(t *testing.T, path, sddl string) {
	t.Helper()
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		t.Fatalf("SecurityDescriptorFromString(%q): %v", sddl, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		t.Fatalf("SetNamedSecurityInfo(%q, %q): %v", path, sddl, err)
	}
}

// setNullDACL gives path a NULL DACL: full access for everyone.
func setNullDACL(t *testing.T, path string) {
	t.Helper()
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION, nil, nil, nil, nil); err != nil {
		t.Fatalf("SetNamedSecurityInfo(%q, NULL DACL): %v", path, err)
	}
}

// nullDACLFault is what the checks say of a NULL DACL: on Windows that it
// is one; under wine, which reads it back as Everyone's full control, that.
func nullDACLFault() string {
	if underWine() {
		return "Everyone"
	}
	return "NULL DACL"
}

// wantErr fails the test unless err is non-nil and holds every want.
func wantErr(t *testing.T, call string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s = nil, want an error containing %q", call, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s = %v, want an error containing %q", call, err, w)
		}
	}
}

func TestEnsureDirWindows(t *testing.T) {
	base := testdir.New(t)
	dir := filepath.Join(base, "a", "b", "c")
	if err := EnsureDir(dir); err != nil {
		t.Fatalf("EnsureDir(%q) = %v, want nil", dir, err)
	}
	if err := EnsureDir(dir); err != nil {
		t.Fatalf("EnsureDir(%q) again = %v, want nil", dir, err)
	}
	for _, d := range []string{filepath.Join(base, "a"), filepath.Join(base, "a", "b"), dir} {
		wantOwnerOnly(t, d, true)
		if err := CheckPrivateDir(d); err != nil {
			t.Errorf("CheckPrivateDir(%q) = %v, want nil", d, err)
		}
	}
	t.Run("what is made inside inherits", func(t *testing.T) {
		if underWine() {
			t.Skip("wine does not pass a directory's ACEs on to new files (it makes their descriptor up from the Unix mode)")
		}
		file := filepath.Join(dir, "plain")
		if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPrivateFile(file); err != nil {
			t.Errorf("ReadPrivateFile of a file os.WriteFile made in %s = %v, want nil", dir, err)
		}
	})
	t.Run("existing dir left as is", func(t *testing.T) {
		open := filepath.Join(base, "open")
		if err := os.Mkdir(open, 0o700); err != nil {
			t.Fatal(err)
		}
		setDACL(t, open, "D:P(A;OICI;FA;;;"+me(t).String()+")(A;OICI;FR;;;WD)")
		if err := EnsureDir(open); err != nil {
			t.Fatalf("EnsureDir(%q) = %v, want nil", open, err)
		}
		if _, _, aces := security(t, open); !containsEveryone(aces) {
			t.Errorf("EnsureDir(%q) changed its ACEs to %+v; want Everyone's left", open, aces)
		}
	})
	t.Run("file in the way", func(t *testing.T) {
		file := filepath.Join(base, "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{file, filepath.Join(file, "sub")} {
			if err := EnsureDir(d); err == nil {
				t.Errorf("EnsureDir(%q) = nil, want an error", d)
			}
		}
	})
}

func containsEveryone(aces []ace) bool {
	for _, a := range aces {
		if a.sid == "S-1-1-0" && a.typ == windows.ACCESS_ALLOWED_ACE_TYPE {
			return true
		}
	}
	return false
}

func TestCheckPrivateDirWindows(t *testing.T) {
	base := testdir.New(t)
	user := me(t).String()
	mkdir := func(name string) string {
		t.Helper()
		d := filepath.Join(base, name)
		if err := EnsureDir(d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	private := mkdir("private")
	withSystem := mkdir("system")
	setDACL(t, withSystem, "D:P(A;OICI;FA;;;"+user+")(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)")
	everyone := mkdir("everyone")
	setDACL(t, everyone, "D:P(A;OICI;FA;;;"+user+")(A;OICI;0x1301bf;;;WD)")
	null := mkdir("null")
	setNullDACL(t, null)
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dir  string
		want []string // substrings of the error; nil means no error
	}{
		{"owner only", private, nil},
		{"SYSTEM and Administrators", withSystem, nil},
		{"Everyone", everyone, []string{"directory " + everyone + " is open to other users", "S-1-1-0) may read and change it",
			`run: icacls "` + everyone + `" /inheritance:r /grant:r "*` + user + `:(OI)(CI)F" /remove "*S-1-1-0"`}},
		{"NULL DACL", null, []string{"directory " + null, nullDACLFault(), `run: icacls "` + null + `"`}},
		{"regular file", file, []string{file, "not a directory"}},
		{"missing", filepath.Join(base, "nope"), []string{"nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.dir == withSystem {
				skipTolerated(t)
			}
			err := CheckPrivateDir(tc.dir)
			if tc.want == nil {
				if err != nil {
					t.Errorf("CheckPrivateDir(%q) = %v, want nil", tc.dir, err)
				}
				return
			}
			wantErr(t, "CheckPrivateDir("+tc.dir+")", err, tc.want...)
		})
	}
	t.Run("symlink", func(t *testing.T) {
		link := filepath.Join(base, "link")
		skipUnlessLinked(t, os.Symlink(private, link), link)
		wantErr(t, "CheckPrivateDir("+link+")", CheckPrivateDir(link), link, "symlink")
	})
}

// skipTolerated skips a test of a DACL that grants SYSTEM and
// Administrators beside the user under wine, which reads any DACL it was
// given back with Everyone in it (unless an ACE denies Everyone): TestInspect
// holds that policy on descriptors in memory instead.
func skipTolerated(t *testing.T) {
	t.Helper()
	if underWine() {
		t.Skip("wine reads a DACL set on a file back with Everyone in it; TestInspect covers SYSTEM and Administrators")
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

// inspectCase is a security descriptor and what the check must say of it.
type inspectCase struct {
	name string
	sd   *windows.SECURITY_DESCRIPTOR
	want []string // substrings of the error; nil means private
}

// The policy on security descriptors made in memory: every case, including
// the ones wine cannot store on a file (a NULL DACL, another owner).
func TestInspect(t *testing.T) {
	const (
		user  = "S-1-5-21-1111-2222-3333-1000"
		other = "S-1-5-21-1111-2222-3333-1001"
	)
	me := sid(t, user)
	fromSDDL := func(sddl string) *windows.SECURITY_DESCRIPTOR {
		t.Helper()
		sd, err := windows.SecurityDescriptorFromString(strings.ReplaceAll(strings.ReplaceAll(sddl, "ME", user), "OTHER", other))
		if err != nil {
			t.Fatalf("SecurityDescriptorFromString(%q): %v", sddl, err)
		}
		return sd
	}
	cases := []inspectCase{
		{"owner only", fromSDDL("O:MED:P(A;OICI;FA;;;ME)"), nil},
		{"SYSTEM and Administrators", fromSDDL("O:MED:P(A;;FA;;;ME)(A;;FA;;;SY)(A;;FA;;;BA)"), nil},
		{"owned by Administrators", fromSDDL("O:BAD:P(A;;FA;;;ME)"), nil},
		{"owned by SYSTEM", fromSDDL("O:SYD:P(A;;FA;;;ME)"), nil},
		{"deny Everyone", fromSDDL("O:MED:P(A;;FA;;;ME)(D;;FA;;;WD)"), nil},
		{"empty DACL", fromSDDL("O:MED:P"), nil},
		{"inherited Everyone", fromSDDL("O:MED:(A;;FR;;;WD)"), []string{"is open to other users", "S-1-1-0) may read it", `/remove "*S-1-1-0"`}},
		{"inherit-only Authenticated Users", fromSDDL("O:MED:P(A;;FA;;;ME)(A;OICIIO;0x1301bf;;;AU)"), []string{"S-1-5-11) may read and change what is made in it"}},
		{"another user", fromSDDL("O:MED:P(A;;FA;;;ME)(A;;FA;;;OTHER)"), []string{other + " has full control of it", `/remove "*` + other + `"`}},
		{"Users may write", fromSDDL("O:MED:P(A;;FW;;;BU)"), []string{"S-1-5-32-545) may change it"}},
		{"two ACEs of one SID", fromSDDL("O:MED:P(A;;FR;;;WD)(A;;FW;;;WD)"), []string{`/remove "*S-1-1-0"` + "\n"}},
		{"another owner", fromSDDL("O:OTHERD:P(A;;FA;;;ME)"), []string{"is owned by " + other + ", not by you (" + user + "); remove it or run as its owner"}},
		{"no DACL", fromSDDL("O:ME"), []string{"has no access list (a NULL DACL), so everyone has full access", `/grant:r "*` + user + `:(OI)(CI)F"`}},
		{"NULL DACL", nullDACL(t, me), []string{"NULL DACL"}},
		{"callback ACE", callbackACE(t, me), []string{"has access rules opx cannot check (ACE types [9])"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := inspect(tc.sd, me)
			if err != nil {
				t.Fatalf("inspect(%s) error: %v", tc.sd, err)
			}
			got := e.err(kindDir, `C:\p`, me)
			if tc.want == nil {
				if got != nil {
					t.Errorf("inspect(%s) = %v, want private", tc.sd, got)
				}
				return
			}
			var np *NotPrivateError
			if !errors.As(got, &np) {
				t.Fatalf("inspect(%s) = %v, want a *NotPrivateError", tc.sd, got)
			}
			// A newline marks where the message must end.
			wantErr(t, "inspect("+tc.sd.String()+")", errors.New(got.Error()+"\n"), tc.want...)
		})
	}
	t.Run("file fix", func(t *testing.T) {
		e, err := inspect(fromSDDL("O:MED:P(A;;FA;;;ME)(A;;FR;;;WD)"), me)
		if err != nil {
			t.Fatal(err)
		}
		want := `private file C:\t is open to other users (` + account(sid(t, "S-1-1-0")) + ` may read it); run: icacls "C:\t" /inheritance:r /grant:r "*` + user + `:F" /remove "*S-1-1-0"`
		if got := e.err(kindFile, `C:\t`, me); got == nil || got.Error() != want {
			t.Errorf("the error for a file open to Everyone = %v, want %s", got, want)
		}
	})
	t.Run("no owner", func(t *testing.T) {
		sd := fromSDDL("D:P(A;;FA;;;ME)")
		if _, err := inspect(sd, me); err == nil || !strings.Contains(err.Error(), "cannot read its owner") {
			t.Errorf("inspect(%s) error = %v, want one saying the owner cannot be read", sd, err)
		}
	})
}

// nullDACL is a descriptor owned by me with a NULL DACL. (SDDL's
// "D:NO_ACCESS_CONTROL" would say it, but wine parses that as an empty DACL.)
func nullDACL(t *testing.T, me *windows.SID) *windows.SECURITY_DESCRIPTOR {
	t.Helper()
	sd, err := windows.NewSecurityDescriptor()
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.SetOwner(me, false); err != nil {
		t.Fatal(err)
	}
	if err := sd.SetDACL(nil, true, false); err != nil {
		t.Fatal(err)
	}
	return sd
}

// callbackACE is a descriptor owned by me whose DACL holds one
// ACCESS_ALLOWED_CALLBACK_ACE (type 9) for Everyone, built byte by byte:
// SDDL has no form for it that wine parses.
func callbackACE(t *testing.T, me *windows.SID) *windows.SECURITY_DESCRIPTOR {
	t.Helper()
	everyone := sid(t, "S-1-1-0")
	sidBytes := unsafe.Slice((*byte)(unsafe.Pointer(everyone)), everyone.Len())
	aceSize := 8 + len(sidBytes)
	acl := make([]byte, 8+aceSize)
	acl[0] = 4 // ACL_REVISION_DS
	binary.LittleEndian.PutUint16(acl[2:], uint16(len(acl)))
	binary.LittleEndian.PutUint16(acl[4:], 1) // one ACE
	a := acl[8:]
	a[0] = 9 // ACCESS_ALLOWED_CALLBACK_ACE_TYPE
	binary.LittleEndian.PutUint16(a[2:], uint16(aceSize))
	binary.LittleEndian.PutUint32(a[4:], windows.FILE_GENERIC_READ)
	copy(a[8:], sidBytes)
	sd, err := windows.NewSecurityDescriptor()
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.SetOwner(me, false); err != nil {
		t.Fatal(err)
	}
	if err := sd.SetDACL((*windows.ACL)(unsafe.Pointer(&acl[0])), true, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runtime.KeepAlive(acl) })
	return sd
}

func TestWriteFileAtomicWindows(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "token")
	for _, content := range []string{"first", "second"} {
		if err := WriteFileAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatalf("WriteFileAtomic(%q, %q, 0600) = %v", path, content, err)
		}
		wantOwnerOnly(t, path, false)
	}
	if got, err := ReadPrivateFile(path); err != nil || string(got) != "second" {
		t.Errorf("ReadPrivateFile(%q) = %q, %v, want %q, nil", path, got, err, "second")
	}
	newPath := filepath.Join(dir, "new")
	if err := WriteFileNew(newPath, []byte("x"), 0o600); err != nil {
		t.Fatalf("WriteFileNew(%q) = %v", newPath, err)
	}
	wantOwnerOnly(t, newPath, false)
	t.Run("a perm open to others keeps the inherited ACL", func(t *testing.T) {
		if underWine() {
			t.Skip("wine keeps no inherited ACL: it makes the descriptor up from the Unix mode")
		}
		shared := filepath.Join(dir, "shared")
		if err := WriteFileAtomic(shared, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, protected, aces := security(t, shared); protected {
			t.Errorf("WriteFileAtomic(%q, _, 0644) made a protected DACL %+v, want the inherited one", shared, aces)
		}
	})
}

func TestReadPrivateFileWindows(t *testing.T) {
	dir := testdir.New(t)
	user := me(t).String()
	mkfile := func(name string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := WriteFileAtomic(p, []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	private := mkfile("private")
	withSystem := mkfile("system")
	setDACL(t, withSystem, "D:P(A;;FA;;;"+user+")(A;;FA;;;SY)(A;;FA;;;BA)")
	everyone := mkfile("everyone")
	setDACL(t, everyone, "D:P(A;;FA;;;"+user+")(A;;FR;;;WD)")
	null := mkfile("null")
	setNullDACL(t, null)
	subdir := filepath.Join(dir, "subdir")
	if err := EnsureDir(subdir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		want []string // substrings of the error; nil means success
	}{
		{"owner only", private, nil},
		{"SYSTEM and Administrators", withSystem, nil},
		{"Everyone may read", everyone, []string{"private file " + everyone + " is open to other users", "S-1-1-0) may read it",
			`run: icacls "` + everyone + `" /inheritance:r /grant:r "*` + user + `:F" /remove "*S-1-1-0"`}},
		{"NULL DACL", null, []string{"private file " + null, nullDACLFault()}},
		{"directory", subdir, []string{subdir, "not a regular file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == withSystem {
				skipTolerated(t)
			}
			got, err := ReadPrivateFile(tc.path)
			if tc.want == nil {
				if err != nil || string(got) != "secret" {
					t.Errorf("ReadPrivateFile(%q) = %q, %v, want %q, nil", tc.path, got, err, "secret")
				}
				return
			}
			wantErr(t, "ReadPrivateFile("+tc.path+")", err, tc.want...)
		})
	}
	t.Run("symlink", func(t *testing.T) {
		link := filepath.Join(dir, "link")
		skipUnlessLinked(t, os.Symlink(private, link), link)
		_, err := ReadPrivateFile(link)
		wantErr(t, "ReadPrivateFile("+link+")", err, link, "symlink")
	})
	t.Run("removed while open", func(t *testing.T) {
		// What OpenPrivate opens others may remove meanwhile, as on Unix.
		f, err := OpenPrivate(private, os.O_RDONLY)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := os.Remove(private); err != nil {
			t.Errorf("os.Remove(%q) while it is open = %v, want nil", private, err)
		}
	})
}
