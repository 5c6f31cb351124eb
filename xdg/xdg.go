// Package xdg owns every filesystem path of opx (data dir, config, policy,
// socket, token, certificate, audit logs) and the safe ways to create and
// write them: private directories, atomic writes, ownership checks.
package xdg

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// appName is the directory name opx uses under each XDG base directory; it
// matches the original op-authd layout so existing installs keep working.
const appName = "op-authd"

// Paths is every location opx uses. Build it with Resolve.
type Paths struct {
	Legacy     bool   // ~/.op-authd/ exists and holds everything
	DataDir    string // token, TLS pair, audit logs, daemon log
	ConfigDir  string // config.json and policy.json
	ConfigFile string
	PolicyFile string
	SocketPath string
	TokenFile  string
	CertFile   string
	KeyFile    string
	LockFile   string // next to the socket: one daemon per socket
	LogFile    string // the output of an autostarted daemon
}

// Resolve computes the paths from the environment (getenv is usually
// os.Getenv). It creates nothing. Empty or relative XDG_* values are ignored,
// as the XDG spec says.
func Resolve(getenv func(string) string) (Paths, error) {
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return Paths{}, fmt.Errorf("find home directory: %w", err)
		}
		home = h
	}
	base := func(name, fallback string) string {
		if v := getenv(name); filepath.IsAbs(v) {
			return v
		}
		return filepath.Join(home, fallback)
	}
	var p Paths
	legacy := filepath.Join(home, ".op-authd")
	if fi, err := os.Stat(legacy); err == nil && fi.IsDir() {
		p.Legacy = true
		p.DataDir, p.ConfigDir = legacy, legacy
		p.SocketPath = filepath.Join(legacy, "socket.sock")
	} else {
		p.DataDir = filepath.Join(base("XDG_DATA_HOME", ".local/share"), appName)
		p.ConfigDir = filepath.Join(base("XDG_CONFIG_HOME", ".config"), appName)
		if rt := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(rt) {
			p.SocketPath = filepath.Join(rt, appName, "socket.sock")
		} else {
			p.SocketPath = filepath.Join(p.DataDir, "socket.sock")
		}
	}
	p.ConfigFile = filepath.Join(p.ConfigDir, "config.json")
	p.PolicyFile = filepath.Join(p.ConfigDir, "policy.json")
	p.TokenFile = filepath.Join(p.DataDir, "token")
	p.CertFile = filepath.Join(p.DataDir, "tls.crt")
	p.KeyFile = filepath.Join(p.DataDir, "tls.key")
	p.LogFile = filepath.Join(p.DataDir, "opx-authd.log")
	if s := getenv("OPX_SOCKET_PATH"); s != "" {
		p.SocketPath = s
	}
	p.SetSocket(p.SocketPath)
	return p, nil
}

// SetSocket points the paths at another socket (the daemon's --sock); the
// lock file follows it.
func (p *Paths) SetSocket(path string) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	p.SocketPath = path
	p.LockFile = path + ".lock"
}

// AuditFile is the audit log of the given day (local date).
func (p Paths) AuditFile(day time.Time) string {
	return filepath.Join(p.DataDir, "audit-"+day.Format("2006-01-02")+".log")
}

// EnsureDir creates dir and its missing parents with mode 0700. An existing
// directory is left as it is (see CheckPrivateDir).
func EnsureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

// CheckPrivateDir returns an error unless dir is a real directory (not a
// link) owned by this user and closed to group and others.
func CheckPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (a symlink or a file is refused)", dir)
	}
	if err := checkOwner(dir, fi); err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("directory %s is open to other users (mode %04o); run: chmod 700 %s", dir, perm, dir)
	}
	return nil
}

func checkOwner(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("cannot read the owner of %s", path)
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("%s is owned by uid %d, not by you (uid %d)", path, st.Uid, uid)
	}
	return nil
}

// ReadPrivateFile reads a file only its owner may read (the token, the TLS
// key), refusing one owned by someone else or open to others.
func ReadPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if err := checkOwner(path, fi); err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable or writable by others (mode %04o); run: chmod 600 %s", path, perm, path)
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

// WriteFileAtomic replaces path with data: a temp file in the same
// directory, written with perm, synced and renamed over path, then the
// directory synced. On failure path is untouched and no temp file remains.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
