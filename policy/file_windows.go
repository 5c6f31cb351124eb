//go:build windows

package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows the policy file's checks are CheckFile's, by owner SID and
// DACL instead of uid and mode bits:
//
//   - the file and every directory from the volume's root down to it are
//     owned by you, SYSTEM, Administrators or TrustedInstaller (the
//     system's own accounts play root's part; an administrator can take
//     any file anyway);
//   - no allow ACE gives anyone else a right that changes the file (write,
//     append, delete, change its DACL or owner), nor one that lets anyone
//     else delete, rename or re-permission a directory's entries. The right
//     to add entries to a directory is tolerated, as Unix tolerates a
//     sticky root-owned /tmp: C:\ lets every signed-in user make folders,
//     but not rename or remove another's, and what they add is judged by
//     its own owner;
//   - no link, junction or other reparse point is on the way, nor is the
//     file one: opx does not follow them here (it would have to judge the
//     link's owner and the path it names, and Windows lets a link's
//     target be relative to a drive's current directory); the error says
//     so, rather than a link being followed silently.

// trustedOwner reports whether sid may own the policy file or a directory
// above it, beside the user me.
func trustedOwner(sid, me *windows.SID) bool {
	return sid.Equals(me) || sid.IsWellKnown(windows.WinLocalSystemSid) ||
		sid.IsWellKnown(windows.WinBuiltinAdministratorsSid) || isTrustedInstaller(sid)
}

// trustedInstaller is NT SERVICE\TrustedInstaller, which owns C:\Windows
// and C:\Program Files.
const trustedInstaller = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"

func isTrustedInstaller(sid *windows.SID) bool { return sid.String() == trustedInstaller }

// Access rights (winnt.h) that change a file, or a directory's entries.
const (
	fileDeleteChild = 0x40
	fileChanges     = windows.FILE_WRITE_DATA | windows.FILE_APPEND_DATA | windows.DELETE | windows.WRITE_DAC |
		windows.WRITE_OWNER | windows.GENERIC_WRITE | windows.GENERIC_ALL | windows.MAXIMUM_ALLOWED
	dirChanges = fileDeleteChild | windows.DELETE | windows.WRITE_DAC | windows.WRITE_OWNER |
		windows.GENERIC_WRITE | windows.GENERIC_ALL | windows.MAXIMUM_ALLOWED
)

// judgeSecurity says what in sd, the security descriptor of the policy file
// (dir false) or of a directory on the way (dir true), lets someone other
// than me change what the policy is; "" when nothing does.
func judgeSecurity(sd *windows.SECURITY_DESCRIPTOR, me *windows.SID, dir bool) string {
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return "has an owner opx cannot read"
	}
	if !trustedOwner(owner, me) {
		return fmt.Sprintf("is owned by %s, neither you nor SYSTEM, Administrators or TrustedInstaller", owner)
	}
	dacl, _, err := sd.DACL()
	if errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) || err == nil && dacl == nil {
		return "has no access list (a NULL DACL): everyone may change it"
	}
	if err != nil {
		return "has an access list opx cannot read"
	}
	changes := windows.ACCESS_MASK(fileChanges)
	if dir {
		changes = dirChanges
	}
	var who []string
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return "has an access list opx cannot read"
		}
		switch ace.Header.AceType {
		case windows.ACCESS_ALLOWED_ACE_TYPE:
			sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
			if ace.Header.AceFlags&windows.INHERIT_ONLY_ACE == 0 && ace.Mask&changes != 0 && !trustedOwner(sid, me) {
				who = append(who, sid.String())
			}
		case windows.ACCESS_DENIED_ACE_TYPE, 0x6, 0xA, 0xC: // denied, and its object and callback forms
		default: // an allow ACE of a form opx does not read: fail closed
			return fmt.Sprintf("has access rules opx cannot check (ACE type %d)", ace.Header.AceType)
		}
	}
	if len(who) > 0 {
		return "is writable by others (" + strings.Join(who, ", ") + ")"
	}
	return ""
}

// currentSID is the SID of the user this process runs as.
func currentSID() (*windows.SID, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("read the current user's SID: %w", err)
	}
	return tu.User.Sid, nil
}

// checkSecurity judges the file or directory open as h at path.
func checkSecurity(h windows.Handle, path, role string, me *windows.SID, dir bool) error {
	sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("cannot read the owner and access list of %s: %w", path, err)
	}
	problem := judgeSecurity(sd, me, dir)
	if problem == "" {
		return nil
	}
	fix := fmt.Sprintf(`run: icacls "%s" to see who may change it, and keep it yours alone`, path)
	if strings.HasPrefix(problem, "is owned by") {
		fix = "replace it with one of your own, or keep opx's config elsewhere (APPDATA or XDG_CONFIG_HOME)"
	}
	return &FileError{Path: path, Role: role, Problem: problem, Fix: fix}
}

