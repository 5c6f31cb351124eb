//go:build unix

package xdg

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// ownerUID returns the uid owning the file fi describes.
func ownerUID(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// readPrivateFlags opens a private file without following a final symlink
// and without blocking on a named pipe.
const readPrivateFlags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
