//go:build unix

package xdg

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// withUmask runs f with the process umask set to mask. Tests using it must
// not run in parallel.
func withUmask(t *testing.T, mask int, f func()) {
	t.Helper()
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	f()
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	legacyHome := t.TempDir()
	legacy := filepath.Join(legacyHome, ".op-authd")
	if err := os.Mkdir(legacy, 0o700); err != nil {
		t.Fatal(err)
	}
	// A file named .op-authd is not the legacy layout.
	fileHome := t.TempDir()
	if err := os.WriteFile(filepath.Join(fileHome, ".op-authd"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	xdgEnv := map[string]string{"XDG_DATA_HOME": "/xdg/data", "XDG_CONFIG_HOME": "/xdg/config", "XDG_RUNTIME_DIR": "/run/user/1000"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	fbData := filepath.Join(home, ".local/share/op-authd")
	fbConfig := filepath.Join(home, ".config/op-authd")

	type want struct {
		legacy             bool
		data, config, sock string
	}
	xdgWant := want{false, "/xdg/data/op-authd", "/xdg/config/op-authd", "/run/user/1000/op-authd/socket.sock"}
	fbWant := want{false, fbData, fbConfig, fbData + "/socket.sock"}
	legacyWant := want{true, legacy, legacy, legacy + "/socket.sock"}
	override := "/tmp/opx-test/other.sock"

	for _, tc := range []struct {
		name string
		env  map[string]string
		want want
	}{
		{"xdg set", with(xdgEnv, "HOME", home), xdgWant},
		{"xdg set with trailing slashes", with(nil, "HOME", home, "XDG_DATA_HOME", "/xdg/data/", "XDG_CONFIG_HOME", "/xdg//config", "XDG_RUNTIME_DIR", "/run/user/1000/"), xdgWant},
		{"xdg unset", with(nil, "HOME", home), fbWant},
		{"xdg empty", with(nil, "HOME", home, "XDG_DATA_HOME", "", "XDG_CONFIG_HOME", "", "XDG_RUNTIME_DIR", ""), fbWant},
		{"xdg relative", with(nil, "HOME", home, "XDG_DATA_HOME", "data", "XDG_CONFIG_HOME", "./config", "XDG_RUNTIME_DIR", "run/user"), fbWant},
		{"only runtime dir", with(nil, "HOME", home, "XDG_RUNTIME_DIR", "/run/user/1000"), want{false, fbData, fbConfig, "/run/user/1000/op-authd/socket.sock"}},
		{"only data home", with(nil, "HOME", home, "XDG_DATA_HOME", "/xdg/data"), want{false, "/xdg/data/op-authd", fbConfig, "/xdg/data/op-authd/socket.sock"}},
		{"op-authd file is not legacy", with(nil, "HOME", fileHome), want{false, filepath.Join(fileHome, ".local/share/op-authd"), filepath.Join(fileHome, ".config/op-authd"), filepath.Join(fileHome, ".local/share/op-authd/socket.sock")}},
		{"legacy", with(nil, "HOME", legacyHome), legacyWant},
		{"legacy ignores xdg", with(xdgEnv, "HOME", legacyHome), legacyWant},
		{"override with xdg set", with(xdgEnv, "HOME", home, "OPX_SOCKET_PATH", override), want{false, xdgWant.data, xdgWant.config, override}},
		{"override with fallback", with(nil, "HOME", home, "OPX_SOCKET_PATH", override), want{false, fbData, fbConfig, override}},
		{"override with legacy", with(xdgEnv, "HOME", legacyHome, "OPX_SOCKET_PATH", override), want{true, legacy, legacy, override}},
		{"empty override ignored", with(nil, "HOME", home, "OPX_SOCKET_PATH", ""), fbWant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := resolve(envFunc(tc.env), noHome)
			if err != nil {
				t.Fatalf("Resolve(%v) error: %v", tc.env, err)
			}
			w := tc.want
			for _, c := range []struct {
				field, got, want string
			}{
				{"DataDir", p.DataDir, w.data},
				{"ConfigDir", p.ConfigDir, w.config},
				{"ConfigFile", p.ConfigFile, w.config + "/config.json"},
				{"PolicyFile", p.PolicyFile, w.config + "/policy.json"},
				{"SocketPath", p.SocketPath, w.sock},
				{"LockFile", p.LockFile, w.sock + ".lock"},
				{"TokenFile", p.TokenFile, w.data + "/token"},
				{"CertFile", p.CertFile, w.data + "/tls.crt"},
				{"KeyFile", p.KeyFile, w.data + "/tls.key"},
				{"LogFile", p.LogFile, w.data + "/opx-authd.log"},
			} {
				if c.got != c.want {
					t.Errorf("Resolve(%v).%s = %q, want %q", tc.env, c.field, c.got, c.want)
				}
			}
			if p.Legacy != w.legacy {
				t.Errorf("Resolve(%v).Legacy = %v, want %v", tc.env, p.Legacy, w.legacy)
			}
		})
	}
}

func TestResolveHome(t *testing.T) {
	lookupHome := t.TempDir()
	for _, tc := range []struct {
		name     string
		home     string
		userHome func() (string, error)
		wantData string
		wantErr  bool
	}{
		{"HOME wins", "/home/alice", noHome, "/home/alice/.local/share/op-authd", false},
		{"lookup when HOME empty", "", func() (string, error) { return lookupHome, nil }, lookupHome + "/.local/share/op-authd", false},
		{"error when no home", "", noHome, "", true},
		{"error when lookup is empty", "", func() (string, error) { return "", nil }, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := resolve(envFunc(map[string]string{"HOME": tc.home}), tc.userHome)
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Fatalf("resolve(HOME=%q) error = %v, want error %v", tc.home, err, tc.wantErr)
			}
			if p.DataDir != tc.wantData {
				t.Errorf("resolve(HOME=%q).DataDir = %q, want %q", tc.home, p.DataDir, tc.wantData)
			}
		})
	}
}

