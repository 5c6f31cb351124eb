package main

// A flood of connections from one process (issue 21, item 4): the excess is
// refused at once, the connections it keeps cost the daemon what one
// costs, and a reader from another process is served meanwhile.

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
)

// flooder is a peerhelper that holds connections until release.
type flooder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	line  string // what it printed once its connections were in place
}

// startFlooder runs prog with args (hold N, or bodies N SIZE) and waits
// for its report.
func (e *testEnv) startFlooder(prog string, args ...string) *flooder {
	e.t.Helper()
	cmd := exec.Command(prog, args...)
	tok, _ := os.ReadFile(filepath.Join(e.data, "token"))
	cmd.Env = e.environ("OPX_SOCKET_PATH="+e.sock, "OPX_TOKEN="+strings.TrimSpace(string(tok)), "OPX_CERT_FILE="+filepath.Join(e.data, "tls.crt"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	f := &flooder{cmd: cmd, stdin: stdin}
	e.t.Cleanup(f.release)
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		got <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case f.line = <-got:
	case <-time.After(2 * time.Minute):
		e.t.Fatalf("%s %v did not report", prog, args)
	}
	return f
}

// release lets the flooder close its connections and exit.
func (f *flooder) release() {
	if f.stdin != nil {
		f.stdin.Close()
		f.stdin = nil
		done := make(chan struct{})
		go func() { f.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			f.cmd.Process.Kill()
		}
	}
}

// fields reads "name value" pairs out of a flooder's report.
func (f *flooder) field(t *testing.T, name string) int {
	t.Helper()
	words := strings.Fields(f.line)
	for i := 0; i+1 < len(words); i++ {
		if words[i] == name {
			n := 0
			for _, c := range words[i+1] {
				if c < '0' || c > '9' {
					break
				}
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	t.Fatalf("no %q in the flooder's report %q", name, f.line)
	return 0
}

// One process opening 3,000 connections: the daemon keeps at most its
// per-process cap of them and closes the rest at once, says so in its log
// and status, and a reader from another process is served meanwhile. On the
// old main every connection was kept and checked against all the others
// (the reader failed after 34 s).
func TestConnectionFloodFromOneProcessIsCapped(t *testing.T) {
	a, b := buildHelpers(t)
	e := newEnv(t)
	ref := "op://Dev/app/token"
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["op://Dev/*"]}], "default_deny": true}`)
	e.startDaemon("", "--backend=fake")
	if r := e.helper(a, "read", ref); r.code != 0 {
		t.Fatalf("allowed helper before the flood: %+v", r)
	}

	f := e.startFlooder(b, "hold", "3000")
	open, closed := f.field(t, "open"), f.field(t, "closed")
	if open > api.MaxConnsPerProcess || closed < 3000-api.MaxConnsPerProcess-f.field(t, "failed") {
		t.Errorf("flooder with 3,000 connections: %q; want at most %d kept and the rest closed at once", f.line, api.MaxConnsPerProcess)
	}
	if r := e.helper(a, "read", ref); r.code != 0 || r.stdout != fv(ref)+"\n" {
		t.Errorf("another process's read during the flood: %+v", r)
	}
	var st api.Status
	if r := e.helper(a, "opx", "status", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("opx status --json run by the allowed program: %+v", r)
	}
	if st.Connections.Refused < uint64(closed) {
		t.Errorf("status connections = %+v; want at least the %d refused", st.Connections, closed)
	}
	f.release()
	if logs := e.daemonLog(); !strings.Contains(logs, "connections refused") {
		t.Errorf("the daemon's log names no refused connection:\n%s", logs)
	}
}

// Request bodies buffered before the policy decides are bounded: one
// process that announces 300 bodies of 1 MiB and sends 4 KiB of each gets
// most of them refused at once (429), and another process's read goes on.
func TestPendingBodiesFromOneProcessAreBounded(t *testing.T) {
	a, b := buildHelpers(t)
	e := newEnv(t)
	ref := "op://Dev/app/token"
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["op://Dev/*"]}], "default_deny": true}`)
	e.startDaemon("", "--backend=fake")
	f := e.startFlooder(b, "bodies", "300", "1048576")
	pending := f.field(t, "pending")
	if pending > api.MaxBodyBytesPerProcess/(1<<20) || !strings.Contains(f.line, "429:") {
		t.Errorf("300 pending 1 MiB bodies from one process: %q; want at most %d pending and the rest refused with 429", f.line, api.MaxBodyBytesPerProcess/(1<<20))
	}
	if r := e.helper(a, "read", ref); r.code != 0 || r.stdout != fv(ref)+"\n" {
		t.Errorf("another process's read while the bodies are pending: %+v", r)
	}
}
