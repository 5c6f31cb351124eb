//go:build !unix

package notify

import (
	"context"
	"errors"
	"testing"
)

// Where opx has no notification channel, both say so with ErrUnavailable,
// which the daemon takes as "ask through opx approve alone".
func TestUnavailableHere(t *testing.T) {
	getenv := func(string) string { return "" }
	if err := Available(getenv); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Available() = %v, want ErrUnavailable", err)
	}
	ok, err := Ask(context.Background(), getenv, Prompt{Title: "t", Body: "b"})
	if ok || !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ask() = %v, %v, want false, ErrUnavailable", ok, err)
	}
}