// isReparse reports whether fi, from Lstat or Stat, is a reparse point (a
// symbolic link, a junction, a cloud placeholder...).
func isReparse(fi fs.FileInfo) bool {
	d, ok := fi.Sys().(*syscall.Win32FileAttributeData)
	return ok && d.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0
}

// notFollowed is the error for a reparse point on the way to the policy file.
func notFollowed(p, role string) error {
	return &FileError{Path: p, Role: role, Problem: "is a link or junction (a reparse point), which opx does not follow on Windows",
		Fix: "put the file or directory itself there"}
}

// openNoFollow opens path for access, a reparse point itself rather than
// its target, letting others read, write and delete it meanwhile.
func openNoFollow(path string, access, flags uint32) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return windows.InvalidHandle, err
	}
	return windows.CreateFile(p, access, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_FLAG_OPEN_REPARSE_POINT|flags, 0)
}

// checkDir judges a directory the walk enters.
func checkDir(dir string, me *windows.SID) error {
	const role = "a directory on the way to the policy file"
	h, err := openNoFollow(dir, windows.READ_CONTROL|windows.FILE_READ_ATTRIBUTES, windows.FILE_FLAG_BACKUP_SEMANTICS)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", dir, err)
	}
	defer windows.CloseHandle(h)
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return fmt.Errorf("cannot read %s: %w", dir, err)
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		return notFollowed(dir, role)
	}
	return checkSecurity(h, dir, role, me, true)
}

// walkPolicyPath goes from the root of path's volume down to the policy
// file one component at a time, judging each directory it enters and
// refusing any reparse point, and returns the file's path with its Lstat.
func walkPolicyPath(path string) (string, fs.FileInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	path = filepath.Clean(abs)
	vol := filepath.VolumeName(path)
	if vol == "" {
		return "", nil, fmt.Errorf("policy file %s has no drive or share", path)
	}
	me, err := currentSID()
	if err != nil {
		return "", nil, err
	}
	dir := vol + `\`
	if err := checkDir(dir, me); err != nil {
		return "", nil, err
	}
	names := strings.Split(strings.Trim(path[len(vol):], `\`), `\`)
	for i, name := range names {
		p := filepath.Join(dir, name)
		last := i == len(names)-1
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", nil, err
		case err != nil:
			return "", nil, fmt.Errorf("cannot read %s: %w", p, unwrapPathError(err))
		case isReparse(fi) && last:
			return "", nil, notFollowed(p, "")
		case isReparse(fi):
			return "", nil, notFollowed(p, "a directory on the way to the policy file")
		case last:
			return p, fi, nil
		case !fi.IsDir():
			return "", nil, &FileError{Path: p, Role: "in the policy file's path", Problem: "is not a directory"}
		}
		if err := checkDir(p, me); err != nil {
			return "", nil, err
		}
		dir = p
	}
	// The path was the volume's root: a directory, which the file checks
	// refuse.
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", nil, fmt.Errorf("cannot read %s: %w", dir, unwrapPathError(err))
	}
	return dir, fi, nil
}

// openResolved opens file, the end of the walk, whose Lstat was walked,
// without following a reparse point, and judges the file it opened: the
// one walked, a regular file, yours (or the system's), writable by nobody
// else, at most 1 MiB. linked is always false on Windows (no link is
// followed).
func openResolved(file string, walked fs.FileInfo, linked bool) (*os.File, error) {
	// Backup semantics opens a directory too, for the check below to refuse.
	h, err := openNoFollow(file, windows.GENERIC_READ|windows.READ_CONTROL, windows.FILE_FLAG_BACKUP_SEMANTICS)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &fs.PathError{Op: "open", Path: file, Err: err}
		}
		return nil, fmt.Errorf("cannot read %s: %w", file, err)
	}
	f := os.NewFile(uintptr(h), file)
	fail := func(err error) (*os.File, error) {
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("cannot read %s: %w", file, err))
	}
	switch {
	case !os.SameFile(walked, fi):
		return fail(replaced(file, ""))
	case isReparse(fi):
		return fail(notFollowed(file, ""))
	case !fi.Mode().IsRegular():
		return fail(&FileError{Path: file, Problem: "is not a regular file", Fix: "replace it with a regular file"})
	}
	me, err := currentSID()
	if err != nil {
		return fail(err)
	}
	if err := checkSecurity(h, file, "", me, false); err != nil {
		return fail(err)
	}
	if fi.Size() > maxFileSize {
		return fail(tooLarge(file))
	}
	return f, nil
}
