//go:build unix

package policy

import "strings"

// cutHome returns what follows "~/" in path, and whether path starts so.
func cutHome(path string) (string, bool) { return strings.CutPrefix(path, "~/") }

// underHome reports whether path is written under the home directory ("~/").
func underHome(path string) bool {
	_, ok := cutHome(path)
	return ok
}

// SamePath reports whether the paths a and b, both real and absolute, name
// the same file as the system compares names: byte for byte on Unix.
func SamePath(a, b string) bool { return a == b }

// programName is an executable's file name as interpreterKind knows it:
// itself on Unix.
func programName(base string) string { return base }
