//go:build windows

package xdg

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows a private directory or file is one whose security descriptor
// says so (see acl_windows.go for what is checked): opx gives it at
// creation, in the security attributes of CreateDirectory and CreateFile,
// never by a change afterwards that would leave a window open.

// mkdirPrivate makes dir with a protected DACL that grants only the current
// user, inheritable, so that what is made inside is private too.
func mkdirPrivate(dir string) error {
	sa, err := privateSecurity(true)
	if err != nil {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	if err := windows.CreateDirectory(p, sa); err != nil {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	return nil
}

// settleDir has nothing to do: mkdirPrivate gave the directory its whole
// DACL, and Windows has no umask to undo.
func settleDir(string) error { return nil }

// privateSecurity is the security of what opx makes private: owned by the
// current user, with a protected DACL (nothing inherited from the parent)
// granting that user full control and no one else anything; for a
// directory, inherited by the files and directories made inside.
func privateSecurity(dir bool) (*windows.SecurityAttributes, error) {
	me, err := currentUser()
	if err != nil {
		return nil, err
	}
	inherit := ""
	if dir {
		inherit = "OICI"
	}
	sd, err := windows.SecurityDescriptorFromString(fmt.Sprintf("O:%sD:P(A;%s;FA;;;%s)", me, inherit, me))
	if err != nil {
		return nil, fmt.Errorf("make an owner-only security descriptor: %w", err)
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	return sa, nil
}

// currentUser is the SID of the user the process runs as.
func currentUser() (*windows.SID, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("read the current user's SID: %w", err)
	}
	return tu.User.Sid, nil
}

// checkPrivate reports an error unless the file or directory at path is
// owned by the current user and open to no one else, by its owner SID and
// DACL (see inspect). It reads them from f, or, when f is nil (a
// directory), from a handle opened here without following a reparse point.
// fi is not needed: Windows keeps neither owner nor ACL in it.
func checkPrivate(kind, path string, _ fs.FileInfo, f *os.File) error {
	var h windows.Handle
	if f != nil {
		h = windows.Handle(f.Fd())
	} else {
		dh, err := openNoFollow(path, windows.READ_CONTROL|windows.FILE_READ_ATTRIBUTES, windows.FILE_FLAG_BACKUP_SEMANTICS)
		if err != nil {
			return fmt.Errorf("check %s %s: %w", kind, path, err)
		}
		defer windows.CloseHandle(dh)
		var info windows.ByHandleFileInformation
		if err := windows.GetFileInformationByHandle(dh, &info); err != nil {
			return fmt.Errorf("check %s %s: %w", kind, path, err)
		}
		if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
			// Lstat saw a directory; a link was put there since.
			return fmt.Errorf("%s %s is a reparse point (a link or a junction); opx needs a real directory it owns: remove the link and let opx create the directory", kind, path)
		}
		h = dh
	}
	sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("%s %s: cannot read its owner and access list: %w", kind, path, err)
	}
	me, err := currentUser()
	if err != nil {
		return fmt.Errorf("check %s %s: %w", kind, path, err)
	}
	e, err := inspect(sd, me)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, path, err)
	}
	return e.err(kind, path, me)
}

// openNoFollow opens path with access for a caller's check, without
// following a reparse point at path, letting others read, write, rename
// and delete it meanwhile as they could on Unix.
func openNoFollow(path string, access, flags uint32) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return windows.InvalidHandle, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, access, shareAll, nil, windows.OPEN_EXISTING,
		windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT|flags, 0)
	if err != nil {
		return windows.InvalidHandle, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return h, nil
}

// shareAll lets others read, write, rename and delete a file opx holds
// open, as Unix does: a log or token replaced or removed while open must
// not fail for the one who does it.
const shareAll = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE

// openPrivate is OpenPrivate: FILE_FLAG_OPEN_REPARSE_POINT opens a link
// itself rather than its target (so that the caller sees it is not a
// regular file), and a file created gets privateSecurity in CreateFile.
// Every handle may read its security and attributes (the checks need
// both); os.O_APPEND gives every write right but FILE_WRITE_DATA, as Go's
// os.OpenFile does, so each write goes to the end. A read-only open may
// open a directory, as on Unix, for the caller to refuse.
func openPrivate(path string, flag int) (*os.File, error) {
	access := uint32(windows.READ_CONTROL | windows.FILE_READ_ATTRIBUTES | windows.SYNCHRONIZE)
	flags := uint32(windows.FILE_ATTRIBUTE_NORMAL | windows.FILE_FLAG_OPEN_REPARSE_POINT)
	switch flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) {
	case os.O_RDONLY:
		access |= windows.GENERIC_READ
		flags |= windows.FILE_FLAG_BACKUP_SEMANTICS
	case os.O_WRONLY:
		access |= windows.GENERIC_WRITE
	case os.O_RDWR:
		access |= windows.GENERIC_READ | windows.GENERIC_WRITE
	}
	if flag&os.O_APPEND != 0 {
		access &^= windows.GENERIC_WRITE
		access |= windows.FILE_APPEND_DATA | windows.FILE_WRITE_ATTRIBUTES | windows.FILE_WRITE_EA | windows.STANDARD_RIGHTS_WRITE
	}
	create := uint32(windows.OPEN_EXISTING)
	var sa *windows.SecurityAttributes
	if flag&os.O_CREATE != 0 {
		create = windows.CREATE_NEW
		var err error
		if sa, err = privateSecurity(false); err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
	}
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, access, shareAll, sa, create, flags, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// createTemp creates a new temporary file in dir for WriteFileAtomic and
// WriteFileNew, its name pattern's "*" replaced by a random number. A perm
// with no group or other bits makes it private from its creation
// (OpenPrivate); any other perm leaves it the ACL the directory passes on,
// as any Windows program's file gets.
func createTemp(dir, pattern string, perm os.FileMode) (*os.File, error) {
	prefix, suffix, _ := strings.Cut(pattern, "*")
	for range 100 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)+suffix)
		var f *os.File
		var err error
		if perm&0o077 == 0 {
			f, err = OpenPrivate(name, os.O_RDWR|os.O_CREATE|os.O_EXCL)
		} else {
			f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		}
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, pattern), Err: fs.ErrExist}
}

// setMode has nothing to set: the file's DACL came with it (createTemp),
// and the one mode bit Windows has, read-only, is left off so that the
// next WriteFileAtomic can replace the file.
func setMode(*os.File, os.FileMode) error { return nil }

// replace renames the finished temporary file tmp over path, written
// through to the disk before it returns (MOVEFILE_WRITE_THROUGH), which
// stands in for the directory sync of Unix.
func replace(tmp, path string) error {
	return moveFile(tmp, path, windows.MOVEFILE_REPLACE_EXISTING)
}

// linkNew puts the finished temporary file tmp in place at path with a
// rename that does not replace (no MOVEFILE_REPLACE_EXISTING), failing with
// an error matching fs.ErrExist when path exists; it needs no hard links,
// which FAT volumes lack.
func linkNew(tmp, path string) error {
	return moveFile(tmp, path, 0)
}

// moveFile renames from to to with MoveFileEx, written through.
func moveFile(from, to string, flags uint32) error {
	f, err := windows.UTF16PtrFromString(from)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	t, err := windows.UTF16PtrFromString(to)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	if err := windows.MoveFileEx(f, t, flags|windows.MOVEFILE_WRITE_THROUGH); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// syncDir has nothing to do on Windows, which offers no way to flush a
// directory: the rename was written through (moveFile).
func syncDir(string) error { return nil }
