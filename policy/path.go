package policy

import (
	"path/filepath"
	"strings"
)

// ResolvePath turns a rule's path (or one a user types to `opx policy
// check`) into the real path of the file it names today: "~/" is the home
// directory, and every link is followed, as the kernel's /proc/PID/exe
// shows an executable. A path that cannot be resolved (it does not exist) is
// returned cleaned, so it still matches a process whose executable has that
// exact path. The daemon and `opx policy check` both use this function.
func ResolvePath(path, home string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok && home != "" {
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

// interpreters are programs that run whatever they are told: a rule naming
// one allows every program that can start it with its own commands.
var interpreters = map[string]string{
	"sh": "a shell", "bash": "a shell", "dash": "a shell", "zsh": "a shell", "fish": "a shell",
	"ksh": "a shell", "mksh": "a shell", "pdksh": "a shell", "tcsh": "a shell", "csh": "a shell",
	"ash": "a shell", "busybox": "a shell", "elvish": "a shell", "nu": "a shell", "xonsh": "a shell",
	"pwsh": "a shell", "powershell": "a shell", "rc": "a shell", "yash": "a shell", "osh": "a shell",
	"python": "an interpreter", "pypy": "an interpreter", "perl": "an interpreter", "ruby": "an interpreter",
	"node": "an interpreter", "nodejs": "an interpreter", "deno": "an interpreter", "bun": "an interpreter",
	"php": "an interpreter", "lua": "an interpreter", "luajit": "an interpreter", "tclsh": "an interpreter",
	"wish": "an interpreter", "expect": "an interpreter", "awk": "an interpreter", "gawk": "an interpreter",
	"mawk": "an interpreter", "nawk": "an interpreter", "osascript": "an interpreter", "java": "an interpreter",
	"guile": "an interpreter", "racket": "an interpreter", "R": "an interpreter", "Rscript": "an interpreter",
	"julia": "an interpreter", "env": "a launcher", "xargs": "a launcher", "nohup": "a launcher",
	"nice": "a launcher", "timeout": "a launcher", "stdbuf": "a launcher", "setsid": "a launcher",
	"sudo": "a launcher", "doas": "a launcher", "script": "a launcher", "time": "a launcher",
	"watch": "a launcher", "make": "a launcher", "find": "a launcher", "flock": "a launcher",
	"strace": "a launcher", "ltrace": "a launcher", "gdb": "a launcher", "vim": "an editor that runs commands",
	"nvim": "an editor that runs commands", "emacs": "an editor that runs commands",
}

// Interpreter reports whether the executable at path (a real path, or one
// to resolve with home) is a shell, interpreter or launcher, and says why a
// rule for it is weak. Version suffixes count: python3.11 is python.
func Interpreter(path, home string) (string, bool) {
	for _, p := range []string{path, ResolvePath(path, home)} {
		base := filepath.Base(p)
		name := strings.TrimRight(base, "0123456789.-")
		for _, n := range []string{base, name} {
			if kind, ok := interpreters[n]; ok {
				return base + " is " + kind + ": a rule for it lets every program that can run it (with its own script or command) read what the rule allows", true
			}
		}
	}
	return "", false
}
