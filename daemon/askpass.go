package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/opxhq/opx/internal/console"
	"github.com/opxhq/opx/internal/notify"
)

// askEnvVars are the variables an askpass program gets from the daemon's
// environment: what a dialog needs to reach the user's display, and no
// more. SSH_ASKPASS_PROMPT=confirm is added: a yes/no question.
var askEnvVars = []string{"DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS",
	"XDG_RUNTIME_DIR", "XDG_SESSION_TYPE", "HOME", "PATH", "LANG", "LC_ALL", "LC_MESSAGES", "LC_CTYPE",
	"SYSTEMROOT", "USERPROFILE", "TEMP", "TMP"}

// askpassProgram is the program that asks the user: OPX_ASKPASS, else
// SSH_ASKPASS; "" for none.
func askpassProgram(getenv func(string) string) string {
	if p := getenv("OPX_ASKPASS"); p != "" {
		return p
	}
	return getenv("SSH_ASKPASS")
}

// askEnv is the environment of an askpass program, from getenv.
func askEnv(getenv func(string) string) []string {
	env := []string{"SSH_ASKPASS_PROMPT=confirm"}
	for _, v := range askEnvVars {
		if val := getenv(v); val != "" {
			env = append(env, v+"="+val)
		}
	}
	return env
}

// askpass runs prog with the question as its one argument, as OpenSSH runs
// SSH_ASKPASS with SSH_ASKPASS_PROMPT=confirm: exit status 0 is yes, any
// other no. It runs with an argument vector and env (never a shell), its
// input closed and its output dropped, and is killed when ctx ends (the
// question was answered elsewhere, or timed out).
func askpass(ctx context.Context, prog string, env []string, text string) (bool, error) {
	cmd := exec.CommandContext(ctx, prog, text)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, io.Discard, io.Discard
	cmd.WaitDelay = time.Second
	console.HideChild(cmd)
	err := cmd.Run()
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.Exited():
		return false, nil
	}
	return false, fmt.Errorf("askpass %s: %w", prog, err)
}

// newChannel is how the daemon asks: the askpass program when its
// environment names one; else a desktop notification with Allow and Deny
// (freedesktop Notifications on D-Bus, osascript on macOS) when the
// system has one at the time of the question; else none, and the question
// waits for opx approve. The program is named by path or looked up in the
// daemon's PATH at each question.
func newChannel(getenv func(string) string) func(ctx context.Context, q *question, text string) (bool, string, error) {
	if prog := askpassProgram(getenv); prog != "" {
		env := askEnv(getenv)
		return func(ctx context.Context, q *question, text string) (bool, string, error) {
			yes, err := askpass(ctx, prog, env, text)
			return yes, "askpass", err
		}
	}
	return func(ctx context.Context, q *question, text string) (bool, string, error) {
		if err := notify.Available(getenv); err != nil {
			return false, "", err
		}
		yes, err := notify.Ask(ctx, getenv, notify.Prompt{Title: "opx: allow a read?", Body: text})
		if errors.Is(err, notify.ErrNoAnswer) {
			// Gone without an answer (it expired): opx approve still can.
			return false, "", err
		}
		return yes, "notification", err
	}
}

// processEnv is the daemon's environment when it started.
var processEnv = os.Getenv
