// Package xdg owns every filesystem path of the opx daemon and client: where
// the data, configuration, socket, token, TLS pair and audit logs live
// (following the XDG base directory spec, or the legacy ~/.op-authd/ layout
// when that directory exists), and how private directories and files are
// created, checked, read and atomically written.
package xdg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

const (
	// appDir is the directory name under each XDG base directory. It keeps
	// the op-authd name so existing installs are found.
	appDir = "op-authd"
	// legacyDir is the pre-XDG directory under $HOME holding everything.
	legacyDir = ".op-authd"
)

// Paths is every location opx uses. Zero value is not useful; use Resolve.
//
// SocketPath is where clients find the daemon: the Unix socket itself on
// Unix. On Windows the daemon listens on a named pipe, which is not a file,
// and SocketPath is the file naming it (DataDir\pipe by default; the
// daemon writes the pipe's name there when it starts). On both, the lock
// file sits beside it and OPX_SOCKET_PATH overrides it.
type Paths struct {
	Legacy     bool   // true when ~/.op-authd/ exists and is used
	DataDir    string // token, TLS pair, audit logs, daemon log
	ConfigDir  string // dir holding config.json and policy.json
	ConfigFile string
	PolicyFile string
	SocketPath string // the socket; on Windows the file naming the pipe
	TokenFile  string // DataDir/token
	CertFile   string // DataDir/tls.crt
	KeyFile    string // DataDir/tls.key
	LockFile   string // SocketPath + ".lock"
	LogFile    string // DataDir/opx-authd.log (daemon output when autostarted)
}

// Resolve computes the paths from the environment (getenv, usually
// os.Getenv) and the home directory: getenv("HOME"), or os.UserHomeDir when
// that is empty (%USERPROFILE% on Windows). It creates nothing. Empty or
// relative XDG_* values count as unset, as the XDG spec asks. On Windows
// the defaults are %LOCALAPPDATA%\op-authd for data and %APPDATA%\op-authd
// for configuration, and XDG_DATA_HOME and XDG_CONFIG_HOME still win. A
// non-empty OPX_SOCKET_PATH overrides the socket in every layout.
func Resolve(getenv func(string) string) (Paths, error) {
	return resolve(getenv, os.UserHomeDir)
}

// resolve is Resolve with the home directory lookup as a parameter, so tests
// never depend on the real environment.
func resolve(getenv func(string) string, userHome func() (string, error)) (Paths, error) {
	home := getenv("HOME")
	if home == "" {
		h, err := userHome()
		if err != nil {
			return Paths{}, fmt.Errorf("find home directory: %w", err)
		}
		home = h
	}
	if home == "" {
		return Paths{}, errors.New("find home directory: HOME is not set")
	}
	home, err := filepath.Abs(home)
	if err != nil {
		return Paths{}, fmt.Errorf("find home directory: %w", err)
	}

	var p Paths
	legacy := filepath.Join(home, legacyDir)
	if fi, err := os.Stat(legacy); err == nil && fi.IsDir() {
		p.Legacy = true
		p.DataDir = legacy
		p.ConfigDir = legacy
		p.SocketPath = filepath.Join(legacy, socketName)
	} else {
		data, config, runtime := baseDirs(getenv, home)
		p.DataDir = filepath.Join(data, appDir)
		p.ConfigDir = filepath.Join(config, appDir)
		if runtime != "" {
			p.SocketPath = filepath.Join(runtime, appDir, socketName)
		} else {
			p.SocketPath = filepath.Join(p.DataDir, socketName)
		}
	}
	p.ConfigFile = filepath.Join(p.ConfigDir, "config.json")
	p.PolicyFile = filepath.Join(p.ConfigDir, "policy.json")
	p.TokenFile = filepath.Join(p.DataDir, "token")
	p.CertFile = filepath.Join(p.DataDir, "tls.crt")
	p.KeyFile = filepath.Join(p.DataDir, "tls.key")
	p.LogFile = filepath.Join(p.DataDir, "opx-authd.log")

	sock := p.SocketPath
	if s := getenv("OPX_SOCKET_PATH"); s != "" {
		sock = s
	}
	p.SetSocket(sock)
	return p, nil
}

// absEnv returns the value of the variable name when it is an absolute path,
// cleaned, and "" when it is unset, empty or relative.
func absEnv(getenv func(string) string, name string) string {
	v := getenv(name)
	if v == "" || !filepath.IsAbs(v) {
		return ""
	}
	return filepath.Clean(v)
}

// SetSocket points p at another socket (for example the daemon's --sock
// flag). A relative path is made absolute; the lock file follows the socket.
func (p *Paths) SetSocket(path string) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	p.SocketPath = path
	p.LockFile = path + ".lock"
}

// AuditFile is the audit log for day's local date, for example
// DataDir/audit-2026-11-28.log.
func (p Paths) AuditFile(day time.Time) string {
	return filepath.Join(p.DataDir, "audit-"+day.Local().Format(time.DateOnly)+".log")
}

// EnsureDir creates dir (and parents) private to the current user if
// missing: mode 0700 on Unix, set exactly whatever the umask; on Windows a
// protected DACL granting only the current user, inherited by what is made
// inside. An existing dir is left as is; use CheckPrivateDir to vet it.
func EnsureDir(dir string) error {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("create %s: %w", dir, syscall.ENOTDIR)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := EnsureDir(parent); err != nil {
			return err
		}
	}
	if err := mkdirPrivate(dir); err != nil {
		// Another process may have made it in the meantime.
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
			return nil
		}
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return settleDir(dir)
}

// CheckPrivateDir reports an error unless dir is a directory (not a symlink)
// owned by the current user and open to no one else: on Unix, owned by the
// effective uid with no group or other permission bits; on Windows, owned
// by the current user's SID with a DACL that lets no one else in (SYSTEM
// and Administrators aside: acl_windows.go says what is checked and why).
// The error names the directory, the fault and the fix.
func CheckPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check directory %s: %w", dir, err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("directory %s is a symlink; opx needs a real directory it owns: remove the link and let opx create the directory", dir)
	case !fi.IsDir():
		return fmt.Errorf("directory %s is not a directory (%s); move it away and let opx create the directory", dir, FileKind(fi.Mode()))
	}
	return checkPrivate(kindDir, dir, fi, nil)
}

// What checkPrivate's errors call the file they name.
const (
	kindDir  = "directory"
	kindFile = "private file"
)

// NotPrivateError is returned when a file or directory that must be private
// is owned by another user or open to others. Its message names the path,
// the fault and the fix.
type NotPrivateError struct {
	Kind  string // "directory" or "private file"
	Path  string
	Fault string // what is wrong: "is open to other users (mode 0644)"
	Fix   string // what to do: "run: chmod 600 /path"
}

func (e *NotPrivateError) Error() string {
	return e.Kind + " " + e.Path + " " + e.Fault + "; " + e.Fix
}

// FileKind names the type of a file for error messages ("a regular file").
func FileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "a special file"
	}
}
