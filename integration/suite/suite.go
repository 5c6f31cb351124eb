//go:build unix

package suite

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vapi "github.com/hashicorp/vault/api"

	"github.com/opxhq/opx/e2e/harness"
)

// Run runs every integration test for kind ("vault" or "bao"), each with a
// fresh server from newServer.
func Run(t *testing.T, kind string, newServer func(t *testing.T) Server) {
	s := suite{kind: kind, newServer: newServer}
	t.Run("RefForms", s.refForms)
	t.Run("FieldsOfOneSecretOneHTTPRead", s.oneHTTPRead)
	t.Run("TokenFromEnvironment", s.tokenEnv)
	t.Run("UserpassThroughRefs", s.userpass)
	t.Run("ApproleThroughRefs", s.approle)
	t.Run("WrongPassword", s.wrongPassword)
	t.Run("ShortTTLTokenIsRenewed", s.renewed)
	t.Run("RevokedTokenLogsInAgain", s.revoked)
	t.Run("ServerStoppedAndBack", s.serverStopped)
	t.Run("LoginWithTokenRef", s.loginTokenRef)
	t.Run("LoginWithLiteralToken", s.loginLiteral)
	t.Run("MultiWithoutServerSaysHow", s.multiUnconfigured)
	t.Run("Doctor", s.doctor)
	t.Run("ForeignEnvironmentIgnored", s.foreignEnv)
	t.Run("MountRootIsABadRequest", s.mountRoot)
	t.Run("LoginCycleRefused", s.loginCycle)
	t.Run("LeasedSecretOneLeaseRenewedRevoked", s.leases)
	t.Run("DatabaseCredentialsOneLease", s.database)
	t.Run("ShimMatchesTheRealCLI", s.shimMatchesCLI)
	t.Run("ShimChoosesWhoAnswers", s.shimChoosesWhoAnswers)
	t.Run("ShimInANamespace", s.shimNamespace)
	t.Run("ServerChangeDropsCachedValues", s.serverChange)
	t.Run("SecretsLeaveTheDaemonsMemory", s.secretsLeaveMemory)
	t.Run("ReservedMountsRefused", s.reservedMounts)
	t.Run("PolicyRuleNamesItsServer", s.policyServer)
	t.Run("ShimServesAHandStartedDaemon", s.shimServesAHandStartedDaemon)
}

type suite struct {
	kind      string
	newServer func(t *testing.T) Server
}

func (s suite) env(t *testing.T) *Env {
	return NewEnv(t, s.kind, s.newServer(t))
}

// envName is VAULT or BAO.
func (s suite) envName(v string) string { return strings.ToUpper(s.kind) + "_" + v }

// withToken is an env whose daemon gets the root token through the
// environment, with KV mounts: kv1 (version 1) and kv2 (version 2).
func (s suite) withToken(t *testing.T, backend string) *Env {
	e := s.env(t)
	e.Vars[s.envName("ADDR")] = e.Srv.Addr()
	e.Vars[s.envName("TOKEN")] = e.Srv.RootToken()
	e.Mount("kv1", 1)
	e.Mount("kv2", 2)
	e.StartDaemon("", "--backend="+backend)
	return e
}

func (s suite) ref(path string) string { return s.kind + "://" + path }

