package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
)

// Env is one user's world: a HOME and XDG tree of its own under a fresh
// temporary directory, the environment opx runs with, and the daemons
// started in it. Every test makes its own, so tests run in parallel.
type Env struct {
	T         *testing.T
	Dir       string            // the temporary root; removed when the test ends
	Sock      string            // the daemon's socket
	DataDir   string            // $XDG_DATA_HOME/op-authd: token, certificate, log
	ConfigDir string            // $XDG_CONFIG_HOME/op-authd: config.json, policy.json
	Vars      map[string]string // the environment of every program run in Env
	Client    string            // the opx the Env runs as the client: Bins().Opx unless OneBuild
	Daemon    string            // the opx that runs its daemons, started or autostarted: Bins().Daemon unless OneBuild
	out       *SyncBuf          // the output of the daemon StartDaemon ran last
}

// New makes a fresh Env for t. When t ends it stops the Env's daemons,
// logs the daemon's log if t failed, and removes the directory.
func New(t *testing.T) *Env {
	t.Helper()
	// Short paths: a Unix socket path holds about 100 bytes, and
	// t.TempDir's names the test.
	root, err := os.MkdirTemp("", "opx")
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Dir: root, Client: Bins().Opx, Daemon: Bins().Daemon}
	home := filepath.Join(root, "h")
	run := filepath.Join(root, "r")
	for _, d := range []string{home, run} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.Vars = map[string]string{
		"HOME":            home,
		"PATH":            os.Getenv("PATH"),
		"XDG_DATA_HOME":   filepath.Join(home, "d"),
		"XDG_CONFIG_HOME": filepath.Join(home, "c"),
		"XDG_RUNTIME_DIR": run,
		"GORACE":          "halt_on_error=1 atexit_sleep_ms=0", // a race-built opx exits at once, not after 1 s
		"OPX_AUTHD_PATH":  Bins().Daemon,                       // the clients autostart the race-built daemon
	}
	e.Sock = filepath.Join(run, "op-authd", "socket.sock")
	e.DataDir = filepath.Join(home, "d", "op-authd")
	e.ConfigDir = filepath.Join(home, "c", "op-authd")
	t.Cleanup(func() {
		e.StopDaemon()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(e.DataDir, "opx-authd.log")); err == nil {
				t.Logf("daemon log:\n%s", b)
			}
		}
		os.RemoveAll(root)
	})
	return e
}

// OneBuild makes prog (Bins().Opx or Bins().Daemon) the Env's client and
// its daemon both, as a user has one opx. The daemon knows the opx client
// by its executable, and judges the program that ran it rather than the
// client itself; its 1Password backend skips opx linked as op on PATH the
// same way. A test of either needs one file: Bins().Daemon to race the
// daemon, Bins().Opx where the clients are many and the daemon's races are
// raced by other tests.
func (e *Env) OneBuild(prog string) {
	e.Client, e.Daemon = prog, prog
	e.Vars["OPX_AUTHD_PATH"] = prog
}

// Environ is Vars as a process environment, with extra appended (a later
// entry wins).
func (e *Env) Environ(extra ...string) []string {
	var env []string
	for k, v := range e.Vars {
		env = append(env, k+"="+v)
	}
	return append(env, extra...)
}

// Result is what a program run printed and its exit status.
type Result struct {
	Stdout, Stderr string
	Code           int // as a shell reports it: 128+N for a signal N
}

// Opx runs the client with args and returns what it printed.
func (e *Env) Opx(args ...string) Result {
	e.T.Helper()
	return e.RunIn("", e.Client, nil, args...)
}

// OpxEnv runs the client with extra environment variables.
func (e *Env) OpxEnv(extra []string, args ...string) Result {
	e.T.Helper()
	return e.RunIn("", e.Client, extra, args...)
}

// OpxIn runs the client with stdin.
func (e *Env) OpxIn(stdin string, args ...string) Result {
	e.T.Helper()
	return e.RunIn(stdin, e.Client, nil, args...)
}

// MustOpx runs the client and fails the test unless it exits 0.
func (e *Env) MustOpx(args ...string) string {
	e.T.Helper()
	r := e.Opx(args...)
	if r.Code != 0 {
		e.T.Fatalf("opx %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Run runs prog with the Env's variables and extra ones.
func (e *Env) Run(prog string, extra []string, args ...string) Result {
	e.T.Helper()
	return e.run(context.Background(), extra, "", prog, args...)
}

// RunIn runs prog as Run does, with stdin.
func (e *Env) RunIn(stdin, prog string, extra []string, args ...string) Result {
	e.T.Helper()
	return e.run(context.Background(), extra, stdin, prog, args...)
}

func (e *Env) run(ctx context.Context, extra []string, stdin, prog string, args ...string) Result {
	e.T.Helper()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = e.Environ(extra...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	code := exitCode(e.T, cmd.Run(), prog, args) // before reading what it printed
	return Result{out.String(), errb.String(), code}
}

// exitCode is the status a shell would report for err, the error of a run.
func exitCode(t testing.TB, err error, prog string, args []string) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("run %s %v: %v", prog, args, err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// AnswerWithin bounds OpxBounded: a command that hangs (a daemon stuck on
// a FIFO, say) must fail its test on its own instead of at go test's
// timeout. It is a deadline for an answer at all, not a measure of speed.
const AnswerWithin = 20 * time.Second

// OpxBounded runs the client like Opx, but fails the test when it has not
// answered within AnswerWithin.
func (e *Env) OpxBounded(args ...string) Result {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), AnswerWithin)
	defer cancel()
	r := e.run(ctx, nil, "", e.Client, args...)
	if ctx.Err() != nil {
		e.T.Fatalf("opx %s did not answer within %s (the daemon hangs)", strings.Join(args, " "), AnswerWithin)
	}
	return r
}

// Status is `opx status --json`.
func (e *Env) Status() api.Status {
	e.T.Helper()
	return e.statusOf(e.MustOpx("status", "--json"))
}

// StatusBounded is Status, bounded by AnswerWithin.
func (e *Env) StatusBounded() api.Status {
	e.T.Helper()
	r := e.OpxBounded("status", "--json")
	if r.Code != 0 {
		e.T.Fatalf("opx status --json: %+v", r)
	}
	return e.statusOf(r.Stdout)
}

func (e *Env) statusOf(out string) api.Status {
	e.T.Helper()
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.T.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

// SetConfig writes cfg as config.json.
func (e *Env) SetConfig(cfg map[string]any) {
	e.T.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		e.T.Fatal(err)
	}
	e.WriteConfigFile("config.json", string(b))
}

// WriteConfigFile writes name (config.json, policy.json) in the config
// directory, which it makes first.
func (e *Env) WriteConfigFile(name, body string) {
	e.T.Helper()
	if err := os.MkdirAll(e.ConfigDir, 0o700); err != nil {
		e.T.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.ConfigDir, name), []byte(body), 0o600); err != nil {
		e.T.Fatal(err)
	}
}
