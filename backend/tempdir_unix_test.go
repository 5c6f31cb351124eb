//go:build unix

package backend

import "testing"

// tempDir is t.TempDir (wine_windows_test.go says why Windows differs).
func tempDir(t *testing.T) string { return t.TempDir() }
