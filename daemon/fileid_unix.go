//go:build unix

package daemon

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// fileKey is the identity and state of the open file f (fi its Stat).
func fileKey(f *os.File, fi os.FileInfo) (exeKey, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return exeKey{}, fmt.Errorf("no file identity for %s", f.Name())
	}
	return exeKey{dev: uint64(st.Dev), ino: uint64(st.Ino), size: fi.Size(), ctime: ctimeOf(st), mtime: fi.ModTime().UnixNano()}, nil
}

// fileID is fi's device and inode, or "" where the system has none.
func fileID(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(st.Ino, 10)
	}
	return ""
}
