//go:build unix

package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opxhq/opx/e2e/harness"
	"github.com/opxhq/opx/internal/notify/notifytest"
)

// askEnv is an Env whose daemon (race-built, recognising the helpers as
// they run opx) asks about every read no rule covers, with the audit log on.
func askEnv(t *testing.T, extraRules string) (e *testEnv, a, b string) {
	t.Helper()
	a, b = buildHelpers(t)
	e = newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	e.Vars["OP_AUTHD_ENABLE_AUDIT_LOG"] = "true"
	e.Vars["OP_AUTHD_BACKEND"] = "fake"
	e.Vars["OPX_ASKPASS"], e.Vars["SSH_ASKPASS"] = "", ""
	e.writePolicy(`{"default": "ask", "allow": [` + extraRules + `]}`)
	return e, a, b
}

// testAskpass is testdata/askpass copied into e, answering answer.
func testAskpass(t *testing.T, e *testEnv, answer string) string {
	t.Helper()
	data, err := os.ReadFile(harness.Tool(t, "./testdata/askpass"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.Dir, "askpass")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	setAnswer(t, p, answer)
	return p
}

func setAnswer(t *testing.T, askpass, answer string) {
	t.Helper()
	if err := os.WriteFile(askpass+".answer", []byte(answer), 0o600); err != nil {
		t.Fatal(err)
	}
}

// askpassLog is what the test askpass was asked: each call's arguments
// and environment.
func askpassLog(askpass string) []struct {
	Args, Env []string
} {
	var out []struct{ Args, Env []string }
	b, _ := os.ReadFile(askpass + ".log")
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var c struct{ Args, Env []string }
		if json.Unmarshal([]byte(line), &c) == nil {
			out = append(out, c)
		}
	}
	return out
}

// approvals returns the APPROVAL records of e's audit log, as "step answer
// channel".
func approvals(t *testing.T, e *testEnv) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(e.DataDir, "audit-*.log"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			var r struct {
				Event, Step, Answer, Channel string
				Question                     struct{ Refs []string }
			}
			if json.Unmarshal([]byte(line), &r) == nil && r.Event == "APPROVAL" {
				out = append(out, strings.TrimSpace(r.Step+" "+r.Answer+" "+r.Channel))
			}
		}
	}
	return out
}

