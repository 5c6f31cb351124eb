package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// tempDir is t.TempDir, emptied by the test's own cleanup first: under wine
// 8, os.RemoveAll (t.TempDir's cleanup) removes nothing inside a directory
// (wine answers FileDispositionInformationEx with STATUS_NOT_IMPLEMENTED),
// while os.Remove, one name at a time, works.
func tempDir(t testing.TB) string {
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
