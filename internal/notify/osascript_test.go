package notify

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// The dialog's text reaches osascript as arguments after a fixed script,
// never inside it: a title that looks like an option, or a body that would
// end an AppleScript string, is a string.
func TestOsascriptArgs(t *testing.T) {
	p := Prompt{
		Title:      "-e",
		Body:       `/tmp/x" & (do shell script "touch /tmp/owned") & "`,
		AllowLabel: "Allow once",
		DenyLabel:  "Deny",
	}
	args, err := osascriptArgs(p, 90*time.Second)
	if err != nil {
		t.Fatalf("osascriptArgs(%+v) = %v", p, err)
	}
	var script []string
	for _, line := range dialogScript {
		script = append(script, "-e", line)
	}
	want := append(script, "opx", p.Title, p.Body, p.AllowLabel, p.DenyLabel, "90")
	if !slices.Equal(args, want) {
		t.Errorf("osascriptArgs(%+v) = %q, want %q", p, args, want)
	}
}

// The dialog gives up at the context's deadline, rounded up to a whole
// second and at least one, or never where the context has no deadline.
func TestGiveUpAfter(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name     string
		deadline time.Duration // from now; 0: none
		want     string
	}{
		{"no deadline", 0, "0"},
		{"in 30 s", 30 * time.Second, "30"},
		{"in 1.5 s", 1500 * time.Millisecond, "2"},
		{"in 10 ms", 10 * time.Millisecond, "1"},
		{"past", -time.Second, "1"},
	} {
		ctx := context.Background()
		if tt.deadline != 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, now.Add(tt.deadline))
			defer cancel()
		}
		args, err := osascriptArgs(Prompt{}, giveUpAfter(ctx, now))
		if err != nil {
			t.Fatal(err)
		}
		if got := args[len(args)-1]; got != tt.want {
			t.Errorf("%s: giving up after %s, want %s", tt.name, got, tt.want)
		}
	}
}

// Two buttons with one text could not be told apart.
func TestOsascriptArgsRefuseLabelsAlike(t *testing.T) {
	for _, p := range []Prompt{{AllowLabel: "OK", DenyLabel: "OK"}, {DenyLabel: "Allow"}} {
		if _, err := osascriptArgs(p, 0); err == nil {
			t.Errorf("osascriptArgs(%+v) = nil error, want one", p)
		}
	}
}

// What the dialog script prints is the answer: the button clicked, compared
// exactly; a cancel is a Deny; giving up is no answer; osascript failing
// (no desktop to show a dialog on) is no channel.
func TestDialogAnswer(t *testing.T) {
	p := Prompt{AllowLabel: "Allow", DenyLabel: "allow!"}
	failed := errors.New("exit status 1")
	for _, tt := range []struct {
		out, stderr string
		err         error
		want        bool
		wantErr     error
	}{
		{"button:Allow\n", "", nil, true, nil},
		{"button:allow!\n", "", nil, false, nil},
		{"cancel\n", "", nil, false, nil},
		{"gave up\n", "", nil, false, ErrNoAnswer},
		{"", "execution error: No user interaction allowed. (-1713)\n", failed, false, ErrUnavailable},
	} {
		got, err := dialogAnswer(p, tt.out, tt.stderr, tt.err)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("dialogAnswer(%q, %q, %v) = %v, %v, want %v, %v", tt.out, tt.stderr, tt.err, got, err, tt.want, tt.wantErr)
		}
	}
	for _, out := range []string{"button:ALLOW\n", "button:\n", ""} {
		if got, err := dialogAnswer(p, out, "", nil); got || err == nil {
			t.Errorf("dialogAnswer(%q) = %v, %v, want false and an error", out, got, err)
		}
	}
	if _, err := dialogAnswer(p, "", "boom", failed); !strings.Contains(err.Error(), "boom") {
		t.Errorf("dialogAnswer(failed) = %v, want osascript's stderr in it", err)
	}
}
