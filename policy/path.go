package policy

import (
	"path/filepath"
	"strings"
)

// ResolvePath turns a rule's path (or one a user types to `opx policy
// check`) into the real path of the file it names today: "~/" (on Windows
// also "~\") is the home directory, and every link is followed, as the
// kernel's /proc/PID/exe shows an executable. A path that cannot be
// resolved (it does not exist) is returned cleaned, so it still matches a
// process whose executable has that exact path. The daemon and `opx policy
// check` both use this function; on Windows, compare what it returns with
// SamePath (names there are case-insensitive).
func ResolvePath(path, home string) string {
	if rest, ok := cutHome(path); ok && home != "" {
		path = filepath.Join(home, rest)
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		if abs, err := filepath.Abs(real); err == nil {
			return abs
		}
		return real
	}
	return filepath.Clean(path)
}

// interpreterKind says what kind of program name (as programName gives it)
// is when it runs whatever it is told ("a shell"), or "". A switch, not a
// map: nothing is built when the program starts. Windows' names are here
// too (cmd, wscript, py...): harmless elsewhere, one list to read.
func interpreterKind(name string) string {
	switch name {
	case "sh", "bash", "dash", "zsh", "fish", "ksh", "mksh", "pdksh", "tcsh", "csh", "ash", "busybox",
		"elvish", "nu", "xonsh", "pwsh", "powershell", "powershell_ise", "rc", "yash", "osh", "cmd":
		return "a shell"
	case "python", "pypy", "perl", "ruby", "node", "nodejs", "deno", "bun", "php", "lua", "luajit",
		"tclsh", "wish", "expect", "awk", "gawk", "mawk", "nawk", "osascript", "java", "guile", "racket",
		"R", "Rscript", "julia", "py", "pyw", "pythonw", "wscript", "cscript", "mshta":
		return "an interpreter"
	case "env", "xargs", "nohup", "nice", "timeout", "stdbuf", "setsid", "sudo", "doas", "script",
		"time", "watch", "make", "find", "flock", "strace", "ltrace", "gdb", "rundll32", "runas":
		return "a launcher"
	case "vim", "nvim", "emacs":
		return "an editor that runs commands"
	}
	return ""
}

// Interpreter reports whether the executable at path (a real path, or one
// to resolve with home) is a shell, interpreter or launcher, and says why a
// rule for it is weak. Version suffixes count: python3.11 is python.
func Interpreter(path, home string) (string, bool) {
	for _, p := range []string{path, ResolvePath(path, home)} {
		base := programName(filepath.Base(p))
		name := strings.TrimRight(base, "0123456789.-")
		for _, n := range []string{base, name} {
			if kind := interpreterKind(n); kind != "" {
				return base + " is " + kind + ": a rule for it lets every program that can run it (with its own script or command) read what the rule allows", true
			}
		}
	}
	return "", false
}
