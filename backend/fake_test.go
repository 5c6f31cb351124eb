package backend

import (
	"strings"
	"testing"
)

func TestFakeValue(t *testing.T) {
	// sha256("op://a/b/c") starts with these 16 hex digits.
	if got := FakeValue("", "op://a/b/c"); len(got) != 21 || !strings.HasPrefix(got, "fake_") {
		t.Fatalf("FakeValue = %q, want fake_ and 16 hex digits", got)
	}
	if FakeValue("", "op://a/b/c") == FakeValue("acct", "op://a/b/c") {
		t.Error("the account must change the value")
	}
	if FakeValue("x", "op://a/b/c") != FakeValue("x", "op://a/b/c") {
		t.Error("FakeValue is not deterministic")
	}
}