func TestEnsureDir(t *testing.T) {
	for _, tc := range []struct {
		name  string
		umask int
	}{
		{"umask 022", 0o022},
		{"umask 000", 0o000},
		{"umask 077", 0o077},
		{"umask 277", 0o277},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "a", "b", "c")
			withUmask(t, tc.umask, func() {
				if err := EnsureDir(dir); err != nil {
					t.Fatalf("EnsureDir(%q) = %v, want nil", dir, err)
				}
				// A second call on an existing dir is a no-op.
				if err := EnsureDir(dir); err != nil {
					t.Fatalf("EnsureDir(%q) again = %v, want nil", dir, err)
				}
			})
			for _, d := range []string{filepath.Join(base, "a"), filepath.Join(base, "a", "b"), dir} {
				fi, err := os.Lstat(d)
				if err != nil {
					t.Fatal(err)
				}
				if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
					t.Errorf("EnsureDir(%q) made %q with mode %v, want a 0700 directory", dir, d, fi.Mode())
				}
			}
			if err := CheckPrivateDir(dir); err != nil {
				t.Errorf("CheckPrivateDir(%q) = %v, want nil", dir, err)
			}
		})
	}
	t.Run("existing dir left as is", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "open")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := EnsureDir(dir); err != nil {
			t.Fatalf("EnsureDir(%q) = %v, want nil", dir, err)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o755 {
			t.Errorf("EnsureDir(%q) changed mode to %04o, want 0755", dir, got)
		}
	})
	t.Run("file in the way", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{file, filepath.Join(file, "sub")} {
			if err := EnsureDir(dir); err == nil {
				t.Errorf("EnsureDir(%q) = nil, want an error", dir)
			}
		}
	})
}

