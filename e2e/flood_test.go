//go:build unix

package e2e

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
	"github.com/opxhq/opx/e2e/harness"
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
	e.T.Helper()
	cmd := exec.Command(prog, args...)
	tok, _ := os.ReadFile(filepath.Join(e.DataDir, "token"))
	cmd.Env = e.Environ("OPX_SOCKET_PATH="+e.Sock, "OPX_TOKEN="+strings.TrimSpace(string(tok)), "OPX_CERT_FILE="+filepath.Join(e.DataDir, "tls.crt"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		e.T.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.T.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		e.T.Fatal(err)
	}
	f := &flooder{cmd: cmd, stdin: stdin}
	e.T.Cleanup(f.release)
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		got <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case f.line = <-got:
	case <-time.After(2 * time.Minute):
		e.T.Fatalf("%s %v did not report", prog, args)
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
	t.Parallel()
	a, b := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	ref := "op://Dev/app/token"
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["op://Dev/*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake")
	if r := e.helper(a, "read", ref); r.Code != 0 {
		t.Fatalf("allowed helper before the flood: %+v", r)
	}

	f := e.startFlooder(b, "hold", "3000")
	// The daemon takes the connections off its listen queue one at a time
	// (slowly under -race): watch its count until every one of the 3,000
	// has been kept or refused. Kept ones that stay idle are closed after
	// 5 s (the TLS handshake timeout), which frees their places, so at
	// least 3,000 - 2 × 1,024 are refused whatever the speed.
	status := func() api.Status {
		t.Helper()
		var st api.Status
		if r := e.helper(a, "opx", "status", "--json"); r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil {
			t.Fatalf("opx status --json run by the allowed program: %+v", r)
		}
		return st
	}
	want := uint64(3000 - 2*api.MaxConnsPerProcess - f.field(t, "failed"))
	var st api.Status
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		st = status()
		if st.Connections.Open > api.MaxConnsPerProcess+8 {
			t.Fatalf("the daemon holds %d connections while one process floods it; the limit per process is %d", st.Connections.Open, api.MaxConnsPerProcess)
		}
		if st.Connections.Refused >= want || time.Now().After(deadline) {
			break
		}
	}
	if st.Connections.Refused < want {
		t.Errorf("connections refused of the 3,000: %d; want at least %d (flooder: %q)", st.Connections.Refused, want, f.line)
	}
	if r := e.helper(a, "read", ref); r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Errorf("another process's read during the flood: %+v", r)
	}
	f.release()
	if logs := e.DaemonLog(); !strings.Contains(logs, "connections refused") {
		t.Errorf("the daemon's log names no refused connection:\n%s", logs)
	}
}

// Request bodies buffered before the policy decides are bounded: one
// process that announces 300 bodies of 1 MiB and sends 4 KiB of each gets
// most of them refused at once (429), and another process's read goes on.
func TestPendingBodiesFromOneProcessAreBounded(t *testing.T) {
	t.Parallel()
	a, b := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	ref := "op://Dev/app/token"
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["op://Dev/*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake")
	f := e.startFlooder(b, "bodies", "300", "1048576")
	pending := f.field(t, "pending")
	if pending > api.MaxBodyBytesPerProcess/(1<<20) || !strings.Contains(f.line, "429:") {
		t.Errorf("300 pending 1 MiB bodies from one process: %q; want at most %d pending and the rest refused with 429", f.line, api.MaxBodyBytesPerProcess/(1<<20))
	}
	if r := e.helper(a, "read", ref); r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Errorf("another process's read while the bodies are pending: %+v", r)
	}
}
