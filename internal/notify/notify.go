// Package notify asks the user a yes-or-no question through the desktop:
// a freedesktop notification with Allow and Deny actions over the D-Bus
// session bus (Linux and the other Unix systems), a dialog shown by
// osascript (macOS). The daemon uses it for a policy rule that says "ask",
// when no askpass program is configured (issue 25). Windows has no such
// channel here; there, as everywhere, `opx approve` answers instead.
//
// Ask neither decides nor times out by itself: the daemon's context says
// when the question is no longer open, and Ask then withdraws it.
package notify

import (
	"errors"
	"fmt"
)

// Prompt is one question to the user: a short title and a body of plain text
// (the caller has already escaped control characters).
type Prompt struct {
	Title, Body string
	// AllowLabel and DenyLabel are the button texts; empty means "Allow"
	// and "Deny".
	AllowLabel, DenyLabel string
}

// ErrUnavailable is wrapped by Ask and Available when this system has no
// notification channel that can answer (no session bus, no notification
// server, a server without actions, not Linux or macOS).
var ErrUnavailable = errors.New("no desktop notification channel")

// ErrNoAnswer is wrapped by Ask when the notification went away without an
// answer (expired, or closed by the server), so the caller keeps waiting on
// its other channels.
var ErrNoAnswer = errors.New("the notification went away unanswered")

// unavailable is an error wrapping ErrUnavailable.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnavailable}, args...)...)
}

// labels is p's button texts, the defaults filled in.
func (p Prompt) labels() (allow, deny string) {
	allow, deny = p.AllowLabel, p.DenyLabel
	if allow == "" {
		allow = "Allow"
	}
	if deny == "" {
		deny = "Deny"
	}
	return allow, deny
}
