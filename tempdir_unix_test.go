//go:build unix

package main

import "testing"

func tempDir(t testing.TB) string { return t.TempDir() }
