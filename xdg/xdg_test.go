package xdg

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	legacyHome := t.TempDir()
	if err := os.Mkdir(filepath.Join(legacyHome, ".op-authd"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name               string
		env                map[string]string
		data, config, sock string
		legacy             bool
	}{
		{"xdg", map[string]string{"HOME": home, "XDG_DATA_HOME": "/xd", "XDG_CONFIG_HOME": "/xc", "XDG_RUNTIME_DIR": "/run/u"},
			"/xd/op-authd", "/xc/op-authd", "/run/u/op-authd/socket.sock", false},
		{"fallback", map[string]string{"HOME": home},
			home + "/.local/share/op-authd", home + "/.config/op-authd", home + "/.local/share/op-authd/socket.sock", false},
		{"relative xdg ignored", map[string]string{"HOME": home, "XDG_DATA_HOME": "rel", "XDG_CONFIG_HOME": "rel", "XDG_RUNTIME_DIR": "rel"},
			home + "/.local/share/op-authd", home + "/.config/op-authd", home + "/.local/share/op-authd/socket.sock", false},
		{"legacy", map[string]string{"HOME": legacyHome, "XDG_DATA_HOME": "/xd", "XDG_RUNTIME_DIR": "/run/u"},
			legacyHome + "/.op-authd", legacyHome + "/.op-authd", legacyHome + "/.op-authd/socket.sock", true},
		{"socket override", map[string]string{"HOME": legacyHome, "OPX_SOCKET_PATH": "/tmp/x/s.sock"},
			legacyHome + "/.op-authd", legacyHome + "/.op-authd", "/tmp/x/s.sock", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Resolve(getenv(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if p.DataDir != tc.data || p.ConfigDir != tc.config || p.SocketPath != tc.sock || p.Legacy != tc.legacy {
				t.Errorf("Resolve = data %q config %q sock %q legacy %v; want %q %q %q %v",
					p.DataDir, p.ConfigDir, p.SocketPath, p.Legacy, tc.data, tc.config, tc.sock, tc.legacy)
			}
			for got, want := range map[string]string{
				p.ConfigFile: tc.config + "/config.json", p.PolicyFile: tc.config + "/policy.json",
				p.TokenFile: tc.data + "/token", p.CertFile: tc.data + "/tls.crt", p.KeyFile: tc.data + "/tls.key",
				p.LockFile: tc.sock + ".lock",
			} {
				if got != want {
					t.Errorf("path %q, want %q", got, want)
				}
			}
			day := time.Date(2026, 11, 28, 12, 0, 0, 0, time.Local)
			if got, want := p.AuditFile(day), tc.data+"/audit-2026-11-28.log"; got != want {
				t.Errorf("AuditFile = %q, want %q", got, want)
			}
		})
	}
}

func TestEnsureDirIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := EnsureDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := CheckPrivateDir(dir); err != nil {
		t.Errorf("CheckPrivateDir(new dir) = %v", err)
	}
}

func TestCheckPrivateDirRefuses(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	private := mk("private", 0o700)
	link := filepath.Join(base, "link")
	os.Symlink(private, link)
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	for _, tc := range []struct{ name, path, want string }{
		{"group", mk("group", 0o750), "open to other users"},
		{"world", mk("world", 0o705), "open to other users"},
		{"symlink", link, "not a directory"},
		{"file", file, "not a directory"},
		{"missing", filepath.Join(base, "nope"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPrivateDir(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckPrivateDir(%q) = %v, want an error containing %q", tc.path, err, tc.want)
			}
		})
	}
	t.Run("foreign owner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a directory to another user")
		}
		d := mk("foreign", 0o700)
		if err := os.Chown(d, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := CheckPrivateDir(d); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("CheckPrivateDir(foreign) = %v", err)
		}
	})
}

func TestWriteFileAtomic(t *testing.T) {
	old := syscall.Umask(0o077 ^ 0o777) // a umask that would give 0777
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	for _, content := range []string{"first", "second"} {
		if err := WriteFileAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadPrivateFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %o, want 600", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d files in the dir, want 1 (no temp files left)", len(ents))
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), []byte("x"), 0o600); err == nil {
		t.Error("WriteFileAtomic into a missing dir succeeded")
	}
}

func TestReadPrivateFileRefusesOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	os.WriteFile(path, []byte("x"), 0o644)
	os.Chmod(path, 0o644)
	if _, err := ReadPrivateFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("ReadPrivateFile(0644 file) = %v, want a refusal with a fix", err)
	}
}
