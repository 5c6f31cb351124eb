//go:build unix

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opxhq/opx/e2e/harness"
)

// buildHelpers copies testdata/peerhelper as two programs into a directory
// every user can enter.
func buildHelpers(t *testing.T) (a, b string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "opxhelp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	data, err := os.ReadFile(harness.Tool(t, "./testdata/peerhelper"))
	if err != nil {
		t.Fatal(err)
	}
	// Two copies of their own: tests change them, link to them and judge
	// them by path and by content.
	a, b = filepath.Join(dir, "helper-a"), filepath.Join(dir, "helper-b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func (e *testEnv) writePolicy(body string) {
	e.T.Helper()
	os.MkdirAll(e.ConfigDir, 0o700)
	path := filepath.Join(e.ConfigDir, "policy.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		e.T.Fatal(err)
	}
	// Make sure the change is visible even on a coarse clock.
	future := time.Now().Add(time.Duration(len(body)%50+1) * time.Second)
	os.Chtimes(path, future, future)
}

func (e *testEnv) helper(prog string, args ...string) harness.Result {
	e.T.Helper()
	return e.helperEnv(nil, prog, args...)
}

// helperEnv is helper with extra environment, which beats the defaults
// (OPX_BIN=... runs another opx, the op shim among them).
func (e *testEnv) helperEnv(extra []string, prog string, args ...string) harness.Result {
	e.T.Helper()
	cmd := exec.Command(prog, args...)
	tok, _ := os.ReadFile(filepath.Join(e.DataDir, "token"))
	cmd.Env = e.Environ(append([]string{"OPX_BIN=" + e.Client, "OPX_SOCKET_PATH=" + e.Sock, "OPX_TOKEN=" + strings.TrimSpace(string(tok)), "OPX_CERT_FILE=" + filepath.Join(e.DataDir, "tls.crt")}, extra...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return harness.Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

func TestPolicyJudgesTheProgramThatRanOpx(t *testing.T) {
	t.Parallel()
	a, b := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["op://Production/*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake")
	ref := "op://Production/db/password"

	if r := e.helper(a, "read", ref); r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Errorf("allowed helper: %+v", r)
	}
	r := e.helper(b, "read", ref)
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "forbidden") || !strings.Contains(r.Stderr, b) {
		t.Errorf("denied helper through opx read: %+v", r)
	}
	if r := e.helper(b, "http", ref); !strings.HasPrefix(r.Stdout, "403 ") || !strings.Contains(r.Stdout, `"forbidden"`) {
		t.Errorf("denied helper over the socket itself: %+v", r)
	}
	if r := e.helper(a, "read", "op://Staging/db/password"); r.Code != 1 || !strings.Contains(r.Stderr, "forbidden") {
		t.Errorf("allowed helper outside its refs: %+v", r)
	}
	st := e.statusAs(a)
	if !st.Policy.Loaded || st.Policy.Rules != 1 || !st.Policy.DefaultDeny {
		t.Errorf("status policy = %+v", st.Policy)
	}
	// A program the policy allows nothing learns that the daemon runs and
	// whether it is locked, not where the secrets are (issue 21, item 7).
	if st := e.statusAs(b); !st.Limited || st.Version == "" || st.PID == 0 || st.Session.State == "" ||
		st.Policy.Hash != "" || st.Policy.Rules != 0 || st.SocketPath != "" || st.Backend != "" {
		t.Errorf("status for a program allowed no ref = %+v; want only that the daemon runs", st)
	}
	if r := e.helper(b, "opx", "status"); r.Code != 0 || !strings.Contains(r.Stdout, "no more") || strings.Contains(r.Stdout, "backend") {
		t.Errorf("opx status for a program allowed no ref: %+v", r)
	}
	// Nor does its answers' Opx-Settings header name the op program or a
	// server; an allowed program's does.
	if r := e.helper(b, "http", ref); !strings.Contains(r.Stderr, "Opx-Settings: backend=fake") || strings.Contains(r.Stderr, "op_path") {
		t.Errorf("Opx-Settings for a program allowed no ref: %q", r.Stderr)
	}
	if r := e.helper(a, "http", ref); !strings.Contains(r.Stderr, "op_path=") {
		t.Errorf("Opx-Settings for an allowed program: %q", r.Stderr)
	}

	// A change to the file decides the next read; a broken one changes
	// nothing.
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["*"]}, {"path": "` + b + `", "refs": ["op://Production/*"]}], "default_deny": true}`)
	if r := e.helper(b, "read", ref); r.Code != 0 {
		t.Errorf("helper b after the policy allowed it: %+v", r)
	}
	e.writePolicy(`{"allow": [`)
	if r := e.helper(b, "read", ref); r.Code != 0 {
		t.Errorf("a broken policy edit must keep the last good policy: %+v", r)
	}

	// opx policy check says the same, and names the rule.
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["op://Production/*"]}], "default_deny": true}`)
	r = e.Opx("policy", "check", "--path", a, ref, "op://Staging/x/y")
	if r.Code != 1 || !strings.Contains(r.Stdout, "ALLOW "+ref) || !strings.Contains(r.Stdout, "allow[0]") || !strings.Contains(r.Stdout, "DENY op://Staging/x/y") {
		t.Errorf("opx policy check = %+v", r)
	}
}

