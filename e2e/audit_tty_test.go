//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opxhq/opx/e2e/harness"
	"golang.org/x/sys/unix"
)

// tty runs a program on a pseudo-terminal, as a person at a terminal would.
type tty struct {
	t       *testing.T
	master  *os.File
	slave   *os.File // the test's own end of the terminal, kept open
	cmd     *exec.Cmd
	mu      sync.Mutex
	out     bytes.Buffer
	done    chan struct{} // closed when the program has ended
	waitErr error
	seen    int // how much of out the test has waited past
}

// startTTY runs cmd with a pseudo-terminal as its controlling terminal and
// standard streams.
func startTTY(t *testing.T, cmd *exec.Cmd) *tty {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var n int
	var ierr error
	raw, err := master.SyscallConn()
	if err == nil {
		err = raw.Control(func(fd uintptr) {
			if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr == nil {
				n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
			}
		})
	}
	if err != nil || ierr != nil {
		t.Skipf("cannot set up a pseudo-terminal: %v %v", err, ierr)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("cannot open a pseudo-terminal: %v", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The test keeps the terminal open too, so that output the program
	// wrote just before it ended is still there to read (a master sees
	// EIO, and may lose it, once every terminal end is closed).
	tt := &tty{t: t, master: master, slave: slave, cmd: cmd, done: make(chan struct{})}
	go func() {
		tt.waitErr = cmd.Wait()
		close(tt.done)
	}()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			tt.mu.Lock()
			tt.out.Write(buf[:n])
			tt.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-tt.done
		slave.Close()
		master.Close()
	})
	return tt
}

// output returns what the program printed so far, once nothing more has
// come for a moment.
func (tt *tty) output() string {
	last := -1
	for {
		tt.mu.Lock()
		n := tt.out.Len()
		tt.mu.Unlock()
		if n == last {
			break
		}
		last = n
		time.Sleep(50 * time.Millisecond)
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.out.String()
}

// expect waits until the output, past what was already expected, holds s.
func (tt *tty) expect(s string) {
	tt.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tt.mu.Lock()
		out := tt.out.String()
		tt.mu.Unlock()
		if i := strings.Index(out[tt.seen:], s); i >= 0 {
			tt.seen += i + len(s)
			return
		}
		select {
		case <-tt.done:
			out = tt.output()
			if i := strings.Index(out[tt.seen:], s); i >= 0 {
				tt.seen += i + len(s)
				return
			}
			tt.t.Fatalf("the program ended (%v) without printing %q; it printed:\n%s", tt.waitErr, s, out)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tt.t.Fatalf("no %q within 20 s; output:\n%s", s, out)
		}
	}
}

// send types s.
func (tt *tty) send(s string) {
	tt.t.Helper()
	if _, err := tt.master.Write([]byte(s)); err != nil {
		tt.t.Fatal(err)
	}
}

