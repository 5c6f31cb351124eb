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
	"sync"
)

var (
	exeOnce sync.Once
	exeInfo os.FileInfo
)

// executable is opx's own file, links resolved.
func executable() os.FileInfo {
	exeOnce.Do(func() {
		if p, err := os.Executable(); err == nil {
			if p, err = filepath.EvalSymlinks(p); err == nil {
				exeInfo, _ = os.Stat(p)
			}
		}
	})
	return exeInfo
}

// IsOpx reports whether path is opx's own executable (the same file, by
// device and inode, through any link).
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

// LookPath finds name as exec.LookPath does, skipping every entry of PATH
// where name is opx itself. A name with a slash is used as it is, unless
// it is opx.
func LookPath(name string) (string, error) {
	if strings.ContainsRune(name, '/') {
		p, err := exec.LookPath(name)
		if err == nil && IsOpx(p) {
			return "", &exec.Error{Name: name, Err: ErrOnlyOpx}
		}
		return p, err
	}
	sawOpx := false
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			continue
		}
		if IsOpx(p) {
			sawOpx = true
			continue
		}
		if !filepath.IsAbs(p) {
			if abs, err := filepath.Abs(p); err == nil {
				p = abs
			}
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
	return errors.Is(err, exec.ErrNotFound) || errors.Is(err, ErrOnlyOpx) || errors.Is(err, fs.ErrNotExist)
}
