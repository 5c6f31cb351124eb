//go:build unix

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/e2e/harness"
)

// setTrouble makes the fake op's servers misbehave (see testdata/fakeop):
// "offline" or "ratelimit" with content, "" to end it.
func (e *testEnv) setTrouble(kind, content string) {
	e.T.Helper()
	for _, k := range []string{"offline", "ratelimit"} {
		os.Remove(filepath.Join(e.Vars["FAKEOP_STATE"], k))
	}
	if kind != "" {
		if err := os.WriteFile(filepath.Join(e.Vars["FAKEOP_STATE"], kind), []byte(content), 0o600); err != nil {
			e.T.Fatal(err)
		}
	}
}

// readResults reads refs through POST /v1/reads, for the answer's fields.
func (e *testEnv) readResults(refs ...string) (map[string]api.ReadResult, map[string]api.Error) {
	e.T.Helper()
	var res struct {
		Results map[string]api.ReadResult `json:"results"`
		Errors  map[string]api.Error      `json:"errors"`
	}
	body, _ := json.Marshal(api.ReadsRequest{Refs: refs})
	hc, token := e.RawClient()
	status, out := harness.Request(e.T, hc, token, "POST", "/v1/reads", strings.NewReader(string(body)))
	if status != 200 || json.Unmarshal([]byte(out), &res) != nil {
		e.T.Fatalf("POST /v1/reads: %d %s", status, out)
	}
	return res.Results, res.Errors
}

// When op cannot reach 1Password, a value that expired less than
// --stale-if-error ago is served, marked stale, with a warning; past the
// window, the error; never after a lock; never a one-time password.
func TestStaleIfError(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	// The window is long enough for the four commands below to run inside
	// it on a loaded machine; its end is waited for, not slept past.
	e.StartDaemon("", "--ttl=1s", "--stale-if-error=15s")
	const ref = "op://Private/db/password"
	if out := e.MustOpx("read", ref); out != "s3cr3t-db-pass\n" {
		t.Fatalf("first read = %q", out)
	}
	time.Sleep(1200 * time.Millisecond) // expired, within the stale window
	e.setTrouble("offline", "")
	r := e.Opx("read", ref)
	if r.Code != 0 || r.Stdout != "s3cr3t-db-pass\n" || !strings.Contains(r.Stderr, "stale") || !strings.Contains(r.Stderr, ref) {
		t.Fatalf("read while offline, within the window = %+v, want the stale value and a warning", r)
	}
	res, _ := e.readResults(ref)
	if got := res[ref]; !got.Stale || got.ExpiresInSeconds != 0 {
		t.Errorf("answer while offline = %+v, want stale: true", got)
	}
	env := e.Opx("resolve", "DB="+ref)
	if env.Code != 0 || !strings.Contains(env.Stdout, "DB=s3cr3t-db-pass") || !strings.Contains(env.Stderr, "DB gets a stale value") {
		t.Errorf("resolve while offline = %+v", env)
	}
	if st := e.Status(); st.StaleServed == 0 || st.Settings.StaleIfErrorSeconds != 15 {
		t.Errorf("status stale_served %d, stale_if_error_seconds %v", st.StaleServed, st.Settings.StaleIfErrorSeconds)
	}
	// A lock wipes the cache: nothing stale after it.
	e.MustOpx("lock")
	e.setTrouble("", "")
	e.MustOpx("unlock")
	e.setTrouble("offline", "")
	if r := e.Opx("read", ref); r.Code != 1 || !strings.Contains(r.Stderr, "no such host") {
		t.Errorf("read after a lock while offline = %+v, want the backend's error", r)
	}
	// Past the window: the error. The reads answer (fresh, then stale)
	// until 1 s TTL + 15 s window after the value was cached, then fail:
	// the end is waited for, not slept past.
	e.setTrouble("", "")
	cached := time.Now() // the value is cached after this
	e.MustOpx("read", ref)
	e.setTrouble("offline", "")
	r = e.Opx("read", ref)
	for r.Code == 0 {
		if time.Since(cached) > time.Minute {
			t.Fatalf("read a minute past the 15 s stale window = %+v, want the error", r)
		}
		time.Sleep(500 * time.Millisecond)
		r = e.Opx("read", ref)
	}
	if r.Code != 1 || !strings.Contains(r.Stderr, "backend_error") {
		t.Errorf("read past the stale window = %+v, want the error", r)
	}
}
