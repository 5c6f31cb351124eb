package xdg

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opxhq/opx/internal/testdir"
)

// envFunc is a getenv over m, so tests never read the real environment.
func envFunc(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// noHome is a home lookup that must not be reached.
func noHome() (string, error) { return "", errors.New("no home in tests") }

func TestResolveCreatesNothing(t *testing.T) {
	home := testdir.New(t)
	env := map[string]string{"HOME": home, "XDG_RUNTIME_DIR": filepath.Join(home, "run")}
	if _, err := Resolve(envFunc(env)); err != nil {
		t.Fatalf("Resolve(%v) error: %v", env, err)
	}
	ents, err := os.ReadDir(home)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("Resolve created %d entries in HOME, want 0", len(ents))
	}
}

func TestSetSocket(t *testing.T) {
	p, err := resolve(envFunc(map[string]string{"HOME": testdir.New(t)}), noHome)
	if err != nil {
		t.Fatal(err)
	}
	flag := filepath.Join(testdir.New(t), "flag.sock")
	p.SetSocket(flag)
	if p.SocketPath != flag || p.LockFile != flag+".lock" {
		t.Errorf("SetSocket(%q) = socket %q lock %q, want %q and %q", flag, p.SocketPath, p.LockFile, flag, flag+".lock")
	}
	p.SetSocket("rel.sock")
	if !filepath.IsAbs(p.SocketPath) || filepath.Base(p.SocketPath) != "rel.sock" {
		t.Errorf("SetSocket(%q) = %q, want an absolute path ending in rel.sock", "rel.sock", p.SocketPath)
	}
}

func TestAuditFile(t *testing.T) {
	data := filepath.FromSlash("/data/op-authd")
	p := Paths{DataDir: data}
	for _, tc := range []struct {
		day  time.Time
		want string
	}{
		{time.Date(2026, 11, 28, 12, 0, 0, 0, time.Local), "audit-2026-11-28.log"},
		{time.Date(2026, 1, 2, 0, 0, 0, 0, time.Local), "audit-2026-01-02.log"},
		{time.Date(2026, 12, 31, 23, 59, 59, 0, time.Local), "audit-2026-12-31.log"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got, want := p.AuditFile(tc.day), filepath.Join(data, tc.want); got != want {
				t.Errorf("AuditFile(%v) = %q, want %q", tc.day, got, want)
			}
		})
	}
	t.Run("uses the local date", func(t *testing.T) {
		day := time.Date(2026, 11, 28, 12, 0, 0, 0, time.FixedZone("far", 13*3600))
		want := filepath.Join(data, "audit-"+day.Local().Format("2006-01-02")+".log")
		if got := p.AuditFile(day); got != want {
			t.Errorf("AuditFile(%v) = %q, want %q", day, got, want)
		}
	})
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileAtomic(t *testing.T) {
	t.Run("replaces", func(t *testing.T) {
		dir := testdir.New(t)
		path := filepath.Join(dir, "token")
		for _, content := range []string{"first", "second, longer content", "3"} {
			if err := WriteFileAtomic(path, []byte(content), 0o600); err != nil {
				t.Fatalf("WriteFileAtomic(%q, %q, 0600) = %v, want nil", path, content, err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != content {
				t.Errorf("after WriteFileAtomic(%q, %q) the file holds %q", path, content, got)
			}
		}
		if names := dirNames(t, dir); len(names) != 1 || names[0] != "token" {
			t.Errorf("dir holds %q after WriteFileAtomic, want only token (no temp files)", names)
		}
	})
	t.Run("missing dir", func(t *testing.T) {
		base := testdir.New(t)
		path := filepath.Join(base, "missing", "token")
		err := WriteFileAtomic(path, []byte("x"), 0o600)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("WriteFileAtomic(%q) = %v, want a not-exist error", path, err)
		}
		if names := dirNames(t, base); len(names) != 0 {
			t.Errorf("WriteFileAtomic(%q) failed but left %q behind", path, names)
		}
	})
	t.Run("rename fails", func(t *testing.T) {
		// The target is a non-empty directory, so the rename fails after the
		// temp file is written: it must be removed and the target untouched.
		base := testdir.New(t)
		target := filepath.Join(base, "target")
		if err := os.Mkdir(target, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(target, "keep"), []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := WriteFileAtomic(target, []byte("x"), 0o600); err == nil {
			t.Errorf("WriteFileAtomic(%q) over a directory = nil, want an error", target)
		}
		if names := dirNames(t, base); len(names) != 1 || names[0] != "target" {
			t.Errorf("dir holds %q after a failed WriteFileAtomic, want only target", names)
		}
		if got, err := os.ReadFile(filepath.Join(target, "keep")); err != nil || string(got) != "keep" {
			t.Errorf("target changed after a failed WriteFileAtomic: %q, %v", got, err)
		}
	})
}

func TestWriteFileNew(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "out")
	if err := WriteFileNew(path, []byte("first"), 0o600); err != nil {
		t.Fatalf("WriteFileNew(%q) = %v, want nil", path, err)
	}
	err := WriteFileNew(path, []byte("second"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteFileNew(%q) over a file = %v, want an fs.ErrExist error", path, err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "first" {
		t.Errorf("after WriteFileNew over it the file holds %q, %v; want %q", got, err, "first")
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "out" {
		t.Errorf("dir holds %q after WriteFileNew, want only out (no temp files)", names)
	}
}

// OpenPrivate never adopts a file through O_CREATE alone, nor truncates one.
func TestOpenPrivateFlags(t *testing.T) {
	dir := testdir.New(t)
	for _, flag := range []int{os.O_WRONLY | os.O_CREATE, os.O_WRONLY | os.O_TRUNC, os.O_RDWR | os.O_CREATE | os.O_TRUNC} {
		path := filepath.Join(dir, "f")
		if f, err := OpenPrivate(path, flag); err == nil {
			f.Close()
			t.Errorf("OpenPrivate(%q, %#x) = nil error, want a refusal", path, flag)
		}
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("refused OpenPrivate calls left %q", names)
	}
	path := filepath.Join(dir, "new")
	f, err := OpenPrivate(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL)
	if err != nil {
		t.Fatalf("OpenPrivate(%q, create) = %v", path, err)
	}
	defer f.Close()
	if err := CheckPrivateFile(f); err != nil {
		t.Errorf("CheckPrivateFile of a file OpenPrivate created = %v, want nil", err)
	}
	if _, err := OpenPrivate(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL); !errors.Is(err, fs.ErrExist) {
		t.Errorf("OpenPrivate(%q, create) of an existing file = %v, want an fs.ErrExist error", path, err)
	}
}

func TestReadPrivateFile(t *testing.T) {
	dir := testdir.New(t)
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(dir, "nope")
		if _, err := ReadPrivateFile(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadPrivateFile(%q) = %v, want an fs.ErrNotExist error", path, err)
		}
	})
	t.Run("written by WriteFileAtomic", func(t *testing.T) {
		path := filepath.Join(dir, "atomic")
		if err := WriteFileAtomic(path, []byte("tok"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadPrivateFile(path); err != nil || string(got) != "tok" {
			t.Errorf("ReadPrivateFile(%q) = %q, %v, want %q, nil", path, got, err, "tok")
		}
	})
}
