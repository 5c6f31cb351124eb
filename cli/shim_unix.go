//go:build unix

package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opxhq/opx/client"
)

// shimPath is where the shim of name goes in dir.
func shimPath(dir, name string) string { return filepath.Join(dir, name) }

// linkShim makes link a symbolic link to exe: a new link under a temporary
// name, renamed into place, so that at no moment is there no op, or
// something else, at the link's path.
func linkShim(exe, dir, name, link string) error {
	tmp := filepath.Join(dir, "."+name+".opx-tmp")
	os.Remove(tmp)
	if err := os.Symlink(exe, tmp); err != nil {
		return &client.Error{Message: err.Error(), Err: err}
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return &client.Error{Message: err.Error(), Err: err}
	}
	return nil
}

// removeShim removes the link.
func removeShim(link string) (note string, err error) { return "", os.Remove(link) }

// pathAdvice says how to put dir first in PATH.
func pathAdvice(dir string) string {
	return fmt.Sprintf("  bash, zsh: export PATH=%s:\"$PATH\"\n  fish:      fish_add_path --prepend %s\n", pathQuote(dir), pathQuote(dir))
}

// danglingOpx reports whether link is a symbolic link to an opx that is
// gone (a package manager moved it on upgrade).
func danglingOpx(link string) bool {
	target, err := os.Readlink(link)
	if err != nil || filepath.Base(target) != "opx" {
		return false
	}
	_, err = os.Stat(link)
	return errors.Is(err, fs.ErrNotExist)
}

// firstOnPath is the first name on PATH, opx or not.
func firstOnPath(name string) string {
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
