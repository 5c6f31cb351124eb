// Package testdir gives opx's package tests a temporary directory that
// their own cleanup can remove on every system they run on, wine included.
package testdir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// New is t.TempDir, removed one name at a time, deepest first, by a cleanup
// that runs before t.TempDir's own. Under wine 8, os.RemoveAll (which
// t.TempDir's cleanup calls) removes nothing inside a directory: wine
// answers FileDispositionInformationEx with STATUS_NOT_IMPLEMENTED, which Go
// does not take as a cue to fall back. os.Remove of one name works there,
// and everywhere else.
func New(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		var names []string
		filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
			if err == nil {
				names = append(names, path)
			}
			return nil
		})
		for _, name := range slices.Backward(names) {
			if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("clean up: %v", err)
			}
		}
	})
	return dir
}
