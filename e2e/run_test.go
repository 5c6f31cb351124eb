//go:build linux

package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"path/filepath"

	"github.com/opxhq/opx/e2e/harness"
	"github.com/opxhq/opx/mask"
)

func TestRunConcealsSecretsInTheOutput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	a, b := fv("op://v/i/a"), fv("op://v/i/b")
	const marker = mask.Marker
	for _, c := range []struct {
		name, script, stdout, stderr string
	}{
		{"stdout", `echo "A=$A"`, "A=" + marker + "\n", ""},
		{"stderr", `echo "A=$A" >&2`, "", "A=" + marker + "\n"},
		{"inside a longer line", `echo "x${A}y"`, "x" + marker + "y\n", ""},
		{"several in one line", `echo "$A $B $A"`, marker + " " + marker + " " + marker + "\n", ""},
		// The halves are cut before the first write: the pause between the
		// writes must stay well under mask.IdleFlush on a loaded machine.
		// Two writes, with no program started between them: a pause longer
		// than mask.IdleFlush (a loaded machine starting sleep) would
		// rightly write the first part. The mask package's tests split
		// values at every offset.
		{"split across writes", `a=$(echo "$A" | cut -c1-9); b=$(echo "$A" | cut -c10-); printf %s "$a"; printf '%s\n' "$b"`, marker + "\n", ""},
		{"nothing to conceal", `echo plain`, "plain\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.Opx("run", "--env", "A=op://v/i/a", "--env", "B=op://v/i/b", "--", "sh", "-c", c.script)
			if r.Code != 0 || r.Stdout != c.stdout || r.Stderr != c.stderr {
				t.Errorf("got exit %d, stdout %q, stderr %q; want stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr, c.stdout, c.stderr)
			}
		})
	}

	r := e.Opx("run", "--no-masking", "--env", "A=op://v/i/a", "--", "sh", "-c", `echo "$A"`)
	if r.Stdout != a+"\n" {
		t.Errorf("--no-masking: %q, want the value", r.Stdout)
	}
	r = e.OpxEnv([]string{"OPX_NO_MASKING=1"}, "run", "--env", "B=op://v/i/b", "--", "sh", "-c", `echo "$B"`)
	if r.Stdout != b+"\n" {
		t.Errorf("OPX_NO_MASKING=1: %q, want the value", r.Stdout)
	}
}

