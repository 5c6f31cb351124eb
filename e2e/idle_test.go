//go:build unix

package e2e

// --exit-when-idle: a daemon that ends with its CI job.

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/e2e/harness"
)

// OP_AUTHD_EXIT_WHEN_IDLE in a job's environment reaches the daemon a read
// autostarts: once the last client is gone it stops as opx stop does
// (socket removed, DAEMON_STOP audited with why, the log saying why), and
// the next read starts a new daemon that serves.
func TestExitWhenIdleEndsAnAutostartedDaemon(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Vars["OP_AUTHD_BACKEND"] = "fake"
	e.Vars["OP_AUTHD_EXIT_WHEN_IDLE"] = "2s"
	e.Vars["OP_AUTHD_ENABLE_AUDIT_LOG"] = "1"

	if out := e.MustOpx("read", "op://a/b/c"); out != fv("op://a/b/c")+"\n" {
		t.Fatalf("opx read = %q, want %q", out, fv("op://a/b/c")+"\n")
	}
	first := e.DaemonPID() // the lock file keeps it after the daemon exits

	if !harness.Eventually(20*time.Second, func() bool { return !harness.Alive(first) }) {
		t.Fatalf("the daemon (pid %d) still runs 20 s after its last client left", first)
	}
	if _, err := os.Stat(e.Sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the idle daemon's socket: %v, want it removed", err)
	}
	logb, _ := os.ReadFile(filepath.Join(e.DataDir, "opx-authd.log"))
	if !strings.Contains(string(logb), "no connection open and no backend call running for --exit-when-idle") {
		t.Errorf("the daemon's log does not say why it stopped:\n%s", logb)
	}
	audits, _ := filepath.Glob(filepath.Join(e.DataDir, "audit-*.log"))
	var audit []byte
	for _, f := range audits {
		b, _ := os.ReadFile(f)
		audit = append(audit, b...)
	}
	if !strings.Contains(string(audit), `"event":"DAEMON_STOP"`) || !strings.Contains(string(audit), `"reason":"idle for 2s (--exit-when-idle)"`) {
		t.Errorf("the audit log lacks DAEMON_STOP with the idle reason:\n%s", audit)
	}

	if out := e.MustOpx("read", "op://a/b/d"); out != fv("op://a/b/d")+"\n" {
		t.Errorf("opx read after the idle exit = %q, want %q", out, fv("op://a/b/d")+"\n")
	}
	if second := e.DaemonPID(); second == first || second <= 0 {
		t.Errorf("daemon pid after the idle exit: %d (first %d), want a new one", second, first)
	}
}

// A request in flight keeps the daemon, though its backend call lasts
// longer than --exit-when-idle: status shows the setting meanwhile, the
// read is answered, and the daemon stops only after it (its "shutting
// down" line comes after the client has its answer).
func TestExitWhenIdleWaitsForARequestInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Autostarted, so that a daemon that went idle before the read came
	// (a slow machine) is replaced by one with the same settings.
	e.Vars["OP_AUTHD_BACKEND"] = "fake"
	e.Vars["OP_AUTHD_FAKE_DELAY"] = "4s"
	e.Vars["OP_AUTHD_EXIT_WHEN_IDLE"] = "1s"

	read := exec.Command(e.Client, "read", "op://v/i/slow")
	read.Env = e.Environ()
	var stdout, stderr harness.SyncBuf
	read.Stdout, read.Stderr = &stdout, &stderr
	if err := read.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- read.Wait() }()
	// Until the read starts its daemon, status finds none (exit 3).
	inFlight := func() bool {
		r := e.Opx("status", "--json")
		var st api.Status
		return r.Code == 0 && json.Unmarshal([]byte(r.Stdout), &st) == nil && st.InFlight > 0
	}
	if !harness.Eventually(20*time.Second, inFlight) {
		t.Fatalf("the read never reached its daemon: %q", stderr.String())
	}
	pid := e.DaemonPID()
	// The read holds its connection: the daemon is there to answer.
	if st := e.Status(); st.Settings.ExitWhenIdleSeconds != 1 {
		t.Errorf("status settings.exit_when_idle_seconds = %v, want 1", st.Settings.ExitWhenIdleSeconds)
	}
	if out := e.MustOpx("status"); !strings.Contains(out, "idle exit after 1s with no connection and no backend call; busy now: 1 connection open besides this one") {
		t.Errorf("opx status does not show --exit-when-idle and the read in flight:\n%s", out)
	}
	err := <-done
	answered := time.Now()
	if out := stdout.String(); err != nil || out != fv("op://v/i/slow")+"\n" {
		t.Fatalf("the read in flight: %v, stdout %q, stderr %q", err, out, stderr.String())
	}
	if !harness.Eventually(20*time.Second, func() bool { return !harness.Alive(pid) }) {
		t.Fatalf("the daemon (pid %d) still runs 20 s after its last request", pid)
	}
	logb, _ := os.ReadFile(filepath.Join(e.DataDir, "opx-authd.log"))
	stopped, ok := lastLogTime(string(logb), "shutting down")
	if !ok {
		t.Fatalf("no shutting down line in the daemon's log:\n%s", logb)
	}
	if stopped.Before(answered) {
		t.Errorf("the daemon began to stop at %s, before the read in flight was answered (%s)",
			stopped.Format(time.StampMicro), answered.Format(time.StampMicro))
	}
}

// lastLogTime is the time of the last line of the daemon's JSON log whose
// message is msg.
func lastLogTime(log, msg string) (at time.Time, found bool) {
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var line struct {
			Time    time.Time `json:"time"`
			Message string    `json:"message"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == msg {
			at, found = line.Time, true
		}
	}
	return at, found
}

// A negative or unreadable --exit-when-idle is a usage error naming the
// flag, from the command line and the environment alike.
func TestExitWhenIdleRefusesBadValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"daemon", "--exit-when-idle", "-1s"}, `--exit-when-idle: expected duration value but got "-1s"`},
		{nil, []string{"daemon", "--exit-when-idle=-1s"}, "--exit-when-idle: duration must not be negative"},
		{nil, []string{"daemon", "--exit-when-idle", "abc"}, `--exit-when-idle: "abc" is neither a number nor a duration such as 90s or 2m`},
		{[]string{"OP_AUTHD_EXIT_WHEN_IDLE=abc"}, []string{"daemon"}, `(from envar OP_AUTHD_EXIT_WHEN_IDLE="abc")`},
	} {
		r := e.OpxEnv(tc.env, tc.args...)
		if r.Code != 2 || !strings.HasPrefix(r.Stderr, "opx: error: ") || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%v opx %s: exit %d, stderr %q; want exit 2 and %q", tc.env, strings.Join(tc.args, " "), r.Code, r.Stderr, tc.want)
		}
	}
	if _, err := os.Stat(e.Sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused daemon left a socket: %v", err)
	}
}
