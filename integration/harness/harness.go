// Package harness runs opx's Vault and OpenBao integration tests: the real
// opx daemon, built from this repository, against a real server that the
// calling test module starts in-process (Vault and OpenBao cannot share one
// module). The server side is behind Server; everything else is here, so
// both servers pass the same tests.
package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vapi "github.com/hashicorp/vault/api"
)

// Server is a running Vault or OpenBao server.
type Server interface {
	// Addr is the server's http://127.0.0.1:PORT address.
	Addr() string
	// RootToken is a root token of the server.
	RootToken() string
	// AuditLog is the file an audit device writes every request to.
	AuditLog() string
	// Stop closes the listener and every open connection.
	Stop()
	// Start serves again on the same address.
	Start()
}

// Bins are the programs the tests run.
type Bins struct {
	Opx, FakeOp, Root string
	Dir               string // where they are
}

// Main is a server module's TestMain: it builds the programs into a
// temporary directory, runs the tests and removes the directory.
func Main(m *testing.M, bins *Bins) {
	dir, err := os.MkdirTemp("", "opx-it-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *bins, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Build compiles opx and the fake op from the repository at ../.. of the
// calling test's directory.
func Build(dir string) (Bins, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return Bins{}, err
	}
	b := Bins{Opx: filepath.Join(dir, "opx"), FakeOp: filepath.Join(dir, "op"), Root: root, Dir: dir}
	for _, c := range [][]string{{"build", "-o", b.Opx, "."}, {"build", "-o", b.FakeOp, "./testdata/fakeop"}} {
		cmd := exec.Command("go", c...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return Bins{}, fmt.Errorf("go %v: %v\n%s", c, err, out)
		}
	}
	return b, nil
}

// Env is one user's world around one server.
type Env struct {
	T      *testing.T
	Kind   string // "vault" or "bao"
	Bins   Bins
	Srv    Server
	Root   *vapi.Client
	Dir    string
	Sock   string
	Config string
	Vars   map[string]string
	daemon *exec.Cmd
}

// NewEnv makes a fresh HOME, XDG tree and fake-op state for kind.
func NewEnv(t *testing.T, kind string, bins Bins, srv Server) *Env {
	t.Helper()
	dir, err := os.MkdirTemp("", "opxit")
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Kind: kind, Bins: bins, Srv: srv, Dir: dir}
	home := filepath.Join(dir, "h")
	run := filepath.Join(dir, "r")
	state := filepath.Join(dir, "opstate")
	for _, d := range []string{home, run, state} {
		os.MkdirAll(d, 0o700)
	}
	os.WriteFile(filepath.Join(state, "my"), nil, 0o600) // signed in to 1Password
	e.Sock = filepath.Join(run, "op-authd", "socket.sock")
	e.Config = filepath.Join(home, "c", "op-authd", "config.json")
	fixture := filepath.Join(dir, "fixture.json")
	e.Vars = map[string]string{
		"HOME": home, "PATH": os.Getenv("PATH"),
		"XDG_DATA_HOME": filepath.Join(home, "d"), "XDG_CONFIG_HOME": filepath.Join(home, "c"), "XDG_RUNTIME_DIR": run,
		"OPX_OP_PATH": bins.FakeOp, "FAKEOP_FIXTURE": fixture, "FAKEOP_STATE": state,
	}
	e.WriteFixture(nil)
	root, err := vapi.NewClient(&vapi.Config{Address: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(srv.RootToken())
	e.Root = root
	t.Cleanup(func() {
		e.StopDaemon()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(home, "d", "op-authd", "opx-authd.log")); err == nil {
				t.Logf("daemon log:\n%s", b)
			}
		}
		os.RemoveAll(dir)
	})
	return e
}

// WriteFixture writes the fake op's items: the repository's fixture plus an
// item "Infra/<kind>" with the given fields.
func (e *Env) WriteFixture(fields map[string]string) {
	out, err := FixtureWithItem(filepath.Join(e.Bins.Root, "testdata", "fakeop", "fixture.json"), e.Kind, fields)
	if err != nil {
		e.T.Fatal(err)
	}
	if err := os.WriteFile(e.Vars["FAKEOP_FIXTURE"], out, 0o600); err != nil {
		e.T.Fatal(err)
	}
}

// FixtureWithItem returns the fake op fixture at path with a vault "Infra"
// added to its first account, holding one item titled title with fields
// (concealed).
func FixtureWithItem(path, title string, fields map[string]string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var fx map[string]any
	if err := json.Unmarshal(b, &fx); err != nil {
		return nil, err
	}
	var fl []map[string]any
	for k, v := range fields {
		fl = append(fl, map[string]any{"id": k, "label": k, "type": "CONCEALED", "value": v})
	}
	acct := fx["accounts"].([]any)[0].(map[string]any)
	acct["vaults"] = append(acct["vaults"].([]any), map[string]any{"id": "vinfra", "name": "Infra",
		"items": []any{map[string]any{"id": "i" + title, "title": title, "fields": fl}}})
	return json.Marshal(fx)
}

