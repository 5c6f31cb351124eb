package winpipe

import (
	"strings"
	"testing"
)

func TestNewName(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		n := NewName()
		hexPart, ok := strings.CutPrefix(n, NamePrefix)
		if !ok || len(hexPart) != 32 || strings.Trim(hexPart, "0123456789abcdef") != "" {
			t.Fatalf("NewName() = %q, want %q and 32 lowercase hex digits", n, NamePrefix)
		}
		if seen[n] {
			t.Fatalf("NewName() = %q twice", n)
		}
		seen[n] = true
	}
}