// A secret shorter than mask.MinConcealLen bytes stays visible, and opx
// says which variable that is.
func TestRunWarnsAboutValuesTooShortToConceal(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.WriteFixture("mem", map[string]string{"pin": "4711", "key": "long-enough-secret"})
	e.SignIn("my")
	e.StartDaemon("")
	r := e.Opx("run", "--env", "PIN=op://Infra/mem/pin", "--env", "KEY=op://Infra/mem/key", "--", "sh", "-c", `echo "$PIN $KEY"`)
	if r.Code != 0 || r.Stdout != "4711 "+mask.Marker+"\n" {
		t.Fatalf("got exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "PIN") || strings.Contains(r.Stderr, "KEY") || strings.Contains(r.Stderr, "4711") {
		t.Errorf("the warning should name PIN only, without its value: %q", r.Stderr)
	}
}

// opx run gives the command the refs of --env, of --env-file (literals as
// written) and of its own environment, all in one backend call, and keeps
// the rest of the environment; opx exits with the command's status, as a
// shell reports it, with masking on or off.
func TestRunInjectsSecretsAndPassesExitStatuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	envFile := filepath.Join(e.Dir, "app.env")
	os.WriteFile(envFile, []byte("# app\nFROM_FILE=op://v/file/f\nLITERAL=\"hello world\"\n"), 0o600)
	r := e.OpxEnv([]string{"INHERITED=vault://secret/app#k", "PLAIN=keep"},
		"run", "--no-masking", "--env", "DB_PASS=op://Private/db/password", "--env-file", envFile, "--",
		"sh", "-c", `printf '%s|%s|%s|%s|%s\n' "$DB_PASS" "$FROM_FILE" "$INHERITED" "$LITERAL" "$PLAIN"; exit 7`)
	want := strings.Join([]string{fv("op://Private/db/password"), fv("op://v/file/f"), fv("vault://secret/app#k"), "hello world", "keep"}, "|") + "\n"
	if r.Stdout != want || r.Code != 7 {
		t.Fatalf("opx run = %q exit %d (stderr %q), want %q exit 7", r.Stdout, r.Code, r.Stderr, want)
	}
	if st := e.Status(); st.BackendCalls != 1 {
		t.Errorf("opx run made %d backend calls, want 1 (one round trip)", st.BackendCalls)
	}

	notExec := e.Dir + "/not-executable"
	os.WriteFile(notExec, []byte("#!/bin/sh\necho hi\n"), 0o600)
	for _, masking := range []string{"--env=A=op://v/i/a", "--no-masking"} {
		for _, c := range []struct {
			argv []string
			code int
		}{
			{[]string{"true"}, 0},
			{[]string{"sh", "-c", "exit 7"}, 7},
			{[]string{"opx-no-such-command"}, 127},
			{[]string{notExec}, 126},
			{[]string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
		} {
			r := e.Opx(append([]string{"run", masking, "--env", "B=op://v/i/b", "--"}, c.argv...)...)
			if r.Code != c.code {
				t.Errorf("%s %q: exit %d, want %d (stderr %q)", masking, c.argv, r.Code, c.code, r.Stderr)
			}
		}
	}
}

// Every signal opx run passes on reaches the command, whose status opx
// then exits with: the status the command's trap chose, or, for a command
// the signal ends, 128+N as a shell reports it.
func TestRunForwardsSignals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	start := func(script string) (*exec.Cmd, *harness.SyncBuf) {
		t.Helper()
		cmd := exec.Command(harness.Bins().Opx, "run", "--env", "A=op://v/i/a", "--", "sh", "-c", script)
		cmd.Env = e.Environ()
		out := &harness.SyncBuf{}
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		harness.WaitFor(t, out, "ready\n")
		return cmd, out
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2} {
		name := strings.TrimPrefix(fmt.Sprint(sig), "signal ")
		trap := map[syscall.Signal]string{syscall.SIGINT: "INT", syscall.SIGTERM: "TERM", syscall.SIGHUP: "HUP",
			syscall.SIGQUIT: "QUIT", syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2"}[sig]
		cmd, out := start(`trap 'echo "got ` + trap + ` $A"; exit 3' ` + trap + `; echo ready; while :; do sleep 0.02; done`)
		cmd.Process.Signal(sig)
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != 3 || out.String() != "ready\ngot "+trap+" "+mask.Marker+"\n" {
			t.Errorf("%s: exit %d, output %q", name, code, out.String())
		}
	}
	cmd, _ := start(`echo ready; exec sleep 30`)
	cmd.Process.Signal(syscall.SIGUSR1)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGUSR1) {
		t.Errorf("a command that SIGUSR1 ended: opx run exited %d, want %d", code, 128+int(syscall.SIGUSR1))
	}
}

// terminal runs opx on a pseudo-terminal held by the test, as a user at a
// terminal would: each of stdin, stdout and stderr is the terminal when
// tty says so, and a pipe (or /dev/null for stdin) otherwise.
type terminal struct {
	cmd            *exec.Cmd
	master         *os.File
	screen         harness.SyncBuf // what the terminal shows
	Stdout, Stderr harness.SyncBuf // what went to the pipes
	done           chan struct{}
	initial        *unix.Termios // the terminal's settings before the program ran
}

func (e *testEnv) inTerminal(tty [3]bool, rows, cols uint16, args ...string) *terminal {
	e.T.Helper()
	return e.inTerminalProgram(harness.Bins().Opx, tty, rows, cols, args...)
}

// inTerminalProgram is inTerminal for another program (a shell).
func (e *testEnv) inTerminalProgram(prog string, tty [3]bool, rows, cols uint16, args ...string) *terminal {
	e.T.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		e.T.Skipf("no pseudo-terminal on this machine: %v", err)
	}
	pty.Setsize(master, &pty.Winsize{Rows: rows, Cols: cols})
	term := &terminal{master: master, done: make(chan struct{})}
	if t, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS); err == nil {
		term.initial = t
	} else {
		e.T.Skipf("cannot read a terminal's settings here: %v", err)
	}
	cmd := exec.Command(prog, args...)
	cmd.Env = e.Environ()
	ctty := -1
	if tty[0] {
		cmd.Stdin, ctty = slave, 0
	}
	if tty[1] {
		cmd.Stdout = slave
		if ctty < 0 {
			ctty = 1
		}
	} else {
		cmd.Stdout = &term.Stdout
	}
	if tty[2] {
		cmd.Stderr = slave
		if ctty < 0 {
			ctty = 2
		}
	} else {
		cmd.Stderr = &term.Stderr
	}
	if ctty >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: ctty}
	}
	if err := cmd.Start(); err != nil {
		e.T.Fatal(err)
	}
	slave.Close()
	term.cmd = cmd
	go func() {
		defer close(term.done)
		io.Copy(&term.screen, master)
	}()
	e.T.Cleanup(func() {
		cmd.Process.Kill()
		master.Close()
	})
	return term
}

