//go:build windows

package policy

import (
	"path/filepath"
	"strings"
)

// cutHome returns what follows "~\" or "~/" in path (Windows takes either
// separator), and whether path starts so.
func cutHome(path string) (string, bool) {
	if rest, ok := strings.CutPrefix(path, `~\`); ok {
		return rest, true
	}
	return strings.CutPrefix(path, "~/")
}

// underHome reports whether path is written under the home directory ("~\"
// or "~/").
func underHome(path string) bool {
	_, ok := cutHome(path)
	return ok
}

// SamePath reports whether the paths a and b, both absolute, name the same
// file as Windows compares names: case-insensitively, either slash, with or
// without the \\?\ prefix. (NTFS folds case by its own table, which
// strings.EqualFold's Unicode folding matches for every name a program is
// installed under in practice.)
func SamePath(a, b string) bool {
	return strings.EqualFold(normPath(a), normPath(b))
}

// normPath is p cleaned, with \ separators and no \\?\ prefix.
func normPath(p string) string {
	p = filepath.Clean(p)
	if rest, ok := strings.CutPrefix(p, `\\?\UNC\`); ok {
		return `\\` + rest
	}
	if rest, ok := strings.CutPrefix(p, `\\?\`); ok {
		return rest
	}
	return p
}

// programName is an executable's file name as interpreterKind knows it:
// lower case, without .exe or .com (CMD.EXE is cmd; python3.11.exe is
// python3.11, which Interpreter then takes as python).
func programName(base string) string {
	base = strings.ToLower(base)
	for _, ext := range []string{".exe", ".com"} {
		if name, ok := strings.CutSuffix(base, ext); ok {
			return name
		}
	}
	return base
}
