//go:build unix && !darwin

package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/opxhq/opx/internal/notify/notifytest"
)

// These tests run Ask and Available against a real session bus (Debian's
// dbus-daemon) and a notification server made for them
// (testdata/notifyserver), each test with a bus of its own.

// startBus and startServer are notifytest's, under shorter names.
var (
	startBus    = notifytest.StartBus
	startServer = notifytest.StartServer
)

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
			got, err := Ask(ctx, env("DBUS_SESSION_BUS_ADDRESS", b.Addr), prompt)
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
	if _, err := Ask(t.Context(), env("DBUS_SESSION_BUS_ADDRESS", b.Addr), p); err != nil {
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
	if _, err := Ask(t.Context(), env("DBUS_SESSION_BUS_ADDRESS", b.Addr), Prompt{Title: "t", Body: "b"}); err != nil {
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
			if _, err := Ask(t.Context(), env("DBUS_SESSION_BUS_ADDRESS", b.Addr), Prompt{Title: text, Body: text}); err != nil {
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
		_, err := Ask(ctx, env("DBUS_SESSION_BUS_ADDRESS", b.Addr), prompt)
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
		allow, err := Ask(t.Context(), env("DBUS_SESSION_BUS_ADDRESS", b.Addr), prompt)
		if allow {
			err = errors.New("allowed")
		}
		done <- err
	}()
	waitForNotify(t, log)
	conn, err := dbus.Connect(b.Addr)
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
		env    func(b *notifytest.Bus) func(string) string
		want   error
	}{
		{"a server with actions", []string{}, func(b *notifytest.Bus) func(string) string {
			return env("DBUS_SESSION_BUS_ADDRESS", b.Addr)
		}, nil},
		{"the bus at XDG_RUNTIME_DIR", []string{}, func(b *notifytest.Bus) func(string) string {
			return env("XDG_RUNTIME_DIR", b.Dir)
		}, nil},
		{"a server without actions", []string{"NOTIFY_CAPS=body,body-markup"}, func(b *notifytest.Bus) func(string) string {
			return env("DBUS_SESSION_BUS_ADDRESS", b.Addr)
		}, ErrUnavailable},
		{"no server", nil, func(b *notifytest.Bus) func(string) string {
			return env("DBUS_SESSION_BUS_ADDRESS", b.Addr)
		}, ErrUnavailable},
		{"no bus at the address", nil, func(b *notifytest.Bus) func(string) string {
			return env("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(b.Dir, "nobus"))
		}, ErrUnavailable},
		{"an address that is not one", nil, func(b *notifytest.Bus) func(string) string {
			return env("DBUS_SESSION_BUS_ADDRESS", "autolaunch:")
		}, ErrUnavailable},
		{"no bus at XDG_RUNTIME_DIR", nil, func(b *notifytest.Bus) func(string) string {
			return env("XDG_RUNTIME_DIR", filepath.Join(b.Dir, "run"))
		}, ErrUnavailable},
		{"no session at all", nil, func(b *notifytest.Bus) func(string) string {
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