// TestAskThroughAskpass: a read the policy asks about is served when the
// askpass program says yes, refused when it says no or does not answer in
// time (naming opx approve); it is asked the program and the ref, never
// the value, with SSH_ASKPASS_PROMPT=confirm and no variable of the
// daemon's but the display's; a read a rule allows asks nothing; every
// step is in the audit log.
func TestAskThroughAskpass(t *testing.T) {
	t.Parallel()
	e, a, b := askEnv(t, "")
	e.writePolicy(`{"default": "ask", "allow": [{"path": "` + b + `", "refs": ["*"]}]}`)
	askpass := testAskpass(t, e, "yes")
	e.Vars["OPX_ASKPASS"] = askpass
	e.Vars["OP_AUTHD_ASK_TIMEOUT"] = "2s"
	e.Vars["DISPLAY"] = ":42"
	e.StartDaemon("")

	if r := e.helper(a, "read", "op://v/i/yes"); r.Code != 0 || r.Stdout != fv("op://v/i/yes")+"\n" {
		t.Fatalf("read the askpass said yes to = %+v", r)
	}
	calls := askpassLog(askpass)
	if len(calls) != 1 || len(calls[0].Args) != 1 {
		t.Fatalf("askpass calls = %+v, want one, with one argument", calls)
	}
	q := calls[0].Args[0]
	if !strings.Contains(q, a) || !strings.Contains(q, "op://v/i/yes") || strings.Contains(q, fv("op://v/i/yes")) {
		t.Errorf("the question %q: want the program and the ref, never the value", q)
	}
	env := strings.Join(calls[0].Env, "\n")
	if !strings.Contains(env, "SSH_ASKPASS_PROMPT=confirm") || !strings.Contains(env, "DISPLAY=:42") ||
		strings.Contains(env, "OPX_") || strings.Contains(env, "OP_AUTHD") || strings.Contains(env, "FAKEOP") {
		t.Errorf("askpass environment:\n%s\nwant SSH_ASKPASS_PROMPT=confirm and DISPLAY only from the daemon's", env)
	}

	setAnswer(t, askpass, "no")
	if r := e.helper(a, "read", "op://v/i/no"); r.Code != 1 || !strings.Contains(r.Stderr, "refused the read") || r.Stdout != "" {
		t.Errorf("read the askpass said no to = %+v", r)
	}
	setAnswer(t, askpass, "wait")
	if r := e.helper(a, "read", "op://v/i/late"); r.Code != 1 || !strings.Contains(r.Stderr, "no one answered") || !strings.Contains(r.Stderr, "opx approve") {
		t.Errorf("read no one answered = %+v", r)
	}
	if r := e.helper(b, "read", "op://v/i/rule"); r.Code != 0 {
		t.Errorf("read a rule allows = %+v", r)
	}
	if out := e.MustOpx("status"); !strings.Contains(out, "asking    through askpass "+askpass+", 2s to answer") || !strings.Contains(out, "default ask") {
		t.Errorf("opx status:\n%s", out)
	}
	if n := len(askpassLog(askpass)); n != 3 {
		t.Errorf("askpass asked %d times, want 3 (not for the read a rule allows)", n)
	}
	// A program whose name holds a terminal's control sequence is named
	// escaped: the question cannot rewrite what the user reads.
	evil := filepath.Join(filepath.Dir(a), "evil\x1b]0;owned\x07")
	data, _ := os.ReadFile(a)
	if err := os.WriteFile(evil, data, 0o755); err != nil {
		t.Fatal(err)
	}
	setAnswer(t, askpass, "no")
	e.helper(evil, "read", "op://v/i/evil")
	if calls := askpassLog(askpass); len(calls) != 4 || strings.ContainsAny(calls[3].Args[0], "\x1b\x07") || !strings.Contains(calls[3].Args[0], `evil\x1b]0;owned\a`) {
		t.Errorf("the question about a program named with control characters: %+v", calls[len(calls)-1].Args)
	}
	want := []string{"asked", "answered yes askpass", "asked", "answered no askpass", "asked", "timed_out no timeout", "asked", "answered no askpass"}
	if got := approvals(t, e); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("audit APPROVAL records = %q, want %q", got, want)
	}
}

