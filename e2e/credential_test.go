//go:build unix

package e2e

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/opxhq/opx/e2e/harness"
)

// The daemon's own Vault token never goes to an address a request names
// (issue 21, item 1): a program the policy allows one unrelated ref asked
// POST /v1/backend/verify for a token login at its own listener, with no
// token, and the daemon sent its VAULT_TOKEN there. Now the request is
// refused unless it brings its credential, and the audit record names the
// server and method tried.
func TestVerifyNeverSendsTheDaemonsToken(t *testing.T) {
	t.Parallel()
	a, _ := buildHelpers(t)
	var mu sync.Mutex
	var seen []string // X-Vault-Token values the listener received
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Vault-Token"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data":{"display_name":"stolen"}}`))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := "http://" + ln.Addr().String()

	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	const daemonToken = "hvs.the-daemons-own-token"
	e.Vars["VAULT_TOKEN"] = daemonToken
	e.Vars["VAULT_ADDR"] = "http://127.0.0.1:1" // the daemon's own server: not the attacker's
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["op://Dev/app/token"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake", "--enable-audit-log")

	for _, body := range []string{
		`{"kind":"vault","config":{"address":"` + addr + `","method":"token"}}`,
		`{"kind":"bao","config":{"address":"` + addr + `","namespace":"team","method":"token"}}`,
	} {
		r := e.helper(a, "post", "/v1/backend/verify", body)
		if !strings.HasPrefix(r.Stdout, "400 ") || !strings.Contains(r.Stdout, "no token") {
			t.Errorf("verify without a token = %+v; want 400 naming the missing token", r)
		}
	}
	// A token_ref is read as a read of the requester: this one is not
	// allowed, so nothing is sent either.
	r := e.helper(a, "post", "/v1/backend/verify", `{"kind":"vault","config":{"address":"`+addr+`","method":"token","token_ref":"vault://secret/app#key"}}`)
	if !strings.HasPrefix(r.Stdout, "403 ") {
		t.Errorf("verify with a token_ref the policy refuses = %+v; want 403", r)
	}
	// The request's own token is what it may use.
	r = e.helper(a, "post", "/v1/backend/verify", `{"kind":"vault","config":{"address":"`+addr+`","method":"token"},"token":"callers-own"}`)
	if !strings.HasPrefix(r.Stdout, "200 ") || !strings.Contains(r.Stdout, "stolen") {
		t.Errorf("verify with the caller's token = %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, tok := range seen {
		if tok == daemonToken {
			t.Fatalf("the listener at %s received the daemon's own token", addr)
		}
		if tok != "callers-own" {
			t.Errorf("the listener received token %q; want only the caller's", tok)
		}
	}
	var logins []map[string]any
	for _, m := range e.auditLines() {
		if m["action"] == "verify" {
			if l, ok := m["login"].(map[string]any); ok {
				logins = append(logins, l)
			}
		}
	}
	if len(logins) != 4 || logins[0]["kind"] != "vault" || logins[0]["address"] != addr || logins[0]["method"] != "token" ||
		logins[1]["kind"] != "bao" || logins[1]["namespace"] != "team" {
		t.Errorf("audit records of the verifies name %v; want kind, address, namespace and method of each", logins)
	}
}

// Refs under the mounts Vault and OpenBao reserve for the token that reads
// them are refused before any request leaves (issue 21, item 2): with a
// rule for vault://* they returned the daemon's own token.
func TestReservedMountsAreBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.writePolicy(`{"allow": [{"refs": ["*"]}], "default_deny": true}`)
	e.StartDaemon("", "--backend=fake")
	for _, ref := range []string{"vault://auth/token/lookup-self#id", "bao://cubbyhole/x#y", "vault://identity/oidc/token/app#token", "bao://sys/wrapping/lookup"} {
		r := e.Opx("read", ref)
		cli, _, _ := strings.Cut(ref, "://")
		if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "bad_request") || !strings.Contains(r.Stderr, cli+" read ") {
			t.Errorf("opx read %s = %+v; want bad_request naming %s read", ref, r, cli)
		}
	}
	hc, tok := e.RawClient()
	code, body := harness.Request(t, hc, tok, "POST", "/v1/reads", strings.NewReader(`{"refs":["vault://auth/token/lookup-self#id","vault://sys/wrapping/lookup"]}`))
	if code != 200 || strings.Count(body, `"bad_request"`) != 2 || !strings.Contains(body, "reserves") {
		t.Errorf("POST /v1/reads of reserved refs = %d %s; want both refused as bad_request", code, body)
	}
	if st := e.Status(); st.BackendCalls != 0 {
		t.Errorf("backend calls after refused refs = %d, want 0", st.BackendCalls)
	}
}
