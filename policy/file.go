package policy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// maxLinks bounds the links followed on the way to the policy file, as
// Linux bounds a path's (MAXSYMLINKS).
const maxLinks = 40

// FileError is returned when the policy file, a link on the way to it or a
// directory holding either could be changed by a user other than you and
// root, or when the file is not one opx reads (not a regular file, larger
// than 1 MiB, behind too many links). The rule is sshd's StrictModes, with
// links: see CheckFile.
type FileError struct {
	Path string // the file, link or directory at fault
	// Role says what Path is to the policy file when it is not the file
	// named by the configured path itself: "a directory on the way to the
	// policy file". "" when it is.
	Role    string
	Problem string // what is wrong: "is writable by others (mode 0777)"
	Fix     string // what to do, as a command where one does it; "" when none
}

func (e *FileError) Error() string {
	s := e.Path
	if e.Role != "" {
		s += " (" + e.Role + ")"
	}
	s += " " + e.Problem
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}

// danglingError is returned when the policy file is a link, or a chain of
// links, whose end is missing: it matches fs.ErrNotExist, but it is a
// policy the user meant (a Nix store path not built yet, or collected), not
// the absence of one.
type danglingError struct{ *FileError }

func (e *danglingError) Unwrap() error { return fs.ErrNotExist }

// danglingReason says why a policy that cannot be found is still a policy
// (a link to a missing file); "" when err is not that.
func danglingReason(err error) string {
	var d *danglingError
	if errors.As(err, &d) {
		return d.Error()
	}
	return ""
}

// CheckFile reports whether the policy file at path may be used, judging it
// as the daemon does before every decision. It returns an error matching
// fs.ErrNotExist when nothing is at path (no policy) and the directories
// above it are safe, and a *FileError when:
//
//   - the file, or a link on the way to it, is owned by neither you (the
//     effective uid) nor root: root is allowed so that Nix and Home Manager
//     can link policy.json into the root-owned /nix/store;
//   - a directory from / down to the file, or down to a link on the way, is
//     owned by neither you nor root, or is writable by group or others,
//     unless it is root's and sticky (/tmp, /nix/store), where others
//     cannot rename or remove what is not theirs;
//   - the file is writable by group or others, not a regular file, or
//     larger than 1 MiB, or more than 40 links lead to it;
//   - the end of the links is missing.
//
// Links are followed one at a time (each relative to the directory that
// holds it) and the file reached is opened without following a link and
// compared with what the walk saw, so a swap between the two is refused.
// The file's content is not parsed.
func CheckFile(path string) error {
	f, err := openPolicyFile(path)
	if d := (*danglingError)(nil); errors.As(err, &d) {
		return d.FileError
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// ReadFile reads the policy file at path after the checks of CheckFile, as
// the daemon reads it: what `opx audit -i` adds its rules to.
func ReadFile(path string) ([]byte, error) {
	b, err := readPolicyFile(path)
	if d := (*danglingError)(nil); errors.As(err, &d) {
		return nil, d.FileError
	}
	return b, err
}

// readPolicyFile reads the policy file at path after the checks of
// CheckFile. A missing file gives an error matching fs.ErrNotExist (a
// *danglingError when a link is there).
func readPolicyFile(path string) ([]byte, error) {
	f, err := openPolicyFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", f.Name(), err)
	}
	if len(b) > maxFileSize {
		return nil, tooLarge(f.Name())
	}
	return b, nil
}

// openPolicyFile resolves path (walkPolicyPath), then opens the file it
// reaches (openResolved).
func openPolicyFile(path string) (*os.File, error) {
	// Nothing at path is no policy only when the directories above it are
	// safe: in one others may write, another user could have removed the
	// file the user put there (walkPolicyPath checks the directories it
	// enters before it finds the file missing, and fails closed).
	file, fi, err := walkPolicyPath(path)
	if err != nil {
		return nil, err
	}
	return openResolved(file, fi, file != filepath.Clean(path))
}

// replaced is the error for a file that changed between the walk and the
// open: the next decision reads it again.
func replaced(file, role string) error {
	return &FileError{Path: file, Role: role, Problem: "was replaced while opx read it (it is read again at the next decision)"}
}

func tooLarge(file string) error {
	return &FileError{Path: file, Problem: fmt.Sprintf("is larger than %d bytes", maxFileSize)}
}

// unwrapPathError drops the *fs.PathError wrapper, whose text repeats the
// path the caller names already.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
