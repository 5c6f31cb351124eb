package notify

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"time"
)

// Available reports whether osascript is there to show a dialog. Whether
// a dialog can be shown (a logged-in desktop) only Ask finds out.
func Available(getenv func(string) string) error {
	if _, err := os.Stat(osascriptPath); err != nil {
		return unavailable("no osascript: %v", err)
	}
	return nil
}

// Ask shows p as a dialog (osascript's display dialog) with a Deny and an
// Allow button, Deny the default, and waits for the user: true for Allow,
// false for Deny or a cancel. The dialog gives up at ctx's deadline; when
// ctx ends first, Ask ends osascript, which takes its dialog with it, and
// returns ctx.Err().
func Ask(ctx context.Context, getenv func(string) string, p Prompt) (bool, error) {
	args, err := osascriptArgs(p, giveUpAfter(ctx, time.Now()))
	if err != nil {
		return false, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, osascriptPath, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return dialogAnswer(p, stdout.String(), stderr.String(), err)
}
