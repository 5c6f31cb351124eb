package self

import (
	"os/exec"
	"path/filepath"
	"strings"
)

// pathChars are the characters that make a name a path, not a PATH lookup:
// C:op.exe, dir\op and dir/op all name a file.
const pathChars = `:\/`

// findIn returns the program name names in dir: dir\name when name has an
// extension and is a file, else dir\name with the first extension of
// PATHEXT (.COM;.EXE;.BAT;.CMD... when unset) that is a file, as
// exec.LookPath finds it.
func findIn(dir, name string) (string, bool) {
	p, err := exec.LookPath(filepath.Join(dir, name))
	return p, err == nil
}

// trimExe strips a trailing .exe, whatever its case, and lowers the case of
// the rest: Windows names files without regard to case.
func trimExe(name string) string {
	name = strings.ToLower(name)
	return strings.TrimSuffix(name, ".exe")
}
