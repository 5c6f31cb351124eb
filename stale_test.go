package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
)

// setTrouble makes the fake op's servers misbehave (see testdata/fakeop):
// "offline" or "ratelimit" with content, "" to end it.
func (e *testEnv) setTrouble(kind, content string) {
	e.t.Helper()
	for _, k := range []string{"offline", "ratelimit"} {
		os.Remove(filepath.Join(e.vars["FAKEOP_STATE"], k))
	}
	if kind != "" {
		if err := os.WriteFile(filepath.Join(e.vars["FAKEOP_STATE"], kind), []byte(content), 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
}

// readResults reads refs through POST /v1/reads, for the answer's fields.
func (e *testEnv) readResults(refs ...string) (map[string]api.ReadResult, map[string]api.Error) {
	e.t.Helper()
	var res struct {
		Results map[string]api.ReadResult `json:"results"`
		Errors  map[string]api.Error      `json:"errors"`
	}
	body, _ := json.Marshal(api.ReadsRequest{Refs: refs})
	hc, token := e.rawClient()
	status, out := request(e.t, hc, token, "POST", "/v1/reads", strings.NewReader(string(body)))
	if status != 200 || json.Unmarshal([]byte(out), &res) != nil {
		e.t.Fatalf("POST /v1/reads: %d %s", status, out)
	}
	return res.Results, res.Errors
}

// When op cannot reach 1Password, a value that expired less than
// --stale-if-error ago is served, marked stale, with a warning; past the
// window, the error; never after a lock; never a one-time password.
func TestStaleIfError(t *testing.T) {
	e := newOPEnv(t)
	e.signIn("my")
	e.startDaemon("", "--ttl=1s", "--stale-if-error=3s")
	const ref = "op://Private/db/password"
	if out := e.mustOpx("read", ref); out != "s3cr3t-db-pass\n" {
		t.Fatalf("first read = %q", out)
	}
	time.Sleep(1200 * time.Millisecond) // expired, within the stale window
	e.setTrouble("offline", "")
	r := e.opx("read", ref)
	if r.code != 0 || r.stdout != "s3cr3t-db-pass\n" || !strings.Contains(r.stderr, "stale") || !strings.Contains(r.stderr, ref) {
		t.Fatalf("read while offline, within the window = %+v, want the stale value and a warning", r)
	}
	res, _ := e.readResults(ref)
	if got := res[ref]; !got.Stale || got.ExpiresInSeconds != 0 {
		t.Errorf("answer while offline = %+v, want stale: true", got)
	}
	env := e.opx("resolve", "DB="+ref)
	if env.code != 0 || !strings.Contains(env.stdout, "DB=s3cr3t-db-pass") || !strings.Contains(env.stderr, "DB gets a stale value") {
		t.Errorf("resolve while offline = %+v", env)
	}
	if st := e.status(); st.StaleServed == 0 || st.Settings.StaleIfErrorSeconds != 3 {
		t.Errorf("status stale_served %d, stale_if_error_seconds %v", st.StaleServed, st.Settings.StaleIfErrorSeconds)
	}
	// A lock wipes the cache: nothing stale after it.
	e.mustOpx("lock")
	e.setTrouble("", "")
	e.mustOpx("unlock")
	e.setTrouble("offline", "")
	if r := e.opx("read", ref); r.code != 1 || !strings.Contains(r.stderr, "no such host") {
		t.Errorf("read after a lock while offline = %+v, want the backend's error", r)
	}
	// Past the window: the error.
	e.setTrouble("", "")
	e.mustOpx("read", ref)
	e.setTrouble("offline", "")
	time.Sleep(4500 * time.Millisecond) // 1 s TTL + 3 s window, and some
	if r := e.opx("read", ref); r.code != 1 || !strings.Contains(r.stderr, "backend_error") {
		t.Errorf("read past the stale window = %+v, want the error", r)
	}
}