func TestCheckPrivateDir(t *testing.T) {
	base := t.TempDir()
	mkdir := func(name string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // undo the umask
			t.Fatal(err)
		}
		return p
	}
	private := mkdir("private", 0o700)
	link := filepath.Join(base, "link")
	if err := os.Symlink(private, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dir  string
		want []string // substrings of the error; nil means no error
	}{
		{"0700", private, nil},
		{"0500", mkdir("readonly", 0o500), nil},
		{"0750", mkdir("group", 0o750), []string{"open to other users", "mode 0750", "run: chmod 700 " + base + "/group"}},
		{"0705", mkdir("world", 0o705), []string{"open to other users", "mode 0705", "chmod 700"}},
		{"0720", mkdir("groupwrite", 0o720), []string{"open to other users", "mode 0720"}},
		{"0777", mkdir("open", 0o777), []string{"open to other users", "mode 0777"}},
		{"symlink", link, []string{link, "symlink"}},
		{"regular file", file, []string{file, "not a directory"}},
		{"missing", filepath.Join(base, "nope"), []string{"no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPrivateDir(tc.dir)
			if tc.want == nil {
				if err != nil {
					t.Errorf("CheckPrivateDir(%q) = %v, want nil", tc.dir, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckPrivateDir(%q) = nil, want an error containing %q", tc.dir, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckPrivateDir(%q) = %v, want an error containing %q", tc.dir, err, w)
				}
			}
		})
	}
	t.Run("foreign owner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("giving a directory to another uid needs root")
		}
		dir := mkdir("foreign", 0o700)
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		err := CheckPrivateDir(dir)
		if err == nil || !strings.Contains(err.Error(), "owned by uid 65534, not by you (uid 0)") {
			t.Errorf("CheckPrivateDir(%q) = %v, want an error naming uid 65534", dir, err)
		}
	})
}

// WriteFileAtomic sets the mode it is given exactly, whatever the umask.
func TestWriteFileAtomicMode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		umask int
		perm  os.FileMode
	}{
		{"0600 umask 022", 0o022, 0o600},
		{"0600 umask 000", 0o000, 0o600},
		{"0600 umask 177", 0o177, 0o600},
		{"0640 umask 077", 0o077, 0o640},
		{"0400 umask 000", 0o000, 0o400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "token")
			withUmask(t, tc.umask, func() {
				for _, content := range []string{"first", "second, longer content", "3"} {
					if err := WriteFileAtomic(path, []byte(content), tc.perm); err != nil {
						t.Fatalf("WriteFileAtomic(%q, %q, %v) = %v, want nil", path, content, tc.perm, err)
					}
					got, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					if string(got) != content {
						t.Errorf("after WriteFileAtomic(%q, %q) the file holds %q", path, content, got)
					}
				}
			})
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tc.perm {
				t.Errorf("WriteFileAtomic(%q, _, %04o) made mode %04o", path, tc.perm, got)
			}
			if names := dirNames(t, dir); len(names) != 1 || names[0] != "token" {
				t.Errorf("dir holds %q after WriteFileAtomic, want only token (no temp files)", names)
			}
		})
	}
}

// ReadPrivateFile refuses a symlink, a directory, a file open to others by
// its mode, and one of another uid.
func TestReadPrivateFileModes(t *testing.T) {
	dir := t.TempDir()
	mkfile := func(name string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("secret"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // undo the umask
			t.Fatal(err)
		}
		return p
	}
	private := mkfile("private", 0o600)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(private, link); err != nil {
		t.Fatal(err)
	}
	subdir := filepath.Join(dir, "subdir")
	if err := os.Mkdir(subdir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		want []string // substrings of the error; nil means success
	}{
		{"0600", private, nil},
		{"0400", mkfile("readonly", 0o400), nil},
		{"0644", mkfile("world", 0o644), []string{"open to other users", "mode 0644", "run: chmod 600 " + dir + "/world"}},
		{"0640", mkfile("group", 0o640), []string{"open to other users", "mode 0640", "chmod 600"}},
		{"0602", mkfile("worldwrite", 0o602), []string{"open to other users", "mode 0602"}},
		{"0620", mkfile("groupwrite", 0o620), []string{"open to other users", "mode 0620"}},
		{"symlink", link, []string{link, "symlink"}},
		{"directory", subdir, []string{subdir, "not a regular file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadPrivateFile(tc.path)
			if tc.want == nil {
				if err != nil || string(got) != "secret" {
					t.Errorf("ReadPrivateFile(%q) = %q, %v, want %q, nil", tc.path, got, err, "secret")
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadPrivateFile(%q) = %q, nil, want an error containing %q", tc.path, got, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ReadPrivateFile(%q) = %v, want an error containing %q", tc.path, err, w)
				}
			}
		})
	}
	t.Run("foreign owner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("giving a file to another uid needs root")
		}
		path := mkfile("foreign", 0o600)
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		_, err := ReadPrivateFile(path)
		if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("ReadPrivateFile(%q) = %v, want an error naming uid 65534", path, err)
		}
	})
}