func TestBrokenPolicyStopsTheDaemon(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.writePolicy(`{"allow": [{"path": "relative", "refs": ["*"]}]}`)
	r := e.Opx("daemon", "--backend=fake")
	if r.Code != 1 || !strings.Contains(r.Stderr, filepath.Join(e.ConfigDir, "policy.json")) || !strings.Contains(r.Stderr, "not absolute") {
		t.Errorf("daemon with a broken policy = %+v", r)
	}
}

func TestAnotherUserIsRefused(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	_, b := buildHelpers(t)
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	// Open the path to the socket to everyone, as a misconfigured system
	// might: the peer-credential check must still refuse the stranger. The
	// daemon listens, then makes its socket 0600: wait for that, or the
	// daemon's chmod can undo this test's.
	for i := 0; ; i++ {
		if fi, err := os.Lstat(e.Sock); err == nil && fi.Mode().Perm() == 0o600 {
			break
		} else if i == 1000 {
			t.Fatalf("the daemon's socket did not become 0600: %v %v", fi, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range []string{e.Dir, filepath.Dir(filepath.Dir(e.Sock)), filepath.Dir(e.Sock)} {
		os.Chmod(d, 0o711)
	}
	os.Chmod(e.Sock, 0o666)
	tok, _ := os.ReadFile(filepath.Join(e.DataDir, "token"))
	pem, _ := os.ReadFile(filepath.Join(e.DataDir, "tls.crt"))
	certCopy := filepath.Join(filepath.Dir(b), "tls.crt")
	os.WriteFile(certCopy, pem, 0o644)
	cmd := exec.Command(b, "http", "op://a/b/c")
	cmd.Env = []string{"OPX_SOCKET_PATH=" + e.Sock, "OPX_TOKEN=" + strings.TrimSpace(string(tok)), "OPX_CERT_FILE=" + certCopy}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "403 ") || !strings.Contains(string(out), "uid 65534") {
		t.Errorf("client as uid 65534: %v\n%s", err, out)
	}
}

func TestAuditLogAndInteractiveAllow(t *testing.T) {
	t.Parallel()
	a, b := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["op://Production/*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake", "--enable-audit-log")
	ref := "op://Production/db/password"
	e.helper(a, "read", ref)
	for range 3 {
		if r := e.helper(b, "read", ref); r.Code != 1 {
			t.Fatalf("helper b was not denied: %+v", r)
		}
	}
	hc, _ := e.RawClient()
	harness.Request(t, hc, "wrong", "GET", "/v1/status", nil)

	day := time.Now().Format(time.DateOnly)
	logData, err := os.ReadFile(filepath.Join(e.DataDir, "audit-"+day+".log"))
	if err != nil {
		t.Fatal(err)
	}
	log := string(logData)
	for _, want := range []string{`"event":"DAEMON_START"`, `"decision":"ALLOW"`, `"decision":"DENY"`, `"Path":"` + b + `"`, `"event":"AUTH_FAILURE"`, `"reference":"` + ref + `"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if strings.Contains(log, fv(ref)) {
		t.Error("the audit log holds a secret value")
	}
	if m := mode(t, filepath.Join(e.DataDir, "audit-"+day+".log")); m != 0o600 {
		t.Errorf("audit file mode %o", m)
	}

	out := e.MustOpx("audit", "--since", "1h")
	if !strings.Contains(out, b) || !strings.Contains(out, ref) || !strings.Contains(out, "  3  ") {
		t.Errorf("opx audit =\n%s", out)
	}
	var denials []map[string]any
	if err := json.Unmarshal([]byte(e.MustOpx("audit", "--json", "--since", "7d")), &denials); err != nil || len(denials) != 1 {
		t.Errorf("opx audit --json = %v, %v", denials, err)
	}

	// Allow the denial at vault scope: the next read of another item of
	// that vault passes, without a restart.
	cmd := exec.Command(e.Client, "audit", "--interactive", "--since", "1h")
	cmd.Env = e.Environ()
	cmd.Stdin = strings.NewReader("1\nv\ny\n")
	outb, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(outb), "allowed "+b+" to read op://Production/*") {
		t.Fatalf("opx audit --interactive: %v\n%s", err, outb)
	}
	if r := e.helper(b, "read", "op://Production/other/item"); r.Code != 0 || r.Stdout != fv("op://Production/other/item")+"\n" {
		t.Errorf("helper b after the interactive allow: %+v", r)
	}
	if r := e.helper(b, "read", "op://Staging/x/y"); r.Code != 1 {
		t.Errorf("the vault scope allowed another vault: %+v", r)
	}
}
