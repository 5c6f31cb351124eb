package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/opxhq/opx/internal/testdir"
	"github.com/opxhq/opx/policy"
	"github.com/opxhq/opx/winpipe"
)

// dialTestDaemon connects to the daemon whose pipe is named in the file
// sock, as opx's client does.
func dialTestDaemon(ctx context.Context, sock string) (net.Conn, error) {
	name, err := readPipeName(sock)
	if err != nil {
		return nil, err
	}
	return winpipe.Dial(ctx, name)
}

// parentless reports whether this process has no parent Windows knows (a
// test binary wine runs for go test: its parent is a Linux process).
func parentless() bool { return os.Getppid() == 0 }

// TestMain lets the test binary play an opx client run by the test: with
// OPX_TEST_PEER_PIPE set it asks that pipe's server who it is, prints the
// answer and exits.
func TestMain(m *testing.M) {
	if name := os.Getenv("OPX_TEST_PEER_PIPE"); name != "" {
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return winpipe.Dial(ctx, name) }}
		resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get("http://opx-authd/peer")
		if err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(1)
		}
		b, _ := io.ReadAll(resp.Body)
		os.Stdout.WriteString(strconv.Itoa(resp.StatusCode) + " " + string(b))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// pipeServer serves the test server s's handlers, and a /peer route that
// reports the peer identified, over a real named pipe, each connection
// identified as the daemon identifies it; it returns a client of it.
func pipeServer(t *testing.T, s *server, self string) (*http.Client, string) {
	t.Helper()
	name := winpipe.NewName()
	ln, err := winpipe.Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	peers := newPeerListener(ln, func(refusal) {})
	peers.self, peers.hashes, peers.wantHash = self, &exeHashes{}, func() bool { return true }
	s.conns = peers.conns
	routes := s.routes()
	mux := http.NewServeMux()
	mux.Handle("/", routes)
	var mu sync.Mutex
	mux.HandleFunc("/peer", func(w http.ResponseWriter, r *http.Request) {
		p := peerFrom(r.Context())
		mu.Lock()
		defer mu.Unlock()
		if p == nil {
			http.Error(w, "no peer", 500)
			return
		}
		if p.Err != nil {
			http.Error(w, p.Err.Error(), 403)
			return
		}
		io.WriteString(w, strings.Join([]string{strconv.Itoa(p.PID), p.SID, p.Path, p.ExeSHA256, strconv.Itoa(p.Requester.PID)}, "|"))
	})
	srv := &http.Server{Handler: mux, ConnContext: connContext, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(peers)
	t.Cleanup(func() { srv.Close() })
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return winpipe.Dial(ctx, name) }}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}, name
}