// wait waits for the program to end and returns all it printed.
func (tt *tty) wait() string {
	tt.t.Helper()
	select {
	case <-tt.done:
	case <-time.After(20 * time.Second):
		tt.t.Fatal("the program did not end")
	}
	if tt.waitErr != nil {
		tt.t.Logf("%s: %v", tt.cmd.Path, tt.waitErr)
	}
	// Everything the program wrote comes out of the terminal before what
	// the test writes after it ended: read up to that mark (a quiet
	// moment alone can be a reader that has not run yet, on a busy
	// machine).
	const mark = "\x1fopx-tty-end\x1f"
	if _, err := tt.slave.WriteString(mark); err != nil {
		tt.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		tt.mu.Lock()
		out := tt.out.String()
		tt.mu.Unlock()
		if before, _, ok := strings.Cut(out, mark); ok {
			return before
		}
		if time.Now().After(deadline) {
			tt.t.Fatalf("the terminal's output did not end within 20 s:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// auditSession starts `opx audit -i` on a terminal.
func (e *testEnv) auditSession() *tty {
	cmd := exec.Command(e.Client, "audit", "--interactive", "--since", "1h")
	cmd.Env = e.Environ("TERM=dumb")
	return startTTY(e.T, cmd)
}

// denyAll starts a daemon that denies everything to anyone but a program
// that does not exist, with the audit log on.
func denyAllDaemon(t *testing.T) *testEnv {
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	e.writePolicy(`{"allow": [{"path": "/nonexistent/allowed", "refs": ["op://x/y/z"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake", "--enable-audit-log")
	return e
}

// Ctrl-D at any question ends the session and writes nothing; answers
// that are not a choice ask again.
func TestAuditInteractiveOnATerminal(t *testing.T) {
	t.Parallel()
	_, b := buildHelpers(t)
	e := denyAllDaemon(t)
	ref := "op://Prod/db/password"
	if r := e.helper(b, "read", ref); r.Code != 1 {
		t.Fatalf("helper was not denied: %+v", r)
	}
	policyFile := filepath.Join(e.ConfigDir, "policy.json")
	before, _ := os.ReadFile(policyFile)

	// End of input at the scope prompt grants nothing.
	s := e.auditSession()
	s.expect("Allow which denials?")
	s.send("1\n")
	s.expect("Scope for ")
	s.send("\x04")
	if out := s.wait(); !strings.Contains(out, "no change made") {
		t.Errorf("Ctrl-D at the scope prompt:\n%s", out)
	}
	if after, _ := os.ReadFile(policyFile); !bytes.Equal(before, after) {
		t.Fatalf("Ctrl-D at the scope prompt wrote the policy:\n%s", after)
	}

	// End of input at the first prompt and at the confirmation too.
	s = e.auditSession()
	s.expect("Allow which denials?")
	s.send("\x04")
	s.wait()
	s = e.auditSession()
	s.expect("Allow which denials?")
	s.send("1\n")
	s.expect("Scope for ")
	s.send("v\n")
	s.expect("Write them?")
	s.send("\x04")
	if out := s.wait(); !strings.Contains(out, "no change made") {
		t.Errorf("Ctrl-D at the confirmation:\n%s", out)
	}
	if after, _ := os.ReadFile(policyFile); !bytes.Equal(before, after) {
		t.Fatalf("end of input wrote the policy:\n%s", after)
	}

	// Bad input asks again; then a vault-wide rule is written.
	s = e.auditSession()
	s.expect("Allow which denials?")
	s.send("x\n")
	s.expect("is not one of the numbers listed")
	s.expect("Allow which denials?")
	s.send("7\n")
	s.expect("is not one of the numbers listed")
	s.send("1\n")
	s.expect("Scope for ")
	s.send("q\n")
	s.expect("please answer e, v or a")
	s.expect("Scope for ")
	s.send("v\n")
	s.expect("Write them?")
	s.send("y\n")
	if out := s.wait(); !strings.Contains(out, "allowed "+b+" to read op://Prod/*") {
		t.Fatalf("session with bad input:\n%s", out)
	}
	if r := e.helper(b, "read", "op://Prod/other/item"); r.Code != 0 {
		t.Errorf("helper after the vault rule: %+v", r)
	}
}

// A denied ref holding '*' is allowed as written only once the user has
// agreed that it is a pattern.
func TestAuditInteractiveStarRefIsAPattern(t *testing.T) {
	t.Parallel()
	_, b := buildHelpers(t)
	e := denyAllDaemon(t)
	if r := e.helper(b, "read", "vault://*"); r.Code != 1 || !strings.Contains(r.Stderr, "forbidden") {
		t.Fatalf("helper reading vault://*: %+v", r)
	}
	s := e.auditSession()
	s.expect("Allow which denials?")
	s.send("1\n")
	s.expect("Scope for ")
	s.send("e\n")
	s.expect("which a rule reads as a pattern")
	s.expect("Allow it as that pattern?")
	s.send("n\n")
	s.expect("Scope for ") // asked again
	s.send("v\n")          // vault://*/* is no pattern a rule can hold
	s.expect("is not a pattern a rule can hold")
	s.expect("Scope for ")
	s.send("e\n")
	s.expect("Allow it as that pattern?")
	s.send("y\n")
	s.expect("Write them?")
	s.send("y\n")
	out := s.wait()
	if !strings.Contains(out, "allowed "+b+" to read vault://*") {
		t.Fatalf("session:\n%s", out)
	}
}

// Allowing a shell is warned about and needs a yes; control characters in
// a program's path are shown escaped, never sent to the terminal raw.
func TestAuditInteractiveWarnsAndEscapes(t *testing.T) {
	t.Parallel()
	a, _ := buildHelpers(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	e := denyAllDaemon(t)
	cmd := exec.Command(bash, "-c", `exec "$0" read op://Prod/db/password; true`, e.Client)
	cmd.Env = e.Environ()
	cmd.Run() // denied: its requester is bash
	cmd = exec.Command(bash, "-c", `"$0" read op://Prod/db/password; true`, e.Client)
	cmd.Env = e.Environ()
	cmd.Run()

	// A program whose name moves the cursor and clears the line.
	evil := filepath.Join(filepath.Dir(a), "tool\x1b[2K\rok")
	data, _ := os.ReadFile(a)
	if err := os.WriteFile(evil, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := e.helper(evil, "read", "op://Prod/db/password"); r.Code != 1 {
		t.Fatalf("evil helper: %+v", r)
	}

	s := e.auditSession()
	s.expect("Allow which denials?")
	list := s.output()
	if strings.Contains(list, "\x1b[2K") || !strings.Contains(list, `tool\x1b[2K\rok`) {
		t.Errorf("the listing does not escape the program's name:\n%q", list)
	}
	n := 0
	for i, line := range strings.Split(list, "\n") {
		if strings.Contains(line, "bash") {
			n = i // the header is line 0, denials are numbered from 1
		}
	}
	if n == 0 {
		t.Fatalf("no denial for bash in:\n%s", list)
	}
	s.send(fmt.Sprintf("%d\n", n))
	s.expect("is a shell")
	s.expect("anyway?")
	s.send("n\n")
	s.expect("skipped")
	if out := s.wait(); !strings.Contains(out, "no change made") {
		t.Errorf("declining the shell:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(e.ConfigDir, "policy.json")); strings.Contains(string(b), "bash") {
		t.Errorf("a declined shell was written:\n%s", b)
	}
}
