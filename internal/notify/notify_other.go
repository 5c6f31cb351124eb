//go:build !unix

package notify

import (
	"context"
	"runtime"
)

// Available reports that opx has no notification channel with actions on
// this system (Windows): the user answers with opx approve.
func Available(getenv func(string) string) error {
	name := runtime.GOOS
	if name == "windows" {
		name = "Windows"
	}
	return unavailable("no notification channel with actions on %s; use opx approve", name)
}

// Ask asks nobody here: it returns Available's error.
func Ask(ctx context.Context, getenv func(string) string, p Prompt) (bool, error) {
	return false, Available(getenv)
}
