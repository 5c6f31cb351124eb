package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/windows"

	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/self"
)

// shimPath is where the shim of name goes in dir: name.exe.
func shimPath(dir, name string) string { return filepath.Join(dir, name+".exe") }

// linkShim makes link a hard link to exe: a symbolic link needs a privilege
// (or developer mode) on Windows, a hard link does not, and opx tells
// itself apart by file identity either way. A link that is opx already is
// left: Windows cannot replace a running program's file, and it is the same
// file. Otherwise a new link under a temporary name is renamed into place,
// so that at no moment is there something else at the link's path.
func linkShim(exe, dir, name, link string) error {
	if self.IsOpx(link) {
		return nil
	}
	tmp := filepath.Join(dir, "."+name+".opx-tmp.exe")
	os.Remove(tmp)
	if err := os.Link(exe, tmp); err != nil {
		e := &client.Error{Message: err.Error(), Err: err}
		if errors.Is(err, windows.ERROR_NOT_SAME_DEVICE) {
			e.Hint = "a hard link must be on opx.exe's volume: choose a directory there"
		}
		return e
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return &client.Error{Message: err.Error(), Err: err}
	}
	return nil
}

// removeShim removes the link. Windows refuses to remove a link to a program
// that runs (this opx is one): then the link is renamed aside, out of PATH's
// reach, for the user to delete later.
func removeShim(link string) (note string, err error) {
	err = os.Remove(link)
	if err == nil || !errors.Is(err, os.ErrPermission) {
		return "", err
	}
	aside := link + ".opx-removed-" + strconv.Itoa(os.Getpid())
	if os.Rename(link, aside) != nil {
		return "", err
	}
	return fmt.Sprintf(" (opx runs: moved to %s, delete it once opx has exited)", aside), nil
}

// pathAdvice says how to put dir first in PATH.
func pathAdvice(dir string) string {
	return fmt.Sprintf("  PowerShell: $env:Path = %q + ';' + $env:Path\n  for good:   Settings > System > About > Advanced system settings > Environment Variables, Path of your user\n", dir)
}

// danglingOpx reports false: a hard link cannot dangle.
func danglingOpx(string) bool { return false }

// firstOnPath is the first name on PATH (with PATHEXT), opx or not.
func firstOnPath(name string) string {
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if !filepath.IsAbs(d) {
			continue
		}
		if p, err := exec.LookPath(filepath.Join(d, name)); err == nil {
			return p
		}
	}
	return ""
}
