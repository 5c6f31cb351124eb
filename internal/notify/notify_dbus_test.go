//go:build unix && !darwin

package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// These tests run Ask and Available against a real session bus (Debian's
// dbus-daemon) and a notification server made for them
// (testdata/notifyserver), each test with a bus of its own.

// binDir holds the test server, built once by the first test that needs it.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		if binDir, err = os.MkdirTemp("", "opxnotify"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(binDir)
		return m.Run()
	}())
}

var buildServer = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "notifyserver")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/notifyserver")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the test notification server: %v\n%s", err, out)
	}
	return bin, nil
})

// busConfig is a session bus with no service directories: the tests' own
// server is the only notification server, and a "no server" test cannot
// start one installed on the machine.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// testBus is a running dbus-daemon.
type testBus struct {
	dir  string // its directory; the socket is dir/bus
	addr string // its address, as it printed it
}

// startBus starts a session bus for t alone, stopped when t ends.
func startBus(t *testing.T) *testBus {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("dbus-daemon is not installed (Debian package dbus-daemon): the notification tests need a real session bus")
	}
	// Short: a Unix socket path holds about 100 bytes.
	dir, err := os.MkdirTemp("", "opxbus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	config := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(config, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+config, "--nofork", "--print-address")
	cmd.Stderr = os.Stderr
	addr := startLine(t, cmd)
	return &testBus{dir: dir, addr: addr}
}

// startServer starts the test notification server on b with env (NOTIFY_*
// settings) and returns the path of its log.
func startServer(t *testing.T, b *testBus, env ...string) string {
	t.Helper()
	bin, err := buildServer()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(b.dir, "notify.log")
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"DBUS_SESSION_BUS_ADDRESS=" + b.addr, "NOTIFY_LOG=" + log}, env...)
	cmd.Stderr = os.Stderr
	if line := startLine(t, cmd); line != "ready" {
		t.Fatalf("notifyserver printed %q, want ready", line)
	}
	return log
}

// startLine starts cmd, stopped when t ends, and returns the first line it
// prints.
func startLine(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("%s printed no line: %v", cmd.Path, err)
	}
	return strings.TrimSuffix(line, "\n")
}

// env is a getenv over a fixed environment.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// logEntry is one line of the test server's log: a Notify call, or a
// CloseNotification call (Close set).
type logEntry struct {
	AppName       string         `json:"app_name"`
	Summary       string         `json:"summary"`
	Body          string         `json:"body"`
	Actions       []string       `json:"actions"`
	Hints         map[string]any `json:"hints"`
	ExpireTimeout int32          `json:"expire_timeout"`
	Close         uint32         `json:"close"`
}

func readLog(t *testing.T, path string) []logEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var entries []logEntry
	for line := range strings.Lines(string(data)) {
		var e logEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		entries = append(entries, e)
	}
	return entries
}

// waitForNotify waits until the server has logged a Notify call: the
// question is on screen.
func waitForNotify(t *testing.T, log string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(readLog(t, log)) > 0 {
			return
		}
	}
	t.Fatal("the server logged no Notify call in 10 s")
}

var prompt = Prompt{Title: "opx: allow a read?", Body: "/usr/bin/env wants op://vault/item/password", AllowLabel: "Allow", DenyLabel: "Deny"}

