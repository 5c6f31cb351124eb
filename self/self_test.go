package self

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// exeName is name as a program file is named on this OS.
func exeName(name string) string {
	if runtime.GOOS == "windows" {
		return name + ".exe"
	}
	return name
}

// The real op is the first op on PATH that is not opx: a hard link to opx
// (what opx shim install makes on Windows) is skipped by file identity,
// and on Windows "op" finds op.exe through PATHEXT.
func TestLookPathSkipsALinkToOpx(t *testing.T) {
	me, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Beside the binary, on its volume: wine gives each drive letter its
	// own volume serial number, even for one file system.
	shimDir, realDir := tempDirBeside(t, me), tempDirBeside(t, me)
	link := filepath.Join(shimDir, exeName("op"))
	if err := os.Link(me, link); err != nil {
		t.Skipf("no hard link here: %v", err)
	}
	real := filepath.Join(realDir, exeName("op"))
	if err := os.WriteFile(real, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATHEXT", ".COM;.EXE;.BAT")

	t.Setenv("PATH", strings.Join([]string{shimDir, realDir}, string(os.PathListSeparator)))
	if !IsOpx(link) {
		t.Errorf("IsOpx(%q) = false, want true (a hard link to the running binary)", link)
	}
	if IsOpx(real) {
		t.Errorf("IsOpx(%q) = true, want false", real)
	}
	if got, err := LookPath("op"); err != nil || !sameName(got, real) {
		t.Errorf("LookPath(op) = %q, %v; want %q", got, err, real)
	}

	t.Setenv("PATH", shimDir)
	if got, err := LookPath("op"); !errors.Is(err, ErrOnlyOpx) || !NotFound(err) {
		t.Errorf("LookPath(op) with only opx on PATH = %q, %v; want ErrOnlyOpx", got, err)
	}
	if got, err := LookPath(link); !errors.Is(err, ErrOnlyOpx) {
		t.Errorf("LookPath(%q) = %q, %v; want ErrOnlyOpx", link, got, err)
	}
}

// sameName reports whether two paths name the same file by name (Windows
// may give back another case of a name it matched).
func sameName(a, b string) bool {
	if runtime.GOOS == "windows" {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// tempDirBeside makes a directory in path's directory, removed at the end
// as far as it can be: Windows refuses to remove a link to a running
// program, which go test's own clean-up of its work directory then removes.
func tempDirBeside(t *testing.T, path string) string {
	t.Helper()
	dir, err := os.MkdirTemp(filepath.Dir(path), "self-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
