//go:build unix

package audit

import (
	"fmt"
	"os"
	"syscall"
)

// fitFile is what unfit says the log writes to.
const fitFile = "a regular 0600 file of its own"

// ownership says what, beyond its kind, keeps the regular file fi (at
// path) from being the log's: another owner than euid, another name, a
// mode other than 0600; and the fix. "" means nothing does.
func ownership(_ string, fi os.FileInfo, euid int) (what, fix string) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", ""
	}
	switch perm := uint32(st.Mode) & 0o7777; {
	case int(st.Uid) != euid:
		return fmt.Sprintf("is owned by uid %d, not %d", st.Uid, euid), "remove it"
	case st.Nlink != 1:
		return fmt.Sprintf("has %d hard links", st.Nlink), "remove it"
	case perm != 0o600:
		return fmt.Sprintf("has mode %04o", perm), "chmod 600 it or remove it"
	}
	return "", ""
}