func (tm *terminal) wait(t *testing.T) int {
	t.Helper()
	exited := make(chan struct{})
	go func() { tm.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		tm.cmd.Process.Kill()
		<-exited
		t.Fatalf("the program did not end within 30 s; the terminal showed %q", tm.screen.String())
	}
	select {
	case <-tm.done:
	case <-time.After(5 * time.Second):
	}
	return tm.cmd.ProcessState.ExitCode()
}

// Inside opx run, `test -t N` is true exactly when it is true for opx, for
// every mix of terminal and pipe, and the secret is concealed wherever it
// is printed.
func TestRunKeepsTheTerminal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	script := `for f in 0 1 2; do if test -t $f; then printf 'tty%s ' $f; else printf 'pipe%s ' $f; fi; done; echo "$A"; echo "err $A" >&2`
	for bits := range 8 {
		tty := [3]bool{bits&1 != 0, bits&2 != 0, bits&4 != 0}
		t.Run(fmt.Sprintf("stdin=%v,stdout=%v,stderr=%v", tty[0], tty[1], tty[2]), func(t *testing.T) {
			tm := e.inTerminal(tty, 24, 80, "run", "--env", "A=op://v/i/a", "--", "sh", "-c", script)
			if code := tm.wait(t); code != 0 {
				t.Fatalf("exit %d; screen %q, stdout %q, stderr %q", code, tm.screen.String(), tm.Stdout.String(), tm.Stderr.String())
			}
			var want string
			for f := range 3 {
				if tty[f] {
					want += fmt.Sprintf("tty%d ", f)
				} else {
					want += fmt.Sprintf("pipe%d ", f)
				}
			}
			want += mask.Marker
			out := tm.Stdout.String()
			if tty[1] {
				out = strings.ReplaceAll(tm.screen.String(), "\r\n", "\n")
			}
			errOut := tm.Stderr.String()
			if tty[2] {
				errOut = strings.ReplaceAll(tm.screen.String(), "\r\n", "\n")
			}
			if !strings.Contains(out, want+"\n") {
				t.Errorf("stdout %q, want %q", out, want)
			}
			if !strings.Contains(errOut, "err "+mask.Marker+"\n") {
				t.Errorf("stderr %q, want the concealed value", errOut)
			}
			all := tm.screen.String() + tm.Stdout.String() + tm.Stderr.String()
			if strings.Contains(all, fv("op://v/i/a")) {
				t.Errorf("the value was shown: %q", all)
			}
		})
	}
}

// The command sees the terminal's size, and a change of it (SIGWINCH); what
// is typed reaches it; opx leaves the terminal as it found it.
func TestRunPassesTheTerminalThrough(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	tm := e.inTerminal([3]bool{true, true, true}, 30, 90, "run", "--env", "A=op://v/i/a", "--", "sh", "-c",
		`stty size; trap 'stty size; trap - WINCH' WINCH; echo ready; read line; echo "got $line"; read line; echo "got $line"; while :; do sleep 0.02; done`)
	before := tm.initial
	harness.WaitFor(t, &tm.screen, "ready")
	if s := tm.screen.String(); !strings.Contains(s, "30 90") {
		t.Errorf("the command saw another size: %q", s)
	}
	if raw, _ := unix.IoctlGetTermios(int(tm.master.Fd()), unix.TCGETS); raw.Lflag&(unix.ICANON|unix.ECHO) != 0 {
		t.Errorf("the terminal is not in raw mode while the command runs: keys would be cooked twice")
	}
	tm.master.Write([]byte("hello\r"))
	harness.WaitFor(t, &tm.screen, "got hello")
	tm.master.Write([]byte("again\r"))
	harness.WaitFor(t, &tm.screen, "got again")
	pty.Setsize(tm.master, &pty.Winsize{Rows: 50, Cols: 120})
	harness.WaitFor(t, &tm.screen, "50 120")
	tm.cmd.Process.Signal(syscall.SIGTERM)
	if code := tm.wait(t); code != 128+15 {
		t.Errorf("exit %d, want 143; screen %q", code, tm.screen.String())
	}
	after, err := unix.IoctlGetTermios(int(tm.master.Fd()), unix.TCGETS)
	if err == nil && (after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag) {
		t.Errorf("opx left the terminal changed: lflag %#x, was %#x", after.Lflag, before.Lflag)
	}
	if strings.Contains(tm.screen.String(), fv("op://v/i/a")) {
		t.Errorf("the value was shown")
	}
}

