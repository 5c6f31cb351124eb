//go:build unix

package suite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opxhq/opx/e2e/harness"
)

// Access control against a real server (issue 21).

// reservedMounts: refs under auth/, cubbyhole/, identity/ and sys/ answer
// about the token that reads them; with a rule for every ref they returned
// the daemon's own token (lookup-self). They are refused before any
// request leaves; a path under a namespace the server serves by path
// (OpenBao: team/auth/...) is refused by the mount's type.
func (s suite) reservedMounts(t *testing.T) {
	e := s.withToken(t, s.kind)
	e.Write("kv1/ok", map[string]any{"k": "v"})
	if out := e.MustOpx("read", "-n", s.ref("kv1/ok#k")); out != "v" {
		t.Fatalf("read before = %q", out) // the daemon has logged in
	}
	from := e.auditSize()
	refs := []string{"auth/token/lookup-self#id", "auth/token/lookup-self?response=logical", "cubbyhole/x#y",
		"identity/oidc/token/app#token", "sys/wrapping/lookup", "sys/mounts"}
	for _, p := range refs {
		r := e.Opx("read", s.ref(p))
		if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "bad_request") || !strings.Contains(r.Stderr, s.kind+" read ") ||
			strings.Contains(r.Stderr, e.Srv.RootToken()) {
			t.Errorf("opx read %s = %+v; want bad_request naming %s read", s.ref(p), r, s.kind)
		}
	}
	e.responsesAfter(from, func(path, op string) {
		t.Errorf("a refused reserved ref made a request: %s %s", op, path)
	})

	// A namespace the server serves by path puts its reserved mounts one
	// segment down.
	if _, err := e.Root.Logical().Write("sys/namespaces/team", nil); err != nil {
		t.Logf("%s has no namespaces (%v): the namespaced path is not tried", s.kind, err)
		return
	}
	for _, p := range []string{"team/auth/token/lookup-self#id", "team/auth/token/lookup-self?response=logical", "team/cubbyhole/x?response=logical"} {
		r := e.Opx("read", s.ref(p))
		if r.Code != 1 || r.Stdout != "" || strings.Contains(r.Stdout+r.Stderr, e.Srv.RootToken()) || !strings.Contains(r.Stderr, "bad_request") {
			t.Errorf("opx read %s = %+v; want bad_request", s.ref(p), r)
		}
	}
}

// policyServer: a rule may name the server its vault:// or bao:// refs are
// read from; against another server it allows nothing.
func (s suite) policyServer(t *testing.T) {
	e := s.env(t)
	e.Vars[s.envName("ADDR")] = e.Srv.Addr()
	e.Vars[s.envName("TOKEN")] = e.Srv.RootToken()
	e.Mount("kv1", 1)
	e.Write("kv1/app", map[string]any{"k": "v"})
	policy := filepath.Join(e.ConfigDir, "policy.json")
	os.MkdirAll(filepath.Dir(policy), 0o700)
	write := func(addr string) {
		t.Helper()
		body := `{"allow": [{"refs": ["` + s.kind + `://kv1/*"], "server": {"address": "` + addr + `"}}], "default_deny": true}`
		if err := os.WriteFile(policy, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(e.Srv.Addr() + "/")
	e.StartDaemon("", "--backend="+s.kind)
	if out := e.MustOpx("read", "-n", s.ref("kv1/app#k")); out != "v" {
		t.Errorf("read from the rule's server = %q", out)
	}
	write("https://another.example:8200")
	r := e.Opx("read", "--no-cache", s.ref("kv1/app#k"))
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "forbidden") || !strings.Contains(r.Stderr, "another.example") {
		t.Errorf("read under a rule for another server = %+v; want forbidden naming the rule's server", r)
	}
}

// shimServesAHandStartedDaemon: the README's way of starting a daemon by
// hand (`opx daemon --backend=multi`, VAULT_ADDR and VAULT_TOKEN set), from
// a shell that chose no backend: the shim serves `kv get`, and the real
// CLI runs no more (issue 26: every call asked the daemon and then ran the
// CLI anyway, two requests each, and opx read warned about the backend).
func (s suite) shimServesAHandStartedDaemon(t *testing.T) {
	e := s.env(t)
	e.Vars[s.envName("ADDR")] = e.Srv.Addr()
	e.Vars[s.envName("TOKEN")] = e.Srv.RootToken()
	e.Mount("kv2", 2)
	e.Write("kv2/data/app", map[string]any{"data": map[string]any{"user": "alice"}})
	e.StartDaemonByHand("--backend=multi")
	cli := RealCLI(t, s.kind)
	realDir := linkDir(t, e.Dir, "real", s.kind, cli)
	shimDir := linkDir(t, e.Dir, "shims", s.kind, harness.Bins().Opx)
	path := []string{"PATH=" + shimDir + ":" + realDir}
	shim := filepath.Join(shimDir, s.kind)
	if r := e.Run(shim, path, "kv", "get", "-field=user", "kv2/app"); r.Code != 0 || r.Stdout != "alice" {
		t.Fatalf("the first kv get through the shim = %+v", r)
	}
	from := e.auditSize()
	for range 10 {
		if r := e.Run(shim, path, "kv", "get", "-field=user", "kv2/app"); r.Code != 0 || r.Stdout != "alice" || r.Stderr != "" {
			t.Fatalf("kv get through the shim = %+v", r)
		}
	}
	if n, _ := e.requestsAfter(from); n != 0 {
		t.Errorf("10 cached kv get calls through the shim made %d requests to the server; want 0 (the real CLI makes 2 each)", n)
	}
	if r := e.Opx("read", s.ref("kv2/app#user")); r.Code != 0 || r.Stdout != "alice\n" || r.Stderr != "" {
		t.Errorf("opx read against the daemon started by hand = %+v; want no warning", r)
	}
}