func get(t *testing.T, c *http.Client, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://opx-authd"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPeerOverAPipe: a process that connects to the daemon's pipe is
// identified by its pid, its token's SID and its image, and the policy
// judges it by them: a path rule in another case matches, a rule naming
// another program denies, an exe_sha256 rule allows.
func TestPeerOverAPipe(t *testing.T) {
	exe, _ := os.Executable()
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	dir := testdir.New(t)
	polFile := filepath.Join(dir, "policy.json")
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }
	os.WriteFile(polFile, []byte(`{"allow": [
	  {"path": `+q(strings.ToUpper(exe))+`, "refs": ["op://Upper/*"]},
	  {"path": "C:\\Windows\\System32\\cmd.exe", "refs": ["op://Cmd/*"]},
	  {"exe_sha256": "`+hex.EncodeToString(sum[:])+`", "refs": ["op://Hash/*"]}
	], "default_deny": true}`), 0o600)
	s, _ := newTestServer(t, 0)
	me, err := currentSID()
	if err != nil {
		t.Fatal(err)
	}
	s.sid = me
	pol, err := policy.Load(polFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.policy = pol
	c, _ := pipeServer(t, s, "")

	code, body := get(t, c, "GET", "/peer", "")
	want := []string{strconv.Itoa(os.Getpid()), me, "", hex.EncodeToString(sum[:]), strconv.Itoa(os.Getpid())}
	got := strings.Split(body, "|")
	if code != 200 || len(got) != 5 || got[0] != want[0] || got[1] != want[1] || !policy.SamePath(got[2], exe) || got[3] != want[3] || got[4] != want[4] {
		t.Fatalf("peer over the pipe = %d %q, want pid|sid|path|sha256|requester = %q (path %s)", code, body, want, exe)
	}
	for _, tc := range []struct {
		ref  string
		want int
	}{
		{"op://Upper/item/field", 200}, // the path rule, upper-cased
		{"op://Cmd/item/field", 403},   // a rule for cmd.exe: not us
		{"op://Hash/item/field", 200},  // by content
		{"op://Other/item/field", 403}, // default deny
	} {
		if code, body := get(t, c, "POST", "/v1/read", `{"ref":"`+tc.ref+`"}`); code != tc.want {
			t.Errorf("read %s = %d %s, want %d", tc.ref, code, body, tc.want)
		}
	}
}

// TestAnotherUserIsRefused: a peer whose token holds another SID is
// refused as another user (wine has one user: the SID is the test's).
func TestAnotherUserIsRefused(t *testing.T) {
	s, _ := newTestServer(t, 0)
	s.sid, _ = currentSID()
	other := &Peer{PID: 4242, UID: -1, GID: -1, SID: "S-1-5-21-1-2-3-1001", Path: `C:\x.exe`}
	req, _ := http.NewRequest("POST", "/v1/read", strings.NewReader(`{"ref":"op://a/b/c"}`))
	req = req.WithContext(context.WithValue(req.Context(), peerKey{}, other))
	e := s.checkPeer(req)
	if e == nil || !strings.Contains(e.Message, "not the daemon's user") {
		t.Errorf("checkPeer(another SID) = %v, want refused as another user", e)
	}
	other.SID = s.sid
	if e := s.checkPeer(req); e != nil {
		t.Errorf("checkPeer(our SID) = %v, want nil", e)
	}
}

// TestAProcessNewerThanTheAcceptIsRefused: a pid whose process was created
// after the connection was accepted is a reused pid.
func TestAProcessNewerThanTheAcceptIsRefused(t *testing.T) {
	name := winpipe.NewName()
	ln, err := winpipe.Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := winpipe.Dial(context.Background(), name)
		if err == nil {
			time.Sleep(2 * time.Second)
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := newPeerListener(ln, func(refusal) {})
	p, pin, err := peerCred(c)
	if err != nil {
		t.Fatal(err)
	}
	id := l.identify(c, p, pin, nil, 1) // accepted in 1601
	if id.peer.Err == nil || !strings.Contains(id.peer.Err.Error(), "pid reused") {
		t.Errorf("identify(accepted before the process) = %v, want refused (pid reused)", id.peer.Err)
	}
	p, pin, _ = peerCred(c)
	if id := l.identify(c, p, pin, nil, policy.Now()); id.peer.Err != nil {
		t.Errorf("identify(accepted now) = %v, want identified", id.peer.Err)
	}
}

// TestTheOpxClientsParentIsTheRequester: when the peer is opx itself (here
// the test binary plays opx), the requester is the process that ran it,
// found by its parent pid and accepted because it is older.
func TestTheOpxClientsParentIsTheRequester(t *testing.T) {
	exe, _ := os.Executable()
	s, _ := newTestServer(t, 0)
	s.sid, _ = currentSID()
	c, name := pipeServer(t, s, exe)
	self, err := policy.ReadProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A child running this binary is "opx", run by this test: the
	// requester is the test process.
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "OPX_TEST_PEER_PIPE="+name)
	out, err := cmd.Output()
	if got := strings.Split(string(out), "|"); err != nil || len(got) != 5 || !strings.HasPrefix(got[0], "200 ") || got[4] != strconv.Itoa(os.Getpid()) {
		t.Errorf("the opx client run by the test = %q, %v; want the requester %d", out, err, os.Getpid())
	}
	// The test process itself is "opx" too; its parent is the requester,
	// unless it has none that Windows knows (wine: ppid 0): refused.
	code, body := get(t, c, "GET", "/peer", "")
	if self.PPID == 0 {
		if code != 403 || !strings.Contains(body, "cannot be identified") {
			t.Errorf("the opx client with no parent = %d %q, want refused", code, body)
		}
		return
	}
	if got := strings.Split(body, "|"); code != 200 || len(got) != 5 || got[4] != strconv.Itoa(self.PPID) {
		t.Errorf("requester of the opx client = %d %q, want its parent %d", code, body, self.PPID)
	}
}

// TestTheLockRefusesASecondDaemon: a second acquire of the lock file, even
// in this process (Windows locks belong to a handle), is refused and names
// the holder's pid; once released it can be taken again.
func TestTheLockRefusesASecondDaemon(t *testing.T) {
	path := filepath.Join(testdir.New(t), "pipe.lock")
	l, err := acquireLock(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = acquireLock(path)
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second acquireLock = %v, want ErrAlreadyRunning naming pid %d", err, os.Getpid())
	}
	l.release()
	l, err = acquireLock(path)
	if err != nil {
		t.Fatalf("acquireLock after release = %v", err)
	}
	l.release()
}

// TestThePipeNameFile: listen records the pipe's name in the file, a
// client dials by it, and shutdown removes the file only while it names
// this daemon's pipe.
func TestThePipeNameFile(t *testing.T) {
	path := filepath.Join(testdir.New(t), "pipe")
	ln, err := listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	name, err := readPipeName(path)
	if err != nil || !strings.HasPrefix(name, winpipe.NamePrefix) || len(name) != len(winpipe.NamePrefix)+32 {
		t.Fatalf("readPipeName = %q, %v", name, err)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := dialTestDaemon(context.Background(), path)
	if err != nil {
		t.Fatalf("dial by the name file: %v", err)
	}
	c.Close()
	os.WriteFile(path, []byte(winpipe.NewName()+"\n"), 0o600) // another's since
	removeOwnSocket(path, ln)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("removeOwnSocket removed a file naming another pipe: %v", err)
	}
	os.WriteFile(path, []byte(name+"\r\n"), 0o600)
	removeOwnSocket(path, ln)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removeOwnSocket left its own name file: %v", err)
	}
}

// TestHardenedDACL: what harden gives the process: the user may end it
// and query it, not read or write its memory, make threads in it or take
// its handles. (Wine does not enforce a process's DACL: this checks what
// opx asks for, and that asking succeeds.)
func TestHardenedDACL(t *testing.T) {
	me, _ := currentSID()
	sd, err := windows.SecurityDescriptorFromString(hardenedDACL(me))
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	const forbidden = windows.PROCESS_VM_READ | windows.PROCESS_VM_WRITE | windows.PROCESS_VM_OPERATION |
		windows.PROCESS_CREATE_THREAD | windows.PROCESS_DUP_HANDLE | windows.WRITE_DAC | windows.WRITE_OWNER
	users := 0
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			t.Fatal(err)
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		if sid.IsWellKnown(windows.WinLocalSystemSid) {
			continue
		}
		users++
		if ace.Mask&forbidden != 0 || ace.Mask&windows.PROCESS_TERMINATE == 0 {
			t.Errorf("ACE for %s grants 0x%x", sid, ace.Mask)
		}
	}
	if users != 2 {
		t.Errorf("%d ACEs for the user and OWNER RIGHTS, want 2", users)
	}
	if err := harden(); err != nil {
		t.Errorf("harden() = %v", err)
	}
}