// The user's answer, as the server reports it, is Ask's: an action, a
// dismissal (a Deny), or the notification going away unanswered.
func TestAskAnswers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		env     []string
		want    bool
		wantErr error
	}{
		{"allow", []string{"NOTIFY_ANSWER=opx-allow"}, true, nil},
		{"deny", []string{"NOTIFY_ANSWER=opx-deny"}, false, nil},
		{"dismissed by the user", []string{"NOTIFY_CLOSE=2"}, false, nil},
		{"expired", []string{"NOTIFY_CLOSE=1"}, false, ErrNoAnswer},
		{"closed by a CloseNotification call", []string{"NOTIFY_CLOSE=3"}, false, ErrNoAnswer},
		{"closed for an undefined reason", []string{"NOTIFY_CLOSE=4"}, false, ErrNoAnswer},
		{"answered late", []string{"NOTIFY_ANSWER=opx-allow", "NOTIFY_DELAY=200ms"}, true, nil},
		// A Deny and a dismissal of another notification come first.
		{"another notification's answer ignored", []string{"NOTIFY_OTHER=1", "NOTIFY_ANSWER=opx-allow"}, true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startBus(t)
			startServer(t, b, tt.env...)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			got, err := Ask(ctx, env("DBUS_SESSION_BUS_ADDRESS", b.addr), prompt)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("Ask() = %v, %v, want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// The notification carries the prompt and opx's two actions, critical and
// never expiring by itself: the daemon's timeout withdraws it.
func TestAskShowsThePrompt(t *testing.T) {
	t.Parallel()
	b := startBus(t)
	log := startServer(t, b, "NOTIFY_CAPS=actions", "NOTIFY_ANSWER=opx-deny")
	p := Prompt{Title: "a title", Body: "a body", AllowLabel: "Yes, once", DenyLabel: "No"}
	if _, err := Ask(t.Context(), env("DBUS_SESSION_BUS_ADDRESS", b.addr), p); err != nil {
		t.Fatalf("Ask() = %v", err)
	}
	entries := readLog(t, log)
	if len(entries) != 1 {
		t.Fatalf("the server logged %d calls, want 1 Notify: %+v", len(entries), entries)
	}
	e := entries[0]
	want := logEntry{AppName: "opx", Summary: p.Title, Body: p.Body, Actions: []string{"opx-allow", "Yes, once", "opx-deny", "No"},
		Hints: map[string]any{"urgency": float64(2)}, ExpireTimeout: 0}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("Notify(%+v), want %+v", e, want)
	}
}

// Empty labels are Allow and Deny.
func TestAskDefaultLabels(t *testing.T) {
	t.Parallel()
	b := startBus(t)
	log := startServer(t, b, "NOTIFY_ANSWER=opx-allow")
	if _, err := Ask(t.Context(), env("DBUS_SESSION_BUS_ADDRESS", b.addr), Prompt{Title: "t", Body: "b"}); err != nil {
		t.Fatalf("Ask() = %v", err)
	}
	if got, want := fmt.Sprint(readLog(t, log)[0].Actions), "[opx-allow Allow opx-deny Deny]"; got != want {
		t.Errorf("actions = %s, want %s", got, want)
	}
}

// A server that reads the body as markup gets it escaped, so that a program
// path shows as it is; one that does not gets it verbatim. The summary is
// never markup.
func TestAskEscapesMarkup(t *testing.T) {
	t.Parallel()
	const text = "/tmp/<b>x & y</b>"
	for _, tt := range []struct {
		caps, want string
	}{
		{"actions,body-markup", "/tmp/&lt;b&gt;x &amp; y&lt;/b&gt;"},
		{"actions", text},
	} {
		t.Run(tt.caps, func(t *testing.T) {
			t.Parallel()
			b := startBus(t)
			log := startServer(t, b, "NOTIFY_CAPS="+tt.caps, "NOTIFY_ANSWER=opx-deny")
			if _, err := Ask(t.Context(), env("DBUS_SESSION_BUS_ADDRESS", b.addr), Prompt{Title: text, Body: text}); err != nil {
				t.Fatalf("Ask() = %v", err)
			}
			e := readLog(t, log)[0]
			if e.Body != tt.want || e.Summary != text {
				t.Errorf("Notify(summary %q, body %q), want summary %q, body %q", e.Summary, e.Body, text, tt.want)
			}
		})
	}
}

// When the question is answered elsewhere or times out, Ask withdraws the
// notification and returns the context's error.
func TestAskWithdrawsWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	b := startBus(t)
	log := startServer(t, b, "NOTIFY_ANSWER=none")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := Ask(ctx, env("DBUS_SESSION_BUS_ADDRESS", b.addr), prompt)
		done <- err
	}()
	waitForNotify(t, log)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Ask() = %v, want context.Canceled", err)
	}
	entries := readLog(t, log)
	if len(entries) != 2 || entries[1].Close != 1 {
		t.Errorf("the server logged %+v, want Notify and then CloseNotification(1)", entries)
	}
}