// SetConfig writes config.json.
func (e *Env) SetConfig(cfg map[string]any) {
	os.MkdirAll(filepath.Dir(e.Config), 0o700)
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(e.Config, b, 0o600); err != nil {
		e.T.Fatal(err)
	}
}

func (e *Env) environ(extra ...string) []string {
	var env []string
	for k, v := range e.Vars {
		env = append(env, k+"="+v)
	}
	return append(env, extra...)
}

// Result is what a client run printed.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Opx runs the client.
func (e *Env) Opx(args ...string) Result {
	return e.OpxIn("", args...)
}

// OpxIn runs the client with stdin.
func (e *Env) OpxIn(stdin string, args ...string) Result {
	e.T.Helper()
	cmd := exec.Command(e.Bins.Opx, args...)
	cmd.Env = e.environ()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.T.Fatal(err)
	}
	return Result{out.String(), errb.String(), code}
}

// MustOpx runs the client and fails unless it exits 0.
func (e *Env) MustOpx(args ...string) string {
	e.T.Helper()
	r := e.Opx(args...)
	if r.Code != 0 {
		e.T.Fatalf("opx %s: exit %d\n%s%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// StartDaemon runs opx daemon with args and waits for its socket. The
// settings among args are also put in the clients' environment, as a user
// who starts a daemon with them would set them: a client compares them with
// the daemon's and warns when they differ.
func (e *Env) StartDaemon(args ...string) {
	e.T.Helper()
	for k, v := range SettingsEnv(args) {
		e.Vars[k] = v
	}
	e.StartDaemonByHand(args...)
}

// StartDaemonByHand runs opx daemon with args, as a user who types
// `opx daemon --backend=multi` does: the clients' environment does not
// get the settings among args.
func (e *Env) StartDaemonByHand(args ...string) {
	e.T.Helper()
	cmd := exec.Command(e.Bins.Opx, append([]string{"daemon"}, args...)...)
	cmd.Env = e.environ()
	logf, _ := os.Create(filepath.Join(e.Dir, "daemon.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		e.T.Fatal(err)
	}
	e.daemon = cmd
	for i := 0; i < 2000; i++ {
		if c, err := net.Dial("unix", e.Sock); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(e.Dir, "daemon.log"))
	e.T.Fatalf("daemon did not start:\n%s", b)
}

// SettingsEnv maps the daemon flags among args that a client compares
// (--backend, --ttl, --op-path) to their environment variables.
func SettingsEnv(args []string) map[string]string {
	env := map[string]string{}
	for _, a := range args {
		for flag, name := range map[string]string{"--backend=": "OP_AUTHD_BACKEND", "--ttl=": "OP_AUTHD_TTL", "--op-path=": "OPX_OP_PATH"} {
			if v, ok := strings.CutPrefix(a, flag); ok {
				env[name] = v
			}
		}
	}
	return env
}

// DaemonLog is what the daemon started by StartDaemon logged so far.
func (e *Env) DaemonLog() string {
	b, _ := os.ReadFile(filepath.Join(e.Dir, "daemon.log"))
	return string(b)
}

// StopDaemon ends the daemon, started or autostarted.
func (e *Env) StopDaemon() {
	if e.daemon != nil {
		e.daemon.Process.Signal(syscall.SIGTERM)
		e.daemon.Wait()
		e.daemon = nil
	}
	if b, err := os.ReadFile(e.Sock + ".lock"); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 200; i++ {
				if syscall.Kill(pid, 0) != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// Status is the daemon's status as JSON.
func (e *Env) Status() map[string]any {
	var st map[string]any
	if err := json.Unmarshal([]byte(e.MustOpx("status", "--json")), &st); err != nil {
		e.T.Fatal(err)
	}
	return st
}

// Write stores a secret with the root token.
func (e *Env) Write(path string, data map[string]any) {
	e.T.Helper()
	if _, err := e.Root.Logical().Write(path, data); err != nil {
		e.T.Fatalf("write %s: %v", path, err)
	}
}

// Mount enables a KV secrets engine of version ver at path.
func (e *Env) Mount(path string, ver int) {
	e.T.Helper()
	err := e.Root.Sys().Mount(path, &vapi.MountInput{Type: "kv", Options: map[string]string{"version": strconv.Itoa(ver)}})
	if err != nil && !strings.Contains(err.Error(), "path is already in use") {
		e.T.Fatalf("mount %s: %v", path, err)
	}
}

// ReadsOf counts the audited requests (responses) for path.
func (e *Env) ReadsOf(path string) int {
	b, _ := os.ReadFile(e.Srv.AuditLog())
	n := 0
	for _, line := range bytes.Split(b, []byte("\n")) {
		var entry struct {
			Type    string `json:"type"`
			Request struct {
				Path      string `json:"path"`
				Operation string `json:"operation"`
			} `json:"request"`
		}
		if json.Unmarshal(line, &entry) == nil && entry.Type == "response" && entry.Request.Path == path && entry.Request.Operation == "read" {
			n++
		}
	}
	return n
}

// Parallel runs f n times at once.
func Parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}

func readAll(path string) ([]byte, error) { return os.ReadFile(path) }
