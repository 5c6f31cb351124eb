package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opxhq/opx/internal/testdir"
)

// --out-file: a file that is there is replaced only when asked (--force),
// a symbolic link is never followed, and the file gets --file-mode (on
// Windows, what the mode means there: wantFileMode).
func TestFileOutput(t *testing.T) {
	dir := testdir.New(t)
	env := &Env{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	path := filepath.Join(dir, "secret")

	o := FileOutput{FileMode: "0640"}
	if err := o.check(env, path); err != nil {
		t.Fatalf("check(new file) = %v", err)
	}
	if err := o.WriteFile(path, []byte("v1")); err != nil {
		t.Fatalf("WriteFile(new file) = %v", err)
	}
	wantFileMode(t, path, 0o640)

	o = FileOutput{FileMode: "0600"}
	if err := o.check(env, path); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("check(existing file, no --force) = %v, want an error saying it exists", err)
	}
	if err := o.WriteFile(path, []byte("v2")); err == nil {
		t.Errorf("WriteFile(existing file, no --force) replaced it")
	}
	if b, _ := os.ReadFile(path); string(b) != "v1" {
		t.Errorf("file holds %q after a refused write, want v1", b)
	}
	o.Force = true
	if err := o.WriteFile(path, []byte("v2")); err != nil {
		t.Fatalf("WriteFile(--force) = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "v2" {
		t.Errorf("file holds %q after --force, want v2", b)
	}
	wantFileMode(t, path, 0o600)

	for _, mode := range []string{"999", "rw", "01777", ""} {
		o := FileOutput{FileMode: mode}
		if err := o.check(env, filepath.Join(dir, "other")); err == nil {
			t.Errorf("check with --file-mode %q = nil, want an error", mode)
		}
	}

	t.Run("symlink", func(t *testing.T) {
		link := filepath.Join(dir, "link")
		skipUnlessLinked(t, os.Symlink(path, link), link)
		if err := o.check(env, link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("check(symlink) = %v, want a refusal naming the link", err)
		}
	})
}
