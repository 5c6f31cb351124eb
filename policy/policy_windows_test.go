package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/internal/testdir"
	"golang.org/x/sys/windows"
)

// TestReadProcessOfAChild: a child's parent is this process, it started
// after us, and its image is what we ran.
func TestReadProcessOfAChild(t *testing.T) {
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "OPX_TEST_SLEEP=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	info, err := ReadProcess(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	self, _ := ReadProcess(os.Getpid())
	if info.PPID != os.Getpid() || !SamePath(info.Path, exe) || info.Start < self.Start {
		t.Errorf("ReadProcess(child) = %+v, want ppid %d, path %s, start after %d", info, os.Getpid(), exe, self.Start)
	}
}

func TestMain(m *testing.M) {
	if os.Getenv("OPX_TEST_SLEEP") != "" {
		time.Sleep(20 * time.Second)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestWindowsPathRules(t *testing.T) {
	dir := testdir.New(t)
	tool := filepath.Join(dir, "Tools", "kubectl.exe")
	os.MkdirAll(filepath.Dir(tool), 0o700)
	os.WriteFile(tool, []byte("MZ"), 0o600)
	home := dir
	sum := sha256.Sum256([]byte("MZ"))
	p, err := Parse([]byte(`{"allow": [
	  {"path": ` + quote(strings.ToUpper(tool)) + `, "refs": ["op://Prod/*"]},
	  {"path": "~\\Tools\\kubectl.exe", "refs": ["op://Home/*"]},
	  {"path": "~/tools/KUBECTL.EXE", "refs": ["op://Slash/*"]},
	  {"exe_sha256": "` + hex.EncodeToString(sum[:]) + `", "refs": ["op://Hash/*"]}
	], "default_deny": true}`))
	if err != nil {
		t.Fatal(err)
	}
	env := Env{Home: home}
	kubectl := Requester{PID: 7, Path: tool}
	other := Requester{PID: 8, Path: `C:\Windows\System32\cmd.exe`}
	for _, tc := range []struct {
		r    Requester
		ref  string
		want bool
	}{
		{kubectl, "op://Prod/db/password", true},   // the upper-cased rule matches
		{kubectl, "op://Home/db/password", true},   // ~\ is the home directory
		{kubectl, "op://Slash/db/password", true},  // ~/ too, and either case
		{kubectl, "op://Other/db/password", false}, // default deny
		{other, "op://Prod/db/password", false},    // a deny by path
		{Requester{PID: 9, Path: strings.ReplaceAll(tool, `\`, `/`)}, "op://Prod/x/y", true},
		{Requester{PID: 10, Path: `\\?\` + tool}, "op://Prod/x/y", true},
		{Requester{PID: 11, Path: `C:\elsewhere\copy.exe`, ExeSHA256: hex.EncodeToString(sum[:])}, "op://Hash/x/y", true},
		{Requester{PID: 12, Path: `C:\elsewhere\copy.exe`, ExeSHA256: strings.Repeat("0", 64)}, "op://Hash/x/y", false},
	} {
		if d := p.Decide(tc.r, Read{Ref: tc.ref}, env); d.Allow != tc.want {
			t.Errorf("Decide(%s, %s) = %+v, want allow %v", tc.r.Path, tc.ref, d, tc.want)
		}
	}
	if _, err := Parse([]byte(`{"allow": [{"path": "kubectl.exe", "refs": ["*"]}]}`)); err == nil {
		t.Errorf("Parse accepted a relative path")
	}
	if _, err := Parse([]byte(`{"allow": [{"path": "\\no-drive\\x.exe", "refs": ["*"]}]}`)); err == nil {
		t.Errorf("Parse accepted a path without a drive")
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }

func TestWindowsInterpreters(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{`C:\Windows\System32\CMD.EXE`, true}, {`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, true},
		{`C:\Program Files\PowerShell\7\pwsh.exe`, true}, {`C:\Windows\System32\wscript.exe`, true},
		{`C:\Windows\System32\cscript.exe`, true}, {`C:\Python311\python.exe`, true}, {`C:\Python311\python3.11.exe`, true},
		{`C:\Windows\py.exe`, true}, {`C:\Tools\kubectl.exe`, false}, {`C:\Tools\op.exe`, false},
	} {
		if _, ok := Interpreter(tc.path, ""); ok != tc.want {
			t.Errorf("Interpreter(%q) = %v, want %v", tc.path, ok, tc.want)
		}
	}
}

// TestJudgeSecurity: what the policy file checks refuse, on security
// descriptors built here (wine keeps no real ACLs on files to test them
// on).
func TestJudgeSecurity(t *testing.T) {
	me, err := currentSID()
	if err != nil {
		t.Fatal(err)
	}
	const other = "S-1-5-21-1-2-3-1001"
	for _, tc := range []struct {
		name, sddl string
		dir        bool
		want       string // "" for accepted
	}{
		{"mine, me alone", "O:%[1]sD:P(A;;FA;;;%[1]s)", false, ""},
		{"others may read", "O:%[1]sD:(A;;FA;;;%[1]s)(A;;FR;;;WD)", false, ""},
		{"SYSTEM and Administrators", "O:BAD:(A;;FA;;;SY)(A;;FA;;;BA)(A;;FR;;;%[1]s)", false, ""},
		{"TrustedInstaller's", "O:" + trustedInstaller + "D:(A;;FA;;;" + trustedInstaller + ")", true, ""},
		{"another's", "O:" + other + "D:(A;;FA;;;%[1]s)", false, "is owned by " + other},
		{"no DACL", "O:%[1]s", false, "NULL DACL"},
		{"Everyone writes", "O:%[1]sD:(A;;FA;;;%[1]s)(A;;FW;;;WD)", false, "writable by others (S-1-1-0)"},
		{"Users may delete", "O:%[1]sD:(A;;FA;;;%[1]s)(A;;SD;;;BU)", false, "writable by others (S-1-5-32-545)"},
		{"another may change the DACL", "O:%[1]sD:(A;;WD;;;" + other + ")", false, "writable by others"},
		{"deny ACEs pass", "O:%[1]sD:(D;;FA;;;WD)(A;;FA;;;%[1]s)", false, ""},
		{"inherit-only is for children", "O:%[1]sD:(A;OICIIO;FA;;;AU)(A;;FA;;;%[1]s)", true, ""},
		{"C:\\ lets users add folders", "O:SYD:(A;;0x4;;;AU)(A;OICIIO;SDGXGWGR;;;AU)(A;;FA;;;SY)", true, ""},
		{"a directory others may empty", "O:%[1]sD:(A;;0x40;;;AU)", true, "writable by others (S-1-5-11)"},
		{"a file others may append to", "O:%[1]sD:(A;;0x4;;;AU)", false, "writable by others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sddl := tc.sddl
			if strings.Contains(sddl, "%[1]s") {
				sddl = strings.ReplaceAll(sddl, "%[1]s", me.String())
			}
			sd, err := windows.SecurityDescriptorFromString(sddl)
			if err != nil {
				t.Fatalf("SDDL %s: %v", sddl, err)
			}
			got := judgeSecurity(sd, me, tc.dir)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("judgeSecurity(%s) = %q, want %q", sddl, got, tc.want)
			}
		})
	}
}

// TestCheckFileOnWindows: a policy file in the user's own directory is
// read; a missing one is no policy; a directory is refused.
func TestCheckFileOnWindows(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "policy.json")
	if err := CheckFile(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CheckFile(missing) = %v, want not exist", err)
	}
	os.WriteFile(path, []byte(`{"allow": []}`), 0o600)
	if err := CheckFile(path); err != nil {
		t.Errorf("CheckFile(%s) = %v, want nil", path, err)
	}
	if b, err := ReadFile(strings.ToUpper(path)); err != nil || string(b) != `{"allow": []}` {
		t.Errorf("ReadFile(upper case) = %q, %v", b, err)
	}
	var fe *FileError
	if err := CheckFile(dir); !errors.As(err, &fe) || !strings.Contains(fe.Problem, "not a regular file") {
		t.Errorf("CheckFile(a directory) = %v, want not a regular file", err)
	}
}

// TestUnsignedProgramIsNotSigned: an unsigned executable (this test
// binary) fails the Authenticode check, and so does a missing file;
// require_signed rules are checkable here, so none is unsatisfiable.
func TestUnsignedProgramIsNotSigned(t *testing.T) {
	check := SignedCheck()
	if check == nil {
		t.Fatal("SignedCheck() is nil on Windows")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if check(exe) {
		t.Errorf("SignedCheck()(%s), an unsigned test binary = true", exe)
	}
	if check(exe + ".missing") {
		t.Errorf("SignedCheck() of a missing file = true")
	}
	p := &Policy{Allow: []Rule{{RequireSigned: true, Refs: []string{"*"}}}}
	if n := p.UnsignableRules(); n != 0 {
		t.Errorf("UnsignableRules() = %d on Windows, want 0", n)
	}
}