// TestApproveFromAnotherTerminal: with no askpass, 20 concurrent reads of
// one program wait on one question, which opx approve lists and answers
// from another process; --for lets the program read again without asking
// until opx lock; --always writes a rule; --deny refuses. The waiting
// client says what it waits for.
func TestApproveFromAnotherTerminal(t *testing.T) {
	t.Parallel()
	e, a, _ := askEnv(t, "")
	e.Vars["OP_AUTHD_ASK_TIMEOUT"] = "30s"
	e.StartDaemon("")
	const ref = "op://v/i/twenty"

	var wg sync.WaitGroup
	results := make([]harness.Result, 20)
	for i := range results {
		wg.Go(func() { results[i] = e.helper(a, "read", ref) })
	}
	id := waitQuestion(t, e)
	time.Sleep(time.Second) // the last of the 20 join the question
	if out := e.MustOpx("status"); !strings.Contains(out, "with opx approve alone") || !strings.Contains(out, "1 question waiting: opx approve") {
		t.Errorf("opx status while a question waits:\n%s", out)
	}
	if out := e.MustOpx("approve"); strings.Count(out, "wants to read") != 1 {
		t.Errorf("opx approve lists:\n%s\nwant one question for 20 reads", out)
	}
	if out := e.MustOpx("approve", id, "--for", "1m"); !strings.Contains(out, "allowed, and remembered") {
		t.Errorf("opx approve --for = %q", out)
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 || r.Stdout != fv(ref)+"\n" {
			t.Fatalf("read %d of 20 = %+v", i, r)
		}
	}
	if !strings.Contains(results[0].Stderr, "waiting for approval (question "+id+")") {
		t.Errorf("a waiting client's stderr = %q, want it to say it waits for question %s", results[0].Stderr, id)
	}
	// Remembered: served without a question.
	if r := e.helper(a, "read", ref); r.Code != 0 || r.Stderr != "" {
		t.Errorf("read again within --for = %+v", r)
	}

	// --always writes a rule; the next read asks nothing.
	const other = "op://v/i/always"
	done := make(chan harness.Result, 1)
	go func() { done <- e.helper(a, "read", other) }()
	id = waitQuestion(t, e)
	e.MustOpx("approve", id, "--always")
	if r := <-done; r.Code != 0 || r.Stdout != fv(other)+"\n" {
		t.Errorf("read approved --always = %+v", r)
	}
	pol, _ := os.ReadFile(filepath.Join(e.ConfigDir, "policy.json"))
	if !strings.Contains(string(pol), a) || !strings.Contains(string(pol), other) || mode(t, filepath.Join(e.ConfigDir, "policy.json")) != 0o600 {
		t.Errorf("policy.json after --always:\n%s", pol)
	}
	if r := e.helper(a, "read", other); r.Code != 0 {
		t.Errorf("read the rule now allows = %+v", r)
	}

	// A lock ends what --for remembered: asked again, and refused.
	e.MustOpx("lock")
	e.MustOpx("unlock")
	go func() { done <- e.helper(a, "read", ref) }()
	id = waitQuestion(t, e)
	if out := e.MustOpx("approve", id, "--deny"); !strings.Contains(out, "refused") {
		t.Errorf("opx approve --deny = %q", out)
	}
	if r := <-done; r.Code != 1 || !strings.Contains(r.Stderr, "refused the read") {
		t.Errorf("read refused with opx approve = %+v", r)
	}
	got := strings.Join(approvals(t, e), ",")
	for _, want := range []string{"asked,answered yes opx approve", "remembered yes remembered", "answered no opx approve"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit APPROVAL records %q lack %q", got, want)
		}
	}
	if strings.Count(got, "asked") != 3 {
		t.Errorf("audit APPROVAL records %q: want 3 questions (20 reads asked once)", got)
	}
	if out := e.MustOpx("audit", "--questions"); !strings.Contains(out, "yes (opx approve) by ") || !strings.Contains(out, "no (opx approve)") ||
		!strings.Contains(out, a) || !strings.Contains(out, ref) || strings.Contains(out, fv(ref)) {
		t.Errorf("opx audit --questions:\n%s", out)
	}
}

// waitQuestion waits for opx approve to list a question, and returns the
// first one's id.
func waitQuestion(t *testing.T, e *testEnv) string { return waitQuestionOf(t, e, "") }

// waitQuestionOf waits for opx approve to list a question about the
// program prog ("" for any), and returns its id.
func waitQuestionOf(t *testing.T, e *testEnv, prog string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out := e.MustOpx("approve")
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.Contains(line, "wants to read") && strings.Contains(line, prog) {
				return f[0]
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no question about %q within 20 s", prog)
	return ""
}

// TestTheAskingProgramCannotApprove: the program whose read waits cannot
// answer its question, nor can a shell it starts; another process can.
func TestTheAskingProgramCannotApprove(t *testing.T) {
	t.Parallel()
	e, a, _ := askEnv(t, "")
	e.StartDaemon("")
	const ref = "op://v/i/self"
	cmd := exec.Command(a, "selfapprove", ref)
	tok, _ := os.ReadFile(filepath.Join(e.DataDir, "token"))
	cmd.Env = e.Environ("OPX_BIN="+e.Client, "OPX_TOKEN="+strings.TrimSpace(string(tok)))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("the helper ended early: %v", lines.Err())
		}
		return lines.Text()
	}
	id, ok := strings.CutPrefix(next(), "question ")
	if !ok || id == "" {
		t.Fatalf("the helper found no question")
	}
	for _, who := range []string{"self", "child"} {
		if line := next(); !strings.HasPrefix(line, who+" 1 ") || !strings.Contains(line, "may not answer") {
			t.Errorf("%s approving its own read: %s", who, line)
		}
	}
	if r := e.Opx("approve", id); r.Code != 0 {
		t.Fatalf("opx approve from the test = %+v", r)
	}
	if line := next(); line != fv(ref) {
		t.Errorf("the helper's read printed %q, want its value", line)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the helper: %v", err)
	}
}