// Another program on the bus cannot answer: only the notification server's
// signals count, though it names the right id.
func TestAskIgnoresOtherSenders(t *testing.T) {
	t.Parallel()
	b := startBus(t)
	log := startServer(t, b, "NOTIFY_ANSWER=none")
	done := make(chan error, 1)
	go func() {
		allow, err := Ask(t.Context(), env("DBUS_SESSION_BUS_ADDRESS", b.addr), prompt)
		if allow {
			err = errors.New("allowed")
		}
		done <- err
	}()
	waitForNotify(t, log)
	conn, err := dbus.Connect(b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Emit(objPath, iface+".ActionInvoked", uint32(1), "opx-allow"); err != nil {
		t.Fatal(err)
	}
	// Then the server closes it: the bus delivers the forged signal first,
	// since it had it before the call that makes the server emit.
	if err := conn.Object(busName, objPath).Call(iface+".CloseNotification", 0, uint32(1)).Err; err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrNoAnswer) {
		t.Errorf("Ask() = %v, want ErrNoAnswer (closed by the call, the forged Allow ignored)", err)
	}
}

// Available and Ask say ErrUnavailable where no notification can answer,
// and Available says nil where one can: the bus at DBUS_SESSION_BUS_ADDRESS,
// or else at $XDG_RUNTIME_DIR/bus.
func TestAvailable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		server []string // the server's environment; nil: no server
		env    func(b *testBus) func(string) string
		want   error
	}{
		{"a server with actions", []string{}, func(b *testBus) func(string) string {
			return env("DBUS_SESSION_BUS_ADDRESS", b.addr)
		}, nil},
		{"the bus at XDG_RUNTIME_DIR", []string{}, func(b *testBus) func(string) string {
			return env("XDG_RUNTIME_DIR", b.dir)
		}, nil},
		{"a server without actions", []string{"NOTIFY_CAPS=body,body-markup"}, func(b *testBus) func(string) string {
			return env("DBUS_SESSION_BUS_ADDRESS", b.addr)
		}, ErrUnavailable},
		{"no server", nil, func(b *testBus) func(string) string {
			return env("DBUS_SESSION_BUS_ADDRESS", b.addr)
		}, ErrUnavailable},
		{"no bus at the address", nil, func(b *testBus) func(string) string {
			return env("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(b.dir, "nobus"))
		}, ErrUnavailable},
		{"an address that is not one", nil, func(b *testBus) func(string) string {
			return env("DBUS_SESSION_BUS_ADDRESS", "autolaunch:")
		}, ErrUnavailable},
		{"no bus at XDG_RUNTIME_DIR", nil, func(b *testBus) func(string) string {
			return env("XDG_RUNTIME_DIR", filepath.Join(b.dir, "run"))
		}, ErrUnavailable},
		{"no session at all", nil, func(b *testBus) func(string) string {
			return env()
		}, ErrUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startBus(t)
			if tt.server != nil {
				startServer(t, b, append(tt.server, "NOTIFY_ANSWER=opx-allow")...)
			}
			getenv := tt.env(b)
			if err := Available(getenv); !errors.Is(err, tt.want) {
				t.Errorf("Available() = %v, want %v", err, tt.want)
			}
			if tt.want == nil {
				return
			}
			if allow, err := Ask(t.Context(), getenv, prompt); allow || !errors.Is(err, tt.want) {
				t.Errorf("Ask() = %v, %v, want false, %v", allow, err, tt.want)
			}
		})
	}
}
