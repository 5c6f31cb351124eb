package main

// End-to-end tests: they build the real opx binary once and run it as a user
// would, each test with a fresh HOME and XDG tree and its own socket.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"github.com/opxhq/opx/integration/harness"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	opxBin    string // the built binary; opx-authd links to it in the same dir
	fakeOpBin string // testdata/fakeop, the stand-in for the 1Password CLI
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "opx-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opxBin = filepath.Join(dir, "opx")
	args := []string{"build", "-o", opxBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if !raceEnabled {
		build.Env = append(os.Environ(), "CGO_ENABLED=0") // as the Makefile builds it
	}
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build opx:", err)
		os.Exit(1)
	}
	fakeOpBin = filepath.Join(dir, "op")
	if out, err := exec.Command("go", "build", "-o", fakeOpBin, "./testdata/fakeop").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fake op: %v\n%s", err, out)
		os.Exit(1)
	}
	if err := os.Symlink("opx", filepath.Join(dir, "opx-authd")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testEnv is one user's world: HOME, XDG dirs and the environment.
type testEnv struct {
	t      *testing.T
	root   string
	sock   string
	data   string
	config string
	vars   map[string]string
	out    *syncBuf // the output of the daemon startDaemon ran last
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	// Short paths: a Unix socket path holds about 100 bytes.
	root, err := os.MkdirTemp("", "opx")
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, root: root}
	home := filepath.Join(root, "h")
	run := filepath.Join(root, "r")
	for _, d := range []string{home, run} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.vars = map[string]string{
		"HOME":            home,
		"PATH":            os.Getenv("PATH"),
		"XDG_DATA_HOME":   filepath.Join(home, "d"),
		"XDG_CONFIG_HOME": filepath.Join(home, "c"),
		"XDG_RUNTIME_DIR": run,
		"GORACE":          "halt_on_error=1 atexit_sleep_ms=0", // a race-built opx exits at once, not after 1 s
	}
	e.sock = filepath.Join(run, "op-authd", "socket.sock")
	e.data = filepath.Join(home, "d", "op-authd")
	e.config = filepath.Join(home, "c", "op-authd")
	t.Cleanup(func() {
		e.stopDaemon()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(e.data, "opx-authd.log")); err == nil {
				t.Logf("daemon log:\n%s", b)
			}
		}
		os.RemoveAll(root)
	})
	return e
}

func (e *testEnv) environ(extra ...string) []string {
	var env []string
	for k, v := range e.vars {
		env = append(env, k+"="+v)
	}
	return append(env, extra...)
}

type result struct {
	stdout, stderr string
	code           int
}

// opx runs the client with args and returns what it printed.
func (e *testEnv) opx(args ...string) result {
	e.t.Helper()
	return e.opxEnv(nil, args...)
}

func (e *testEnv) opxEnv(extra []string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(opxBin, args...)
	cmd.Env = e.environ(extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("run opx %v: %v", args, err)
		}
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal()) // as a shell reports it
		}
	}
	return result{out.String(), errb.String(), code}
}

// mustOpx runs the client and fails the test unless it exits 0.
func (e *testEnv) mustOpx(args ...string) string {
	e.t.Helper()
	r := e.opx(args...)
	if r.code != 0 {
		e.t.Fatalf("opx %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// startDaemon runs `opx daemon ARGS` (or the opx-authd link when prog says
// so) and waits until it accepts connections.
func (e *testEnv) startDaemon(prog string, args ...string) *exec.Cmd {
	e.t.Helper()
	// The settings among args go in the clients' environment too, as a
	// user who starts a daemon with them would set them (a client warns
	// when the running daemon's settings differ from its own).
	for k, v := range harness.SettingsEnv(args) {
		e.vars[k] = v
	}
	if prog == "" {
		prog = opxBin
		args = append([]string{"daemon"}, args...)
	}
	return e.startDaemonWith(e.environ(), prog, args...)
}

// startDaemonWith runs prog ARGS with exactly the environment env (a
// daemon started by hand, or by a service manager, whose settings the
// clients' environment does not share) and waits until it accepts
// connections.
func (e *testEnv) startDaemonWith(env []string, prog string, args ...string) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = env
	logb := &syncBuf{}
	e.out = logb
	cmd.Stdout, cmd.Stderr = logb, logb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unix", e.sock); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			e.t.Fatalf("daemon exited at start: %s", logb.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("daemon did not listen: %s", logb.String())
		}
	}
	e.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
	})
	return cmd
}

// daemonLog is what the daemon startDaemon ran last has logged so far.
func (e *testEnv) daemonLog() string {
	if e.out == nil {
		return ""
	}
	return e.out.String()
}

// daemonPID returns the pid recorded in the socket's lock file, or 0.
func (e *testEnv) daemonPID() int {
	b, err := os.ReadFile(e.sock + ".lock")
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// stopDaemon ends an autostarted daemon, if any.
func (e *testEnv) stopDaemon() {
	pid := e.daemonPID()
	if pid <= 0 || !alive(pid) {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 400 && alive(pid); i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// daemonsFor counts live daemon processes serving this env's socket.
func (e *testEnv) daemonsFor() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || !alive(pid) {
			continue
		}
		// The program is the test's opx (by its executable: an autostarted
		// daemon is named opx in its argv), run as the daemon.
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		ours := exe == opxBin
		if err != nil { // not dumpable, and we are not root: go by the name
			ours = strings.HasPrefix(args[0], filepath.Dir(opxBin)) || args[0] == "opx"
		}
		if !ours || (len(args) < 2 || args[1] != "daemon") && !strings.HasSuffix(args[0], "opx-authd") {
			continue
		}
		// The daemon is not dumpable, so only root can read its
		// environment; without it, a daemon of this test binary counts
		// (the tests run one at a time).
		if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil && !bytes.Contains(env, []byte("HOME="+e.vars["HOME"]+"\x00")) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// rawClient is an HTTP client over the socket with the pinned certificate;
// the token is for the caller to set (or not).
func (e *testEnv) rawClient() (*http.Client, string) {
	e.t.Helper()
	pem, err := os.ReadFile(filepath.Join(e.data, "tls.crt"))
	if err != nil {
		e.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tok, err := os.ReadFile(filepath.Join(e.data, "token"))
	if err != nil {
		e.t.Fatal(err)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.sock)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "opx-authd", MinVersion: tls.VersionTLS13},
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, strings.TrimSpace(string(tok))
}

// request sends one request and returns the status and body.
func request(t *testing.T, hc *http.Client, token, method, path string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "https://opx-authd"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