// TestAskThroughANotification: with no askpass, the daemon asks through a
// desktop notification with Allow and Deny on the session bus (a real
// dbus-daemon, a test notification server): Allow serves the read, and
// the notification shows the program and the ref, never the value; a
// question answered with opx approve meanwhile withdraws its notification.
func TestAskThroughANotification(t *testing.T) {
	t.Parallel()
	for _, answer := range []string{"opx-allow", "none"} {
		t.Run(answer, func(t *testing.T) {
			t.Parallel()
			bus := notifytest.StartBus(t)
			log := notifytest.StartServer(t, bus, "NOTIFY_ANSWER="+answer, "NOTIFY_DELAY=200ms")
			e, a, _ := askEnv(t, "")
			e.Vars["DBUS_SESSION_BUS_ADDRESS"] = bus.Addr
			e.StartDaemon("")
			ref := "op://v/i/" + answer
			done := make(chan harness.Result, 1)
			go func() { done <- e.helper(a, "read", ref) }()
			if answer == "none" {
				e.MustOpx("approve", waitQuestion(t, e))
			}
			if r := <-done; r.Code != 0 || r.Stdout != fv(ref)+"\n" {
				t.Fatalf("read = %+v", r)
			}
			b, _ := os.ReadFile(log)
			calls := string(b)
			if !strings.Contains(calls, a) || !strings.Contains(calls, ref) || strings.Contains(calls, fv(ref)) ||
				!strings.Contains(calls, "opx-allow") || !strings.Contains(calls, "opx-deny") {
				t.Errorf("the notification server got:\n%s\nwant the program, the ref and Allow/Deny actions, never the value", calls)
			}
			if answer == "none" && !strings.Contains(calls, "close") {
				t.Errorf("the notification server got:\n%s\nwant the notification withdrawn once opx approve answered", calls)
			}
			got := strings.Join(approvals(t, e), ",")
			if want := map[string]string{"opx-allow": "answered yes notification", "none": "answered yes opx approve"}[answer]; !strings.Contains(got, want) {
				t.Errorf("audit APPROVAL records %q lack %q", got, want)
			}
		})
	}
}

// TestQuestionsFromOneProgramAreCapped: one program asking about six
// different refs at once has four questions waiting; its other reads are
// refused at once, saying why, and another program still gets asked.
func TestQuestionsFromOneProgramAreCapped(t *testing.T) {
	t.Parallel()
	e, a, b := askEnv(t, "")
	e.Vars["OP_AUTHD_ASK_TIMEOUT"] = "5s"
	e.StartDaemon("")
	var wg sync.WaitGroup
	results := make([]harness.Result, 6)
	for i := range results {
		wg.Go(func() { results[i] = e.helper(a, "read", "op://v/flood/"+string(rune('a'+i))) })
	}
	other := make(chan harness.Result, 1)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && strings.Count(e.MustOpx("approve"), "wants to read") < 4 {
		time.Sleep(50 * time.Millisecond)
	}
	go func() { other <- e.helper(b, "read", "op://v/flood/other") }()
	e.MustOpx("approve", waitQuestionOf(t, e, b))
	if r := <-other; r.Code != 0 {
		t.Errorf("the other program's read = %+v", r)
	}
	wg.Wait()
	capped := 0
	for _, r := range results {
		if strings.Contains(r.Stderr, "4 questions waiting for an answer already") {
			capped++
		}
	}
	if capped != 2 {
		t.Errorf("%d of 6 reads refused for the cap, want 2: %+v", capped, results)
	}
}