// Ctrl-Z stops the command and opx with it, so that the shell's job
// control works: the shell gets its terminal back (cooked), and `fg`
// continues both. Driven through a real interactive bash on a terminal.
func TestRunSuspendsAndResumesWithTheShell(t *testing.T) {
	t.Parallel()
	tm := bashWithDaemon(t)
	tm.master.Write([]byte(harness.Bins().Opx + ` run --env A=op://v/i/a -- sh -c 'read l; echo "got $l $A"; read l; echo "got $l"'` + "\r"))
	time.Sleep(200 * time.Millisecond)
	tm.master.Write([]byte("one\r"))
	harness.WaitFor(t, &tm.screen, "got one "+mask.Marker)
	tm.master.Write([]byte{0x1a}) // Ctrl-Z
	harness.WaitFor(t, &tm.screen, "Stopped")
	// Raw mode turns output processing and signal keys off; bash's line
	// editor keeps both.
	if back, _ := unix.IoctlGetTermios(int(tm.master.Fd()), unix.TCGETS); back.Oflag&unix.OPOST == 0 || back.Lflag&unix.ISIG == 0 {
		t.Errorf("the shell got its terminal back in opx's raw mode")
	}
	tm.master.Write([]byte("fg\r"))
	time.Sleep(200 * time.Millisecond)
	tm.master.Write([]byte("two\r"))
	harness.WaitFor(t, &tm.screen, "got two")
	// The shell's next prompt: opx has ended, and what is typed now is
	// the shell's.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(tm.screen.String(), "PROMPT> ") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no prompt after the command: %q", tm.screen.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := tm.screen.String(); strings.Contains(s, "\r\r\n") || strings.Count(s, "two") != 2 {
		t.Errorf("after fg the terminal is not raw again (keys echoed twice, or lines end twice): %q", s)
	}
	tm.master.Write([]byte("exit\r"))
	tm.wait(t)
	if strings.Contains(tm.screen.String(), fv("op://v/i/a")) {
		t.Errorf("the value was shown")
	}
}

// A process CMD leaves running with its output open does not keep opx run
// waiting for it: opx ends with CMD.
func TestRunDoesNotWaitForWhatTheCommandLeftRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	marker := fmt.Sprintf("opx-left-running-%d", os.Getpid())
	r := e.Opx("run", "--env", "A=op://v/i/a", "--", "sh", "-c", `sh -c "sleep 60; : `+marker+`" & echo "started $A"`)
	defer exec.Command("pkill", "-f", marker).Run()
	if r.Code != 0 || r.Stdout != "started "+mask.Marker+"\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if err := exec.Command("pgrep", "-f", marker).Run(); err != nil {
		t.Fatalf("the background process is gone, so this test proved nothing: %v", err)
	}
}

