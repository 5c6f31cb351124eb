//go:build unix

package e2e

// Access control tried as an attacker running as the same user would
// (issue #10): each test is one of the reproductions, run with real
// processes against the real daemon.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/e2e/harness"
)

// auditLines returns today's audit records of the env's daemon.
func (e *testEnv) auditLines() []map[string]any {
	e.T.Helper()
	f, err := os.Open(filepath.Join(e.DataDir, "audit-"+time.Now().Format(time.DateOnly)+".log"))
	if err != nil {
		e.T.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			e.T.Errorf("audit line does not parse: %q", sc.Text())
			continue
		}
		out = append(out, m)
	}
	return out
}

// A program that connects, hands the connection to a child and runs an
// allowed program is refused, even with 200 idle connections queued before
// it (on the old main identification ran one at a time in the accept loop,
// so it happened after the exec and the child got the value).
func TestConnectForkExecIsRefused(t *testing.T) {
	t.Parallel()
	a, _ := buildHelpers(t)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program to exec")
	}
	sleep, _ = filepath.EvalSymlinks(sleep)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	ref := "op://Prod/db/password"
	e.writePolicy(`{"allow": [{"path": "` + sleep + `", "refs": ["op://Prod/*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake", "--enable-audit-log")
	for _, idle := range []int{0, 200} {
		var conns []net.Conn
		for range idle {
			c, err := net.Dial("unix", e.Sock)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		r := e.helper(a, "handoff", ref, sleep)
		for _, c := range conns {
			c.Close()
		}
		if strings.Contains(r.Stdout, fv(ref)) || !strings.HasPrefix(r.Stdout, "403 ") {
			t.Errorf("%d idle connections: the child of a process that exec'd %s got %q (stderr %q), want 403", idle, sleep, r.Stdout, r.Stderr)
		}
	}
}

// A rule for an allowed program does not let a process in another mount
// namespace, which bound its own program over that path, read.
func TestAnotherMountNamespaceIsRefused(t *testing.T) {
	t.Parallel()
	a, _ := buildHelpers(t)
	if err := exec.Command("unshare", "-Urm", "true").Run(); err != nil {
		t.Skipf("user and mount namespaces are not available here (unshare -Urm: %v)", err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program to bind over")
	}
	sleep, _ = filepath.EvalSymlinks(sleep)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	ref := "op://Prod/db/password"
	e.writePolicy(`{"allow": [{"path": "` + sleep + `", "refs": ["op://Prod/*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake", "--enable-audit-log")
	r := e.helper("unshare", "-Urm", "sh", "-c", `mount --bind "$0" "$1" && exec "$1" http "$2"`, a, sleep, ref)
	if strings.Contains(r.Stdout, fv(ref)) || !strings.HasPrefix(r.Stdout, "403 ") {
		t.Fatalf("a program bound over %s in its own mount namespace got %q (stderr %q), want 403", sleep, r.Stdout, r.Stderr)
	}
	found := false
	for _, m := range e.auditLines() {
		if m["event"] == "AUTH_FAILURE" && strings.Contains(m["reason"].(string), "namespace") {
			found = true
		}
	}
	if !found {
		t.Error("no AUTH_FAILURE audit line names the namespace")
	}
}

// The borrowed parent: the opx client's parent exec'd an allowed program
// before the client connected. The kernel keeps no record of that, so the
// read is judged by the parent's program; the audit line says so truthfully
// (the requester, how it was found, and the opx client itself), and the
// README and the threat model (docs/security.md) name the case.
func TestBorrowedParentIsRecordedTruthfully(t *testing.T) {
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	sleep, _ = filepath.EvalSymlinks(sleep)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	ref := "op://Prod/db/password"
	e.writePolicy(`{"allow": [{"path": "` + sleep + `", "refs": ["op://Prod/*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake", "--enable-audit-log")
	leak := filepath.Join(e.Dir, "leak")
	// The parent sleeps until the read is recorded (however slowly a
	// loaded machine starts the client), then is killed.
	cmd := exec.Command("sh", "-c", `(sleep 0.5; exec "$0" read "$1" >"$2") & exec "$3" 60`, e.Client, ref, leak, sleep)
	cmd.Env = e.Environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(leak); len(b) > 0 {
			break // the value came: the read was allowed, and recorded before it was answered
		}
	}
	var rec map[string]any
	for _, m := range e.auditLines() {
		if m["event"] == "ACCESS_DECISION" && m["reference"] == ref {
			rec = m
		}
	}
	if rec == nil {
		t.Fatal("no audit record of the read within 30 s")
	}
	req, _ := rec["requester"].(map[string]any)
	peer, _ := rec["peer_info"].(map[string]any)
	if req["Path"] != sleep || !strings.Contains(req["via"].(string), "parent of the opx client") || peer["Path"] != e.Client {
		t.Errorf("audit record = %v; want the requester %s found as the parent of the opx client %s", rec, sleep, e.Client)
	}
	for _, doc := range []string{"README.md", "docs/security.md"} {
		text, err := os.ReadFile(repoFile(doc))
		if err != nil || !strings.Contains(string(text), "borrowed parent") {
			t.Errorf("%s does not name the borrowed parent (%v)", doc, err)
		}
	}
}

// Deleting the policy, or making it writable by others, denies every read
// until a good file returns; each change is audited and shows in status.
func TestPolicyFailsClosed(t *testing.T) {
	t.Parallel()
	a, b := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	ref := "op://Prod/db/password"
	good := `{"allow": [{"path": "` + a + `", "refs": ["op://Prod/*"]}], "default_deny": true}`
	e.writePolicy(good)
	e.StartDaemon("", "--backend=fake", "--enable-audit-log")
	if r := e.helper(a, "read", ref); r.Code != 0 {
		t.Fatalf("allowed helper: %+v", r)
	}
	path := filepath.Join(e.ConfigDir, "policy.json")
	os.Remove(path)
	for _, h := range []string{a, b} {
		if r := e.helper(h, "read", ref); r.Code != 1 || !strings.Contains(r.Stderr, "forbidden") || !strings.Contains(r.Stderr, "failed closed") {
			t.Errorf("%s after the policy was deleted: %+v", h, r)
		}
	}
	if st := e.Status(); st.Policy.State != "failed_closed" || st.Policy.Loaded {
		t.Errorf("status policy after deletion = %+v", st.Policy)
	}
	e.writePolicy(good)
	if r := e.helper(a, "read", ref); r.Code != 0 {
		t.Errorf("allowed helper after the policy came back: %+v", r)
	}
	if st := e.statusAs(a); st.Policy.State != "loaded" || len(st.Policy.Hash) != 64 {
		t.Errorf("status policy after it came back = %+v", st.Policy)
	}
	os.Chmod(path, 0o646)
	if r := e.helper(a, "read", ref); r.Code != 1 || !strings.Contains(r.Stderr, "writable by others") {
		t.Errorf("read with a world-writable policy: %+v", r)
	}
	os.Chmod(path, 0o600)
	var states []string
	for _, m := range e.auditLines() {
		if m["event"] == "POLICY_CHANGE" {
			states = append(states, m["state"].(string))
		}
	}
	if strings.Join(states, ",") != "failed_closed,loaded,failed_closed" {
		t.Errorf("POLICY_CHANGE states audited: %v", states)
	}
}

// An edit that keeps the size and the modification time (as a Nix store
// link does, mtime 1) takes effect on the next read.
func TestPolicyEditWithSameSizeAndTimeTakesEffect(t *testing.T) {
	t.Parallel()
	a, b := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	ref := "op://Prod/db/password"
	path := filepath.Join(e.ConfigDir, "policy.json")
	set := func(who string) {
		os.MkdirAll(e.ConfigDir, 0o700)
		os.WriteFile(path, []byte(`{"allow": [{"path": "`+who+`", "refs": ["op://Prod/*"]}], "default_deny": true}`), 0o600)
		os.Chtimes(path, time.Unix(1, 0), time.Unix(1, 0))
	}
	set(a)
	e.StartDaemon("", "--backend=fake")
	if r := e.helper(a, "read", ref); r.Code != 0 {
		t.Fatalf("allowed helper: %+v", r)
	}
	set(b) // same length: helper-a and helper-b
	if r := e.helper(a, "read", ref); r.Code != 1 || !strings.Contains(r.Stderr, "forbidden") {
		t.Errorf("a revoked helper still reads after a same-size, same-mtime edit: %+v", r)
	}
	if r := e.helper(b, "read", ref); r.Code != 0 {
		t.Errorf("the newly allowed helper: %+v", r)
	}
	if r := e.Opx("policy", "check", "--path", a, ref); r.Code != 1 || !strings.Contains(r.Stdout, "DENY") {
		t.Errorf("opx policy check disagrees with the daemon: %+v", r)
	}
}

// Lock, unlock and backend/verify pass the policy: a program allowed no ref
// can do none of them.
func TestLockAndUnlockPassThePolicy(t *testing.T) {
	t.Parallel()
	a, b := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["op://Prod/*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake", "--enable-audit-log")
	for _, p := range []string{"/v1/session/lock", "/v1/session/unlock"} {
		if r := e.helper(b, "post", p, "{}"); !strings.HasPrefix(r.Stdout, "403 ") || !strings.Contains(r.Stdout, "allows this program no ref") {
			t.Errorf("%s by a program allowed nothing: %+v", p, r)
		}
	}
	if st := e.Status(); st.Session.State != "unlocked" {
		t.Errorf("session state %q after a refused lock", st.Session.State)
	}
	verify := `{"kind": "vault", "config": {"address": "http://127.0.0.1:1", "method": "token"}, "token": "x"}`
	if r := e.helper(b, "post", "/v1/backend/verify", verify); !strings.HasPrefix(r.Stdout, "403 ") || !strings.Contains(r.Stdout, "allows this program no ref") {
		t.Errorf("backend/verify by a program allowed nothing: %+v", r)
	}
	if r := e.helper(a, "post", "/v1/backend/verify", verify); !strings.HasPrefix(r.Stdout, "502 ") || !strings.Contains(r.Stdout, "cannot connect") {
		t.Errorf("backend/verify of an address where nothing listens: %+v", r)
	}
	if r := e.helper(a, "post", "/v1/session/lock", "{}"); !strings.HasPrefix(r.Stdout, "200 ") {
		t.Errorf("lock by an allowed program: %+v", r)
	}
	if r := e.helper(b, "post", "/v1/session/unlock", "{}"); !strings.HasPrefix(r.Stdout, "403 ") {
		t.Errorf("unlock by a program allowed nothing: %+v", r)
	}
	if st := e.Status(); st.Session.State != "locked" {
		t.Errorf("session state %q after a refused unlock", st.Session.State)
	}
	if r := e.helper(a, "post", "/v1/session/unlock", "{}"); !strings.HasPrefix(r.Stdout, "200 ") {
		t.Errorf("unlock by an allowed program: %+v", r)
	}
}

// A daemon started with other config paths than a client's is named, with
// how to restart it, once per command.
func TestClientWarnsWhenTheDaemonUsesOtherPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := filepath.Join(e.Dir, "nowhere")
	if r := e.OpxEnv([]string{"OP_AUTHD_BACKEND=fake", "XDG_CONFIG_HOME=" + other}, "read", "op://a/b/c"); r.Code != 0 {
		t.Fatalf("read that starts the daemon: %+v", r)
	}
	r := e.Opx("read", "op://a/b/c", "op://a/b/d")
	if r.Code != 0 || r.Stdout != fv("op://a/b/c")+"\n"+fv("op://a/b/d")+"\n" {
		t.Fatalf("read through the daemon with other paths: %+v", r)
	}
	want := filepath.Join(other, "op-authd", "policy.json")
	if !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, filepath.Join(e.ConfigDir, "policy.json")) || !strings.Contains(r.Stderr, "opx restart") && !strings.Contains(r.Stderr, "restart") {
		t.Errorf("stderr = %q; want a warning naming the daemon's policy %s, this client's, and how to restart", r.Stderr, want)
	}
	if n := strings.Count(r.Stderr, "warning:"); n != 1 {
		t.Errorf("%d warnings, want 1 per command:\n%s", n, r.Stderr)
	}
	if r := e.Opx("read", "op://a/b/c"); r.Code != 0 || !strings.Contains(r.Stderr, "warning:") {
		t.Errorf("second command: %+v", r)
	}
	e.StopDaemon()
	if r := e.OpxEnv([]string{"OP_AUTHD_BACKEND=fake"}, "read", "op://a/b/c"); r.Code != 0 || r.Stderr != "" {
		t.Errorf("with the daemon on this client's paths: %+v", r)
	}
}

// No path or ref shown to a person carries a raw control character.
func TestErrorsEscapeControlCharacters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	for _, ref := range []string{"op://a/b/\x1b]0;X\a", "\x1b[2Kop://x", "bad://a/\u202eb/c"} {
		r := e.Opx("read", "--", ref)
		if r.Code == 0 {
			t.Errorf("read %q succeeded", ref)
		}
		for _, c := range r.Stderr {
			if (c < 0x20 && c != '\n') || c == 0x7f || c == '\u202e' {
				t.Errorf("stderr of read %q holds %U: %q", ref, c, r.Stderr)
				break
			}
		}
	}
}

// A daemon with a thousand idle connections open still identifies and
// serves another client (file descriptors, goroutines). That no
// identification waits on another's is TestIdentificationDoesNotWaitForAnother
// in the daemon package.
func TestManyIdleConnectionsDoNotBlockOthers(t *testing.T) {
	t.Parallel()
	a, _ := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 1000 {
		c, err := net.Dial("unix", e.Sock)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	if r := e.helper(a, "read", "op://a/b/c"); r.Code != 0 || r.Stdout != fv("op://a/b/c")+"\n" {
		t.Errorf("read with 1,000 idle connections open: %+v", r)
	}
}

// A rule may name a program by its content (exe_sha256) or by a link to
// it; opx policy check decides as the daemon does, and flags a shell.
func TestRulesByContentAndByLink(t *testing.T) {
	t.Parallel()
	a, b := buildHelpers(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	sum := sha256File(t, a)
	link := filepath.Join(filepath.Dir(a), "helper-link")
	if err := os.Symlink(filepath.Base(b), link); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	e.writePolicy(`{"allow": [{"exe_sha256": "` + sum + `", "refs": ["op://Content/*"]}, {"path": "` + link + `", "refs": ["op://Link/*"]}, {"path": "` + sh + `", "refs": ["op://Shell/*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake")
	// helper-b is a copy of helper-a: the same content, so the same hash.
	for _, h := range []string{a, b} {
		if r := e.helper(h, "read", "op://Content/x/y"); r.Code != 0 {
			t.Errorf("%s, allowed by content: %+v", h, r)
		}
	}
	cmd := exec.Command(sh, "-c", `"$0" read op://Content/x/y`, e.Client)
	cmd.Env = e.Environ()
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "forbidden") {
		t.Errorf("sh is not the allowed content but read: %v %s", err, out)
	}
	if r := e.helper(b, "read", "op://Link/x/y"); r.Code != 0 {
		t.Errorf("helper-b through a rule for a link to it: %+v", r)
	}
	if r := e.helper(a, "read", "op://Link/x/y"); r.Code != 1 {
		t.Errorf("helper-a through a rule for a link to helper-b: %+v", r)
	}
	r := e.Opx("policy", "check", "--path", link, "op://Link/x/y", "op://Content/x/y")
	if r.Code != 0 || !strings.Contains(r.Stdout, "ALLOW op://Link/x/y") || !strings.Contains(r.Stdout, "ALLOW op://Content/x/y") {
		t.Errorf("opx policy check --path LINK = %+v", r)
	}
	if !strings.Contains(r.Stdout, "warning: allow[2] names "+sh) || !strings.Contains(r.Stdout, "is a shell") {
		t.Errorf("opx policy check does not flag the rule for sh:\n%s", r.Stdout)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// An opx client whose parent is gone is judged as whatever adopted it (init
// or a subreaper; refused when that cannot be read), never as opx itself, so a rule naming opx (which every
// program can run) does not let an orphaned client read; opx policy check
// flags such a rule.
func TestOrphanedClientIsNotJudgedAsOpx(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	e.writePolicy(`{"allow": [{"path": "` + e.Client + `", "refs": ["*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake", "--enable-audit-log")
	out := filepath.Join(e.Dir, "out")
	cmd := exec.Command("sh", "-c", `"$0" read op://a/b/orphan >"$1" 2>&1 & exit 0`, e.Client, out)
	cmd.Env = e.Environ()
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for i := 0; i < 500; i++ {
		if got, _ = os.ReadFile(out); len(got) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	got, _ = os.ReadFile(out)
	if strings.Contains(string(got), fv("op://a/b/orphan")) || !strings.Contains(string(got), "forbidden") && !strings.Contains(string(got), "cannot be identified") {
		t.Errorf("orphaned opx client under a rule for opx itself: %q", got)
	}
	for _, m := range e.auditLines() {
		if m["event"] == "ACCESS_DECISION" && m["reference"] == "op://a/b/orphan" {
			if req := m["requester"].(map[string]any); req["Path"] == e.Client {
				t.Errorf("the orphaned client was judged as opx itself: %v", m)
			}
		}
	}
	if r := e.Opx("policy", "check", "--path", "/bin/true", "op://a/b/c"); !strings.Contains(r.Stdout, "is opx itself") {
		t.Errorf("opx policy check does not flag a rule for opx:\n%s", r.Stdout)
	}
}
