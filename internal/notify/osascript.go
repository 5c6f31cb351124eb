package notify

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// osascriptPath is macOS's osascript, by its absolute path: not whatever
// the daemon's PATH finds first.
const osascriptPath = "/usr/bin/osascript"

// dialogScript shows the prompt as a dialog with two buttons, Deny the
// default (Return answers Deny). Its text comes in argv, never as
// AppleScript source: a program path or a label is a string, whatever it
// holds. argv: a marker, the title, the body, the Allow label, the Deny
// label, and the seconds after which it gives up (0: never).
//
// It prints "button:" and the text of the button clicked (compared in Go,
// exactly: AppleScript compares text without case), "gave up", or
// "cancel" for a dialog cancelled (Escape, or a button named Cancel).
var dialogScript = []string{
	`on run argv`,
	`set {theTitle, theBody, allowLabel, denyLabel, giveUp} to rest of argv`,
	`set giveUp to giveUp as integer`,
	`try`,
	`if giveUp > 0 then`,
	`set r to display dialog theBody with title theTitle buttons {denyLabel, allowLabel} default button denyLabel giving up after giveUp`,
	`if gave up of r then return "gave up"`,
	`else`,
	`set r to display dialog theBody with title theTitle buttons {denyLabel, allowLabel} default button denyLabel`,
	`end if`,
	`on error errText number errNumber`,
	`if errNumber is -128 then return "cancel"`,
	`error errText number errNumber`,
	`end try`,
	`return "button:" & (button returned of r)`,
	`end run`,
}

// argvMarker comes first among the script's arguments, so that a title
// starting with "-" is not read as one of osascript's options.
const argvMarker = "opx"

// osascriptArgs is the argument vector (after the program name) that shows
// p, giving up after giveUp (0: never).
func osascriptArgs(p Prompt, giveUp time.Duration) ([]string, error) {
	allow, deny := p.labels()
	if allow == deny {
		return nil, fmt.Errorf("the Allow and Deny buttons are both %q", allow)
	}
	var args []string
	for _, line := range dialogScript {
		args = append(args, "-e", line)
	}
	secs := 0
	if giveUp > 0 {
		secs = max(1, int(math.Ceil(giveUp.Seconds())))
	}
	return append(args, argvMarker, p.Title, p.Body, allow, deny, strconv.Itoa(secs)), nil
}

// giveUpAfter is how long the dialog may stay: until ctx's deadline, or
// (0) for as long as ctx lasts.
func giveUpAfter(ctx context.Context, now time.Time) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return max(time.Second, deadline.Sub(now))
}

// dialogAnswer reads what osascript printed (out) and how it ended (err,
// from exec.Cmd.Run; stderr what it printed there) into Ask's answer.
func dialogAnswer(p Prompt, out, stderr string, err error) (bool, error) {
	if err != nil {
		return false, unavailable("osascript: %v: %s", err, strings.TrimSpace(stderr))
	}
	allow, deny := p.labels()
	switch got := strings.TrimSuffix(out, "\n"); got {
	case "button:" + allow:
		return true, nil
	case "button:" + deny, "cancel":
		return false, nil
	case "gave up":
		return false, fmt.Errorf("%w: the dialog gave up", ErrNoAnswer)
	default:
		return false, fmt.Errorf("osascript printed %q, not an answer", got)
	}
}
