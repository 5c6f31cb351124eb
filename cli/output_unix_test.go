//go:build unix

package cli

import (
	"os"
	"testing"
)

// wantFileMode fails the test unless the file at path has mode perm, as
// --file-mode promises on Unix.
func wantFileMode(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != perm {
		t.Errorf("mode of %s = %v (%v), want %#o", path, fi.Mode().Perm(), err, perm)
	}
}

// skipUnlessLinked skips the test when os.Symlink failed with err.
func skipUnlessLinked(t *testing.T, err error, _ string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
