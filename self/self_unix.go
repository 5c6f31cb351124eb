//go:build unix

package self

import (
	"os"
	"path/filepath"
)

// pathChars are the characters that make a name a path, not a PATH lookup.
const pathChars = "/"

// findIn returns dir/name when it is an executable file.
func findIn(dir, name string) (string, bool) {
	p := filepath.Join(dir, name)
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", false
	}
	return p, true
}

// trimExe returns name as it is: a program's name has no extension here.
func trimExe(name string) string { return name }