func (s suite) refForms(t *testing.T) {
	e := s.withToken(t, s.kind)
	e.Write("kv1/app", map[string]any{"user": "alice", "n": 5, "nested": map[string]any{"a": 1}})
	e.Write("kv2/data/app", map[string]any{"data": map[string]any{"password": "old"}})
	e.Write("kv2/data/app", map[string]any{"data": map[string]any{"password": "new pass\nline 2", "port": 5432}})
	for _, tc := range []struct{ ref, want string }{
		{"kv1/app#user", "alice"},
		{"kv1/app#n", "5"},
		{"kv1/app#nested", `{"a":1}`},
		{"kv1/app", `{"n":5,"nested":{"a":1},"user":"alice"}`},
		{"kv2/app#password", "new pass\nline 2"},
		{"kv2/data/app#password", "new pass\nline 2"},
		{"kv2/app?version=1#password", "old"},
		{"kv2/app#port", "5432"},
		{"kv2/app", `{"password":"new pass\nline 2","port":5432}`},
	} {
		if out := e.MustOpx("read", "-n", s.ref(tc.ref)); out != tc.want {
			t.Errorf("opx read %s = %q, want %q", s.ref(tc.ref), out, tc.want)
		}
	}
	r := e.Opx("read", s.ref("kv2/app#missing"))
	if r.Code != 1 || !strings.Contains(r.Stderr, `no field "missing"`) || !strings.Contains(r.Stderr, "not_found") || strings.Contains(r.Stderr, "new pass") {
		t.Errorf("missing field = %+v", r)
	}
	r = e.Opx("read", s.ref("kv2/nothing-here#x"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "not_found") {
		t.Errorf("missing secret = %+v", r)
	}
	r = e.Opx("read", s.ref("kv1/app?version=2#user"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "KV version 2") {
		t.Errorf("version on KV v1 = %+v", r)
	}
}

func (s suite) oneHTTPRead(t *testing.T) {
	e := s.withToken(t, s.kind)
	e.Write("kv2/data/three", map[string]any{"data": map[string]any{"a": "1", "b": "2", "c": "3"}})
	e.Write("kv2/data/shared", map[string]any{"data": map[string]any{"a": "1", "b": "2", "c": "3"}})
	if out := e.MustOpx("read", s.ref("kv2/three#a"), s.ref("kv2/three#b"), s.ref("kv2/three#c")); out != "1\n2\n3\n" {
		t.Fatalf("three fields = %q", out)
	}
	if n := e.ReadsOf("kv2/data/three"); n != 1 {
		t.Errorf("three fields in one read cost %d HTTP reads, want 1", n)
	}
	harness.Parallel(10, func(int) {
		if r := e.Opx("read", s.ref("kv2/shared#a"), s.ref("kv2/shared#b"), s.ref("kv2/shared#c")); r.Stdout != "1\n2\n3\n" {
			t.Errorf("concurrent read = %+v", r)
		}
	})
	if n := e.ReadsOf("kv2/data/shared"); n != 1 {
		t.Errorf("10 processes reading three fields cost %d HTTP reads, want 1", n)
	}
}

func (s suite) tokenEnv(t *testing.T) {
	e := s.withToken(t, "multi")
	e.Write("kv1/x", map[string]any{"k": "v"})
	if out := e.MustOpx("read", s.ref("kv1/x#k"), "op://Private/db/password"); out != "v\ns3cr3t-db-pass\n" {
		t.Errorf("multi read = %q", out)
	}
	if out := e.MustOpx("unlock"); !strings.Contains(out, "unlocked") {
		t.Errorf("unlock = %q", out)
	}
}

// userpassEnv sets up a userpass user and a config whose credentials are
// refs read from the fake 1Password.
func (s suite) userpassEnv(t *testing.T, password string) *Env {
	e := s.env(t)
	e.Mount("kv1", 1)
	e.Write("kv1/app", map[string]any{"k": "from-userpass"})
	if err := e.Root.Sys().EnableAuthWithOptions("userpass", &vapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	e.Write("sys/policies/acl/reader", map[string]any{"policy": `path "kv1/*" { capabilities = ["read"] }`})
	e.Write("auth/userpass/users/alice", map[string]any{"password": "alice-pass-123", "policies": "reader", "token_ttl": "1h"})
	e.WriteFixture(s.kind, map[string]string{"username": "alice", "password": password})
	e.SetConfig(map[string]any{"backend": "multi", s.kind: map[string]any{
		"address": e.Srv.Addr(), "method": "userpass",
		"username_ref": "op://Infra/" + s.kind + "/username", "password_ref": "op://Infra/" + s.kind + "/password"}})
	return e
}

func (s suite) userpass(t *testing.T) {
	e := s.userpassEnv(t, "alice-pass-123")
	e.StartDaemon("")
	if out := e.MustOpx("read", s.ref("kv1/app#k")); out != "from-userpass\n" {
		t.Errorf("read via userpass = %q", out)
	}
}

func (s suite) wrongPassword(t *testing.T) {
	e := s.userpassEnv(t, "wrong")
	e.StartDaemon("", "--lock-on-auth-failure")
	r := e.Opx("read", s.ref("kv1/app#k"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "unauthorized") || !strings.Contains(r.Stderr, "login failed") || !strings.Contains(r.Stderr, "opx login "+s.kind) {
		t.Errorf("read with a wrong password = %+v", r)
	}
	if strings.Contains(r.Stderr, "wrong") && !strings.Contains(r.Stderr, "wrong password") {
		t.Errorf("the error shows the password: %s", r.Stderr)
	}
	// Account locks follow 1Password's sign-in: a failed Vault or OpenBao
	// login locks no account (under multi it would lock the account's
	// op:// reads too), and the next read says the same.
	if st := e.Status(); len(st.Session.LockedAccounts) != 0 {
		t.Errorf("session %+v after a failed %s login: an account locked", st.Session, s.kind)
	}
	if r := e.Opx("read", s.ref("kv1/app#k")); r.Code != 1 || !strings.Contains(r.Stderr, "unauthorized") || !strings.Contains(r.Stderr, "opx login "+s.kind) {
		t.Errorf("read again after the failed login = %+v", r)
	}
	if !strings.Contains(e.DaemonLog(), "login failed") {
		t.Errorf("the failed login is not in the daemon's log")
	}
}

func (s suite) approle(t *testing.T) {
	e := s.env(t)
	e.Mount("kv1", 1)
	e.Write("kv1/app", map[string]any{"k": "from-approle"})
	if err := e.Root.Sys().EnableAuthWithOptions("approle", &vapi.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	e.Write("sys/policies/acl/reader", map[string]any{"policy": `path "kv1/*" { capabilities = ["read"] }`})
	e.Write("auth/approle/role/ci", map[string]any{"token_policies": "reader"})
	e.Write("auth/approle/role/ci/role-id", map[string]any{"role_id": "opx-role-id-0001"})
	e.Write("auth/approle/role/ci/custom-secret-id", map[string]any{"secret_id": "opx-secret-id-0001"})
	e.WriteFixture(s.kind, map[string]string{"role_id": "opx-role-id-0001", "secret_id": "opx-secret-id-0001"})
	r := e.Opx("login", s.kind, "--address", e.Srv.Addr(), "--method", "approle",
		"--role-id-ref", "op://Infra/"+s.kind+"/role_id", "--secret-id-ref", "op://Infra/"+s.kind+"/secret_id")
	if r.Code != 0 {
		t.Fatalf("login approle: %+v", r)
	}
	if out := e.MustOpx("read", s.ref("kv1/app#k")); out != "from-approle\n" {
		t.Errorf("read via approle = %q", out)
	}
}

func (s suite) renewed(t *testing.T) {
	e := s.env(t)
	e.Mount("kv1", 1)
	e.Write("kv1/a", map[string]any{"k": "1"})
	e.Write("kv1/b", map[string]any{"k": "2"})
	tok, err := e.Root.Auth().Token().Create(&vapi.TokenCreateRequest{Policies: []string{"root"}, TTL: "3s", ExplicitMaxTTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	e.Vars[s.envName("ADDR")] = e.Srv.Addr()
	e.Vars[s.envName("TOKEN")] = tok.Auth.ClientToken
	e.StartDaemon("", "--backend="+s.kind, "--verbose")
	if out := e.MustOpx("read", s.ref("kv1/a#k")); out != "1\n" {
		t.Fatalf("first read = %q", out)
	}
	time.Sleep(7 * time.Second) // past the token's 3-second TTL
	if out := e.MustOpx("read", s.ref("kv1/b#k")); out != "2\n" {
		t.Errorf("read after the first TTL = %q", out)
	}
	if !strings.Contains(e.DaemonLog(), "token renewed") {
		t.Errorf("no renewal in the daemon log")
	}
}

func (s suite) revoked(t *testing.T) {
	e := s.userpassEnv(t, "alice-pass-123")
	e.Write("kv1/b", map[string]any{"k": "after revoke"})
	e.StartDaemon("")
	e.MustOpx("read", s.ref("kv1/app#k"))
	if _, err := e.Root.Logical().Write("sys/leases/revoke-prefix/auth/userpass/login", nil); err != nil {
		t.Fatal(err)
	}
	if out := e.MustOpx("read", s.ref("kv1/b#k")); out != "after revoke\n" {
		t.Errorf("read after the token was revoked = %q", out)
	}
	if n := strings.Count(e.DaemonLog(), "logged in"); n != 2 {
		t.Errorf("%d logins, want 2 (the first, and one after the revocation)", n)
	}
}

func (s suite) serverStopped(t *testing.T) {
	e := s.withToken(t, s.kind)
	e.Write("kv1/up", map[string]any{"k": "cached"})
	e.Write("kv1/later", map[string]any{"k": "after restart"})
	e.MustOpx("read", s.ref("kv1/up#k"))
	e.Srv.Stop()
	if out := e.MustOpx("read", s.ref("kv1/up#k")); out != "cached\n" {
		t.Errorf("cached read with the server down = %q", out)
	}
	r := e.Opx("read", s.ref("kv1/later#k"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "backend_error") {
		t.Errorf("uncached read with the server down = %+v", r)
	}
	e.Srv.Start()
	if out := e.MustOpx("read", s.ref("kv1/later#k")); out != "after restart\n" {
		t.Errorf("read after the server came back = %q", out)
	}
}

func (s suite) loginTokenRef(t *testing.T) {
	e := s.env(t)
	e.Mount("kv1", 1)
	e.Write("kv1/app", map[string]any{"k": "via token ref"})
	e.WriteFixture(s.kind, map[string]string{"token": e.Srv.RootToken()})
	r := e.Opx("login", s.kind, "--address", e.Srv.Addr(), "--token-ref", "op://Infra/"+s.kind+"/token")
	if r.Code != 0 || !strings.Contains(r.Stdout, "logged in to "+s.kind) {
		t.Fatalf("login --token-ref: %+v", r)
	}
	cfg := readFile(t, e.configFile())
	var parsed map[string]map[string]any
	json.Unmarshal([]byte(cfg), &parsed)
	if strings.Contains(cfg, e.Srv.RootToken()) || parsed[s.kind]["token_ref"] != "op://Infra/"+s.kind+"/token" {
		t.Errorf("config.json = %s; want the ref, never the token", cfg)
	}
	// No other set-up: the next read starts a daemon that reads kind:// refs.
	if out := e.MustOpx("read", s.ref("kv1/app#k")); out != "via token ref\n" {
		t.Errorf("read after login = %q", out)
	}
}

func (s suite) loginLiteral(t *testing.T) {
	e := s.env(t)
	e.Mount("kv1", 1)
	e.Write("kv1/app", map[string]any{"k": "literal"})
	if r := e.OpxIn("not-a-token\n", "login", s.kind, "--address", e.Srv.Addr()); r.Code != 1 || !strings.Contains(r.Stderr, "rejected the token") {
		t.Errorf("login with a bad token = %+v", r)
	}
	e.StartDaemon("", "--backend=multi")
	if r := e.OpxIn(e.Srv.RootToken()+"\n", "login", s.kind, "--address", e.Srv.Addr()); r.Code != 0 {
		t.Fatalf("login with a token on stdin: %+v", r)
	}
	tokenFile := filepath.Join(e.Vars["XDG_DATA_HOME"], "op-authd", s.kind+"-token")
	if got := strings.TrimSpace(readFile(t, tokenFile)); got != e.Srv.RootToken() {
		t.Errorf("token file holds %q", got)
	}
	if cfg := readFile(t, e.configFile()); strings.Contains(cfg, e.Srv.RootToken()) {
		t.Errorf("config.json holds the token: %s", cfg)
	}
	// The running daemon uses the new login without a restart.
	if out := e.MustOpx("read", s.ref("kv1/app#k")); out != "literal\n" {
		t.Errorf("read after login = %q", out)
	}
}

func (s suite) multiUnconfigured(t *testing.T) {
	e := s.env(t)
	e.StartDaemon("", "--backend=multi")
	r := e.Opx("read", s.ref("kv1/app#k"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "opx login "+s.kind) || !strings.Contains(r.Stderr, s.envName("ADDR")) {
		t.Errorf("vault ref with no server configured = %+v", r)
	}
	if out := e.MustOpx("read", "op://Private/db/password"); out != "s3cr3t-db-pass\n" {
		t.Errorf("1Password still works: %q", out)
	}
}

// doctor checks the server, its clock and the token against the real
// server; a wrong token and a server that is not there are failures that
// name their fixes.
func (s suite) doctor(t *testing.T) {
	e := s.withToken(t, s.kind)
	r := e.Opx("doctor", "--json")
	var rep struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name, Detail, Fix string
			OK                bool
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil || r.Code != 0 || !rep.OK {
		t.Fatalf("doctor against a healthy %s = %+v (%v)", s.kind, r, err)
	}
	found := map[string]string{}
	for _, c := range rep.Checks {
		found[c.Name] = c.Detail
	}
	if d := found[s.kind+" server"]; !strings.Contains(d, e.Srv.Addr()) || !strings.Contains(d, "unsealed") {
		t.Errorf("server check = %q", d)
	}
	if d := found[s.kind+" clock"]; !strings.Contains(d, "clock") {
		t.Errorf("clock check = %q", d)
	}
	if d := found[s.kind+" token"]; !strings.Contains(d, "accepted") {
		t.Errorf("token check = %q", d)
	}

	bad := s.env(t)
	bad.Vars[s.envName("ADDR")] = bad.Srv.Addr()
	bad.Vars[s.envName("TOKEN")] = "hvs.not-a-token"
	bad.StartDaemon("", "--backend="+s.kind)
	r = bad.Opx("doctor")
	if r.Code != 1 || !strings.Contains(r.Stdout, "✗ "+s.kind+" token") || !strings.Contains(r.Stdout, "opx login "+s.kind) {
		t.Errorf("doctor with a wrong token = %+v", r)
	}

	gone := s.env(t)
	gone.Vars[s.envName("ADDR")] = "http://127.0.0.1:1"
	gone.StartDaemon("", "--backend="+s.kind)
	r = gone.Opx("doctor")
	if r.Code != 1 || !strings.Contains(r.Stdout, "✗ "+s.kind+" server: cannot reach http://127.0.0.1:1") || !strings.Contains(r.Stdout, "fix: start the server") {
		t.Errorf("doctor with no server = %+v", r)
	}
}

// foreignEnv: vault/api's own environment (VAULT_AGENT_ADDR and the like)
// reaches no client of opx's, and an OpenBao client reads no VAULT_*
// setting: the token goes only to the server opx's settings name.
func (s suite) foreignEnv(t *testing.T) {
	var hits atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "trap", http.StatusTeapot)
	}))
	defer trap.Close()
	e := s.env(t)
	e.Vars[s.envName("ADDR")] = e.Srv.Addr()
	e.Vars[s.envName("TOKEN")] = e.Srv.RootToken()
	for k, v := range map[string]string{
		"VAULT_AGENT_ADDR":  trap.URL,
		"VAULT_PROXY_ADDR":  trap.URL,
		"VAULT_HEADERS":     `{"X-Opx-Leak": "yes"}`,
		"VAULT_MAX_RETRIES": "not-a-number",
		"VAULT_RATE_LIMIT":  "not-a-rate",
	} {
		e.Vars[k] = v
	}
	if s.kind == "bao" {
		e.Vars["VAULT_ADDR"] = trap.URL
		e.Vars["VAULT_TOKEN"] = "not-the-bao-token"
		e.Vars["VAULT_CACERT"] = "/nonexistent/ca.pem"
		e.Vars["VAULT_NAMESPACE"] = "not-a-namespace"
	}
	e.Mount("kv1", 1)
	e.Write("kv1/app", map[string]any{"k": "v-" + s.kind})
	e.StartDaemon("", "--backend="+s.kind)
	if out := e.MustOpx("read", s.ref("kv1/app#k")); out != "v-"+s.kind+"\n" {
		t.Errorf("read with vault/api's environment set = %q", out)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests went to the address in VAULT_AGENT_ADDR/VAULT_PROXY_ADDR/VAULT_ADDR", n)
	}
}

// loginCycle: a Vault login that reads its token from OpenBao, whose login
// reads its token from Vault, is refused at once with the chain named (it
// used to wait on itself forever, and with it every read and the
// daemon's shutdown); opx login refuses to make one.
func (s suite) loginCycle(t *testing.T) {
	e := s.env(t)
	o := "bao"
	if s.kind == "bao" {
		o = "vault"
	}
	e.SetConfig(map[string]any{
		"backend": "multi",
		s.kind:    map[string]any{"address": e.Srv.Addr(), "token_ref": o + "://kv1/t#token"},
		o:         map[string]any{"address": e.Srv.Addr(), "method": "userpass", "username_ref": "op://Private/db/username", "password_ref": s.kind + "://kv1/p#password"},
	})
	e.StartDaemon("", "--backend=multi")
	done := make(chan harness.Result, 4)
	for range 4 {
		go func() { done <- e.Opx("read", s.ref("kv1/app#k")) }()
	}
	for range 4 {
		select {
		case r := <-done:
			if r.Code != 1 || !strings.Contains(r.Stderr, "bad_request") || !strings.Contains(r.Stderr, "each login needs the other") ||
				!strings.Contains(r.Stderr, "token_ref") || !strings.Contains(r.Stderr, "password_ref") {
				t.Errorf("read through a login cycle = %+v", r)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("a read through a login cycle did not finish (deadlock)")
		}
	}
	stopped := make(chan struct{})
	go func() { e.StopDaemon(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop after reads through a login cycle")
	}
	// opx login refuses to close the loop.
	f := s.env(t)
	f.SetConfig(map[string]any{o: map[string]any{"address": f.Srv.Addr(), "token_ref": s.kind + "://kv1/t#token"}})
	f.StartDaemon("", "--backend=multi")
	r := f.Opx("login", s.kind, "--address", f.Srv.Addr(), "--token-ref", o+"://kv1/t#token")
	if r.Code != 1 || !strings.Contains(r.Stderr, "each login needs the other") {
		t.Errorf("opx login closing a cycle = %+v", r)
	}
}

// leaseIDs lists the server's leases under prefix (as the root token).
func leaseIDs(t *testing.T, e *Env, prefix string) []string {
	t.Helper()
	s, err := e.Root.Logical().List("sys/leases/lookup/" + prefix)
	if err != nil {
		t.Fatalf("list leases: %v", err)
	}
	if s == nil || s.Data == nil {
		return nil
	}
	var ids []string
	keys, _ := s.Data["keys"].([]any)
	for _, k := range keys {
		ids = append(ids, prefix+fmt.Sprint(k))
	}
	return ids
}

// leases: a secret read with a lease is one lease for all its fields, read
// at different times; it is renewed while it is read, past its first
// end; opx lock and opx stop revoke it.
func (s suite) leases(t *testing.T) {
	e := s.env(t)
	e.Vars[s.envName("ADDR")] = e.Srv.Addr()
	e.Vars[s.envName("TOKEN")] = e.Srv.RootToken()
	if err := e.Root.Sys().Mount("leased", &vapi.MountInput{Type: "leased-kv"}); err != nil {
		t.Fatal(err)
	}
	e.Write("leased/app", map[string]any{"username": "u-1", "password": "p-1", "ttl": "4s"})
	e.StartDaemon("", "--backend="+s.kind, "--ttl=1s")
	if out := e.MustOpx("read", s.ref("leased/app#username")); out != "u-1\n" {
		t.Fatalf("username = %q", out)
	}
	ids := leaseIDs(t, e, "leased/app/")
	if len(ids) != 1 {
		t.Fatalf("leases after the first read: %v, want 1", ids)
	}
	// Read every 500 ms for 7 s (past the lease's first end at 4 s): the
	// other field comes from the same response, no new read nor lease is
	// made, and the lease is renewed.
	for range 14 {
		time.Sleep(500 * time.Millisecond)
		if out := e.MustOpx("read", s.ref("leased/app#password")); out != "p-1\n" {
			t.Fatalf("password = %q", out)
		}
	}
	if n := e.ReadsOf("leased/app"); n != 1 {
		t.Errorf("%d reads of leased/app, want 1 (one lease for both fields)", n)
	}
	if got := leaseIDs(t, e, "leased/app/"); len(got) != 1 || got[0] != ids[0] {
		t.Errorf("leases after 7 s of reads: %v, want the first one, renewed (%v)", got, ids)
	}
	st := e.Status()
	leases := st.Leases
	if len(leases) != 1 || !strings.Contains(fmt.Sprintf("%+v", leases[0]), "leased/app") || strings.Contains(fmt.Sprintf("%+v", leases[0]), ids[0]) {
		t.Errorf("status leases = %v, want leased/app with a shortened id", leases)
	}
	// opx lock revokes it.
	e.MustOpx("lock")
	if got := leaseIDs(t, e, "leased/app/"); len(got) != 0 {
		t.Errorf("leases after opx lock: %v, want none", got)
	}
	// And opx stop revokes the one the next read makes.
	e.MustOpx("unlock")
	if out := e.MustOpx("read", s.ref("leased/app#username")); out != "u-1\n" {
		t.Fatalf("username after unlock = %q", out)
	}
	if got := leaseIDs(t, e, "leased/app/"); len(got) != 1 {
		t.Fatalf("leases after unlock and a read: %v", got)
	}
	e.MustOpx("stop")
	if got := leaseIDs(t, e, "leased/app/"); len(got) != 0 {
		t.Errorf("leases after opx stop: %v, want none", got)
	}
}

// database: dynamic credentials from the database secrets engine backed by a
// real PostgreSQL. The username and password, read at different times,
// come from one lease and log in together; no second lease is made while
// the first lasts; the lease (and the role's VALID UNTIL) is renewed while
// read; after opx lock the lease is revoked and the role is gone.
func (s suite) database(t *testing.T) {
	pg := StartPostgres(t)
	e := s.env(t)
	e.Vars[s.envName("ADDR")] = e.Srv.Addr()
	e.Vars[s.envName("TOKEN")] = e.Srv.RootToken()
	if err := e.Root.Sys().Mount("database", &vapi.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Root.Logical().Write("database/config/pg", map[string]any{
		"plugin_name": "postgresql-database-plugin", "connection_url": pg.ConnectionURL(),
		"username": pg.SuperUser, "password": pg.SuperPassword, "allowed_roles": "app", "verify_connection": true,
	}); err != nil {
		t.Fatalf("configure the database engine: %v", err)
	}
	if _, err := e.Root.Logical().Write("database/roles/app", map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "5s", "max_ttl": "2m",
	}); err != nil {
		t.Fatal(err)
	}
	e.StartDaemon("", "--backend="+s.kind, "--ttl=1s")
	user := strings.TrimSpace(e.MustOpx("read", s.ref("database/creds/app#username")))
	time.Sleep(1500 * time.Millisecond) // the daemon's cache let go of it
	pass := strings.TrimSpace(e.MustOpx("read", s.ref("database/creds/app#password")))
	if who, err := pg.Query(user, pass, "select current_user"); err != nil || who != user {
		t.Fatalf("the username and password opx gave do not log in together: %q, %v", who, err)
	}
	ids := leaseIDs(t, e, "database/creds/app/")
	if len(ids) != 1 {
		t.Fatalf("leases after two reads: %v, want 1", ids)
	}
	// Read for 8 s, past the lease's first end at 5 s: the same user,
	// renewed, still able to log in; no second lease.
	for range 16 {
		time.Sleep(500 * time.Millisecond)
		if u := strings.TrimSpace(e.MustOpx("read", s.ref("database/creds/app#username"))); u != user {
			t.Fatalf("username changed to %q while the lease lasts", u)
		}
	}
	if got := leaseIDs(t, e, "database/creds/app/"); len(got) != 1 || got[0] != ids[0] {
		t.Errorf("leases after 8 s of reads: %v, want the first one (%v)", got, ids)
	}
	if _, err := pg.Query(user, pass, "select 1"); err != nil {
		t.Errorf("the user no longer logs in after 8 s of reads (lease not renewed?): %v", err)
	}
	e.MustOpx("lock")
	if got := leaseIDs(t, e, "database/creds/app/"); len(got) != 0 {
		t.Errorf("leases after opx lock: %v, want none", got)
	}
	n, err := pg.Query(pg.SuperUser, pg.SuperPassword, fmt.Sprintf("select count(*) from pg_roles where rolname = '%s'", user))
	if err != nil || n != "0" {
		t.Errorf("the role %s after opx lock: count %q, %v; want it dropped", user, n, err)
	}
}

// mountRoot: a ref to a KV version 2 mount itself names no secret.
func (s suite) mountRoot(t *testing.T) {
	e := s.withToken(t, s.kind)
	r := e.Opx("read", s.ref("kv2#k"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "bad_request") || !strings.Contains(r.Stderr, "mount") {
		t.Errorf("read of a KV v2 mount's root = %+v, want bad_request naming the mount", r)
	}
	if n := e.ReadsOf("kv2/data/kv2"); n != 0 {
		t.Errorf("%d reads of kv2/data/kv2", n)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}
