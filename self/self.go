// Package self tells opx's own executable apart from the programs it stands
// in for: when opx is installed as `op`, `vault` or `bao` (a link early in
// PATH), the real program is the first one on PATH that is not opx, and
// neither the shim's pass-through nor the daemon's 1Password backend may
// ever run opx thinking it is op.
package self

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// executable is opx's own file, links resolved, looked up at each call: a
// long-running daemon outlives an upgrade that puts a new file (another
// inode) at opx's path, and the shim links to that path.
func executable() os.FileInfo {
	p, err := os.Executable()
	if err != nil {
		return nil
	}
	if p, err = filepath.EvalSymlinks(p); err != nil {
		return nil
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil
	}
	return fi
}

// IsOpx reports whether path is opx's own executable (the same file, by
// device and inode, or on Windows volume serial number and file index,
// through any link).
func IsOpx(path string) bool {
	me := executable()
	if me == nil {
		return false
	}
	fi, err := os.Stat(path)
	return err == nil && os.SameFile(fi, me)
}

// ErrOnlyOpx is the error of LookPath when every program of that name on
// PATH is opx.
var ErrOnlyOpx = errors.New("only opx itself is on PATH under that name")

// ErrUnknownSelf is the error of LookPath when opx cannot find its own
// executable (no /proc): it could not tell itself from op, and refuses.
var ErrUnknownSelf = errors.New("opx cannot find its own executable to tell it apart")

// LookPath finds name as exec.LookPath does, skipping every entry of PATH
// where name is opx itself and every relative entry (".", "" or "bin":
// exec.LookPath refuses those too). A name with a slash (on Windows also a
// backslash or a colon) is used as it is, unless it is opx. On Windows a
// name is tried with each extension of PATHEXT, as exec.LookPath does, and
// opx is told apart by volume serial number and file index, which a hard
// link (op.exe, made by opx shim install) shares with opx.exe.
func LookPath(name string) (string, error) {
	if executable() == nil {
		return "", &exec.Error{Name: name, Err: ErrUnknownSelf}
	}
	if strings.ContainsAny(name, pathChars) {
		p, err := exec.LookPath(name)
		if err == nil && IsOpx(p) {
			return "", &exec.Error{Name: name, Err: ErrOnlyOpx}
		}
		return p, err
	}
	sawOpx := false
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p, ok := findIn(dir, name)
		if !ok {
			continue
		}
		if IsOpx(p) {
			sawOpx = true
			continue
		}
		return p, nil
	}
	if sawOpx {
		return "", &exec.Error{Name: name, Err: ErrOnlyOpx}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// NotFound reports whether err says the program is not there (not found,
// or only opx).
func NotFound(err error) bool {
	return errors.Is(err, exec.ErrNotFound) || errors.Is(err, ErrOnlyOpx) || errors.Is(err, ErrUnknownSelf) || errors.Is(err, fs.ErrNotExist)
}

// Name is the name a program was run as, from its argv[0]: the base name,
// and on Windows without its .exe, in lower case (OP.EXE is op), as the
// file system there ignores case.
func Name(arg0 string) string {
	return trimExe(filepath.Base(arg0))
}
