//go:build unix

package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// walkPolicyPath resolves path as the kernel would, one component at a
// time from /, without letting the kernel follow any link: it checks each
// directory it enters and each link it follows (checkDir, checkLink), and
// returns the real path of the file at the end with its Lstat. The file
// itself is judged after it is opened.
func walkPolicyPath(path string) (string, fs.FileInfo, error) {
	if !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", nil, fmt.Errorf("cannot read %s: %w", path, err)
		}
		path = abs
	}
	path = filepath.Clean(path)
	euid := os.Geteuid()
	root, err := os.Lstat("/")
	if err != nil {
		return "", nil, fmt.Errorf("cannot read /: %w", unwrapPathError(err))
	}
	if err := checkDir("/", root, euid); err != nil {
		return "", nil, err
	}
	// dir is always a real directory (no link in it) every ancestor of
	// which was entered, and checked, on the way down: ".." is taken in it,
	// as the kernel takes it, not in the text of the path.
	dir := "/"
	todo := strings.Split(path, "/")
	links := 0
	var last *FileError // the last link that stood for the file itself
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			dir = filepath.Dir(dir)
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && last != nil {
				return "", nil, &danglingError{last}
			}
			if errors.Is(err, fs.ErrNotExist) {
				return "", nil, err
			}
			return "", nil, fmt.Errorf("cannot read %s: %w", p, unwrapPathError(err))
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			role := "a link on the way to the policy file"
			if p == path {
				role = "a link"
			}
			if err := checkLink(p, role, fi, euid); err != nil {
				return "", nil, err
			}
			if links++; links > maxLinks {
				return "", nil, &FileError{Path: path, Problem: fmt.Sprintf("leads through more than %d links", maxLinks),
					Fix: "link it to the file directly"}
			}
			target, err := os.Readlink(p)
			if err != nil {
				return "", nil, fmt.Errorf("cannot read %s: %w", p, unwrapPathError(err))
			}
			if len(todo) == 0 {
				last = &FileError{Path: p, Problem: "is a link to " + target + ", which does not exist",
					Fix: "build or restore what it names, or remove the link"}
			}
			if filepath.IsAbs(target) {
				dir = "/"
			}
			todo = append(strings.Split(target, "/"), todo...)
		case len(todo) == 0:
			return p, fi, nil
		case fi.IsDir():
			if err := checkDir(p, fi, euid); err != nil {
				return "", nil, err
			}
			dir = p
		default:
			return "", nil, &FileError{Path: p, Role: "in the policy file's path", Problem: "is not a directory"}
		}
	}
	// The path ended in "..": what it names is a directory, which the
	// file checks refuse.
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", nil, fmt.Errorf("cannot read %s: %w", dir, unwrapPathError(err))
	}
	return dir, fi, nil
}

// openResolved opens file, the end of the walk, whose Lstat was walked,
// and judges the file it opened: the one walked (so that a file or link
// put there since is refused), a regular file, yours or root's, writable by
// nobody else, at most 1 MiB. linked says the file was reached through
// links, which its messages say.
func openResolved(file string, walked fs.FileInfo, linked bool) (*os.File, error) {
	role := ""
	if linked {
		role = "the policy file, through links"
	}
	// O_NOFOLLOW: a link put there since the walk is not followed.
	// O_NONBLOCK: a FIFO planted here must not hang the daemon.
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if errors.Is(err, syscall.ELOOP) {
			return nil, replaced(file, role)
		}
		return nil, fmt.Errorf("cannot read %s: %w", file, unwrapPathError(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot read %s: %w", file, err)
	}
	if err := checkFile(file, role, walked, fi); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkFile judges the opened file (fi, from fstat) against the one the
// walk saw there.
func checkFile(file, role string, walked, fi fs.FileInfo) error {
	if !os.SameFile(walked, fi) {
		return replaced(file, role)
	}
	if !fi.Mode().IsRegular() {
		return &FileError{Path: file, Role: role, Problem: "is not a regular file", Fix: "replace it with a regular file"}
	}
	if uid, ok := ownerOf(fi); !ok || (uid != os.Geteuid() && uid != 0) {
		return &FileError{Path: file, Role: role, Problem: fmt.Sprintf("is owned by uid %d, neither you nor root", uid),
			Fix: "replace it with a file of your own"}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return &FileError{Path: file, Role: role, Problem: fmt.Sprintf("is writable by others (mode %04o)", perm),
			Fix: "run: chmod go-w " + file}
	}
	if fi.Size() > maxFileSize {
		return tooLarge(file)
	}
	return nil
}

// checkLink judges a link on the way to the policy file: its owner decides
// where it points (a link's mode means nothing), so it must be yours or
// root's. The directory holding it was checked when the walk entered it.
func checkLink(link, role string, fi fs.FileInfo, euid int) error {
	if uid, ok := ownerOf(fi); !ok || (uid != euid && uid != 0) {
		return &FileError{Path: link, Role: role, Problem: fmt.Sprintf("is owned by uid %d, neither you nor root", uid),
			Fix: "run: rm " + link + ", then put your own file or link there"}
	}
	return nil
}

// checkDir judges a directory the walk enters: yours or root's, and
// writable by nobody else, unless root's and sticky (/tmp, /nix/store:
// others may add entries there but not rename or remove ours, and each
// entry's owner is judged on its own).
func checkDir(dir string, fi fs.FileInfo, euid int) error {
	const role = "a directory on the way to the policy file"
	uid, ok := ownerOf(fi)
	if !ok || (uid != euid && uid != 0) {
		return &FileError{Path: dir, Role: role, Problem: fmt.Sprintf("is owned by uid %d, neither you nor root", uid),
			Fix: fmt.Sprintf("run: sudo chown %d %s, or keep opx's config elsewhere (XDG_CONFIG_HOME)", euid, dir)}
	}
	if fi.Mode().Perm()&0o022 == 0 || (uid == 0 && fi.Mode()&fs.ModeSticky != 0) {
		return nil
	}
	mode := fi.Mode().Perm()
	if fi.Mode()&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return &FileError{Path: dir, Role: role, Problem: fmt.Sprintf("is writable by others (mode %04o)", mode),
		Fix: "run: chmod go-w " + dir}
}

// ownerOf returns the uid that owns fi's file.
func ownerOf(fi fs.FileInfo) (int, bool) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), true
	}
	return -1, false
}
