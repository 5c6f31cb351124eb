//go:build unix

package cli

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ownerOf is the uid that owns the file fi describes.
func ownerOf(fi fs.FileInfo) (int, bool) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), true
	}
	return 0, false
}

// rootOwned reports whether path (a link) and its directory belong to root
// and are writable by nobody else, so that no program of the user can
// re-point it. As root, nothing counts: root can re-point anything.
func rootOwned(path string) bool {
	if os.Geteuid() == 0 {
		return false
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Lstat(p)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || (fi.Mode()&fs.ModeSymlink == 0 && fi.Mode().Perm()&0o022 != 0) {
			return false
		}
	}
	return true
}