// --env takes one NAME=REF each time, commas and all; an unknown flag
// before the command is a usage error naming it, never the command; what
// follows the command, flags too, is the command's.
func TestRunCommandLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	ref := "op://Private/Smith, John/password"
	r := e.Opx("run", "--no-masking", "--env", "X="+ref, "--", "sh", "-c", `echo "$X"`)
	if r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Errorf("--env with a comma: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	for _, args := range [][]string{
		{"run", "--bogus", "--", "true"},
		{"run", "--env", "A=op://v/i/a", "--bogus", "echo", "hi"},
	} {
		r := e.Opx(args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, "unknown flag --bogus") || strings.Contains(r.Stderr, "not found") {
			t.Errorf("%q: exit %d, stderr %q; want a usage error naming --bogus", args, r.Code, r.Stderr)
		}
	}
	r = e.Opx("run", "--env", "A=op://v/i/a", "echo", "--bogus", "-n")
	if r.Code != 0 || r.Stdout != "--bogus -n\n" {
		t.Errorf("flags after the command are the command's: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

// Errors about a command line never echo a value that is not a ref: it
// may be the secret itself, typed where a ref belongs.
func TestCommandLineErrorsDoNotEchoValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	const secret = "hunter2-plain-secret"
	for _, args := range [][]string{
		{"run", "--env", "PASS=" + secret, "--", "true"},
		{"resolve", "1PASS=" + secret},
	} {
		r := e.Opx(args...)
		if r.Code == 0 || strings.Contains(r.Stderr+r.Stdout, secret) {
			t.Errorf("%q: exit %d, output %q", args, r.Code, r.Stderr+r.Stdout)
		}
	}
}

// opx run ... | head: the reader goes away; opx does not die of SIGPIPE
// with the terminal left raw, and the command ends as it would have.
func TestRunWhenTheReaderGoesAway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	tm := e.inTerminalProgram("sh", [3]bool{true, false, true}, 24, 80, "-c",
		harness.Bins().Opx+` run --env A=op://v/i/a -- sh -c 'while :; do echo "$A"; done' | head -n 3; echo "status $?"`)
	before := tm.initial
	tm.wait(t)
	if out := tm.Stdout.String(); out != strings.Repeat(mask.Marker+"\n", 3)+"status 0\n" {
		t.Errorf("stdout %q", out)
	}
	after, _ := unix.IoctlGetTermios(int(tm.master.Fd()), unix.TCGETS)
	if after.Lflag != before.Lflag {
		t.Errorf("the terminal was left changed: lflag %#x, was %#x", after.Lflag, before.Lflag)
	}
}

// opx run in the background (cmd &) leaves the terminal alone, instead of
// being stopped for touching it.
func TestRunInTheBackground(t *testing.T) {
	t.Parallel()
	tm := bashWithDaemon(t)
	tm.master.Write([]byte(harness.Bins().Opx + ` run --env A=op://v/i/a -- sh -c 'sleep 0.3; echo "in the background: $A"' & wait; echo "waited $?"` + "\r"))
	harness.WaitFor(t, &tm.screen, "waited 0")
	if s := tm.screen.String(); !strings.Contains(s, "in the background: "+mask.Marker) || strings.Contains(s, "Stopped") {
		t.Errorf("screen %q", s)
	}
	tm.master.Write([]byte("exit\r"))
	tm.wait(t)
}

// A read that waits more than a second says so on a terminal, and erases
// the line when the answer comes; through a pipe, or with OPX_QUIET=1,
// it says nothing.
func TestProgressLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake", "--fake-delay=2s")
	tm := e.inTerminal([3]bool{false, false, true}, 24, 80, "read", "op://v/i/slow1")
	tm.wait(t)
	screen := tm.screen.String()
	if !strings.Contains(screen, "waiting for 1Password: 1 ref") || !strings.HasSuffix(screen, "\r\x1b[K") {
		t.Errorf("terminal stderr %q: want the waiting line, erased at the end", screen)
	}
	if tm.Stdout.String() != fv("op://v/i/slow1")+"\n" {
		t.Errorf("stdout %q", tm.Stdout.String())
	}
	r := e.Opx("read", "op://v/i/slow2")
	if r.Stderr != "" {
		t.Errorf("through a pipe, stderr %q", r.Stderr)
	}
	e.Vars["OPX_QUIET"] = "1"
	tm = e.inTerminal([3]bool{false, false, true}, 24, 80, "read", "op://v/i/slow3")
	tm.wait(t)
	if s := tm.screen.String(); s != "" {
		t.Errorf("OPX_QUIET=1 on a terminal: %q", s)
	}
}

// bashWithDaemon is an interactive bash (job control on) on a terminal,
// at its first prompt "PROMPT> ", with a fake-backend daemon to talk to.
func bashWithDaemon(t *testing.T) *terminal {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed: job control cannot be driven")
	}
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	e.Vars["PS1"] = "PROMPT> "
	e.Vars["TERM"] = "dumb"
	tm := e.inTerminalProgram(bash, [3]bool{true, true, true}, 24, 80, "--norc", "--noprofile", "-i")
	harness.WaitFor(t, &tm.screen, "PROMPT> ")
	return tm
}
