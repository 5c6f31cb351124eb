package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/internal/testdir"
	"github.com/opxhq/opx/policy"
	"github.com/opxhq/opx/session"
)

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// newTestServer returns the daemon's handler over a fake backend.
func newTestServer(t testing.TB, delay time.Duration) (*server, http.Handler) {
	t.Helper()
	return newTestServerSized(t, delay, 100)
}

// newTestServerSized is newTestServer with a cache of capacity entries.
func newTestServerSized(t testing.TB, delay time.Duration, capacity int) (*server, http.Handler) {
	t.Helper()
	be := backend.NewFake(delay)
	s := &server{
		cfg:      Config{TTL: time.Minute, CacheSize: capacity},
		info:     BuildInfo{Version: "test"},
		log:      zerolog.Nop(),
		token:    []byte(testToken),
		backend:  be,
		started:  time.Now(),
		accounts: map[string]bool{},
		stopping: make(chan struct{}),
	}
	s.euid = os.Geteuid()
	pol, err := policy.Load(filepath.Join(testdir.New(t), "policy.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.policy = pol
	s.asker = newAsker(s, 5*time.Second)
	s.session = session.New(true, time.Hour, s.onLock)
	s.core = newCore(coreConfig{TTL: time.Minute, Capacity: capacity, BackendTimeout: 5 * time.Second, MaxConcurrent: 4}, be, s.session, s.log)
	t.Cleanup(func() { s.core.close(); s.session.Close() })
	self := &Peer{PID: os.Getpid(), UID: os.Geteuid(), GID: os.Getegid(), Requester: ProcInfo{PID: os.Getpid()}}
	routes := s.routes()
	return s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		routes.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerKey{}, self)))
	})
}

func do(t testing.TB, h http.Handler, method, path, body string, token string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func errorCode(t testing.TB, body []byte) string {
	t.Helper()
	var eb api.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error == nil {
		t.Fatalf("body %s is not an error body: %v", body, err)
	}
	if eb.Error.Message == "" {
		t.Errorf("error %s has no message", eb.Error.Code)
	}
	return eb.Error.Code
}

func TestHandlerErrors(t *testing.T) {
	_, h := newTestServer(t, 0)
	many := make([]string, api.MaxRefs+1)
	for i := range many {
		many[i] = fmt.Sprintf("op://v/i/%d", i)
	}
	manyJSON, _ := json.Marshal(api.ReadsRequest{Refs: many})
	huge := `{"ref":"op://v/i/` + strings.Repeat("a", api.MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name, method, path, body, token string
		status                          int
		code                            string
	}{
		{"no token", "POST", "/v1/read", `{"ref":"op://v/i/f"}`, "", 401, api.CodeUnauthorized},
		{"wrong token", "POST", "/v1/read", `{"ref":"op://v/i/f"}`, strings.Repeat("0", 64), 401, api.CodeUnauthorized},
		{"unknown path", "GET", "/v1/nope", "", testToken, 404, api.CodeNotFound},
		{"wrong method", "GET", "/v1/read", "", testToken, 405, api.CodeMethod},
		{"malformed JSON", "POST", "/v1/read", `{"ref":`, testToken, 400, api.CodeBadRequest},
		{"not an object", "POST", "/v1/read", `[1,2]`, testToken, 400, api.CodeBadRequest},
		{"empty body", "POST", "/v1/read", ``, testToken, 400, api.CodeBadRequest},
		{"unknown field", "POST", "/v1/read", `{"reff":"op://v/i/f"}`, testToken, 400, api.CodeBadRequest},
		{"trailing data", "POST", "/v1/read", `{"ref":"op://v/i/f"} {}`, testToken, 400, api.CodeBadRequest},
		{"oversized body", "POST", "/v1/read", huge, testToken, 413, api.CodeTooLarge},
		{"too many refs", "POST", "/v1/reads", string(manyJSON), testToken, 413, api.CodeTooLarge},
		{"leading dash", "POST", "/v1/read", `{"ref":"-op://v/i/f"}`, testToken, 400, api.CodeBadRequest},
		{"unknown scheme", "POST", "/v1/read", `{"ref":"ftp://v/i/f"}`, testToken, 400, api.CodeBadRequest},
		{"dash account", "POST", "/v1/read", `{"ref":"op://v/i/f","account":"--help"}`, testToken, 400, api.CodeBadRequest},
		{"empty refs", "POST", "/v1/reads", `{"refs":[]}`, testToken, 400, api.CodeBadRequest},
		{"empty env", "POST", "/v1/resolve", `{"env":{}}`, testToken, 400, api.CodeBadRequest},
		{"bad env name", "POST", "/v1/resolve", `{"env":{"1X":"op://v/i/f"}}`, testToken, 400, api.CodeBadRequest},
		{"env with a bad ref", "POST", "/v1/resolve", `{"env":{"A":"op://v/i/f","B":"nope"}}`, testToken, 400, api.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, h, tc.method, tc.path, tc.body, tc.token)
			if status != tc.status {
				t.Errorf("status = %d, want %d (%s)", status, tc.status, body)
			}
			if code := errorCode(t, body); code != tc.code {
				t.Errorf("code = %q, want %q", code, tc.code)
			}
		})
	}
	// After all that, the daemon still serves.
	status, body := do(t, h, "POST", "/v1/read", `{"ref":"op://v/i/f"}`, testToken)
	if status != 200 {
		t.Fatalf("read after bad input: %d %s", status, body)
	}
}

func TestHandlerReadsPerRefErrors(t *testing.T) {
	_, h := newTestServer(t, 0)
	status, body := do(t, h, "POST", "/v1/reads", `{"refs":["op://v/i/a","-bad","op://v/i/a","vault://kv/x#k"]}`, testToken)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var res api.ReadsResponse
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 2 || len(res.Errors) != 1 || res.Errors["-bad"] == nil {
		t.Fatalf("results %v errors %v; want 2 results and an error for -bad", res.Results, res.Errors)
	}
	if got := string(res.Results["vault://kv/x#k"].Value); got != backend.FakeValue("", "vault://kv/x#k") {
		t.Errorf("value = %q", got)
	}
}

func TestHandlerResolveNamesEveryFailure(t *testing.T) {
	_, h := newTestServer(t, 0)
	status, body := do(t, h, "POST", "/v1/resolve", `{"env":{"GOOD":"op://v/i/f","BAD1":"x","BAD2":"-y"}}`, testToken)
	if status != 400 {
		t.Fatalf("status %d: %s", status, body)
	}
	var eb api.ErrorBody
	json.Unmarshal(body, &eb)
	for _, name := range []string{"BAD1", "BAD2"} {
		if !strings.Contains(eb.Error.Message, name) {
			t.Errorf("message %q does not name %s", eb.Error.Message, name)
		}
	}
	if strings.Contains(eb.Error.Message, "GOOD") {
		t.Errorf("message %q names a variable that did not fail", eb.Error.Message)
	}
}

func TestHandlerSessionLockUnlock(t *testing.T) {
	s, h := newTestServer(t, 0)
	do(t, h, "POST", "/v1/read", `{"ref":"op://v/i/f"}`, testToken)
	status, body := do(t, h, "POST", "/v1/session/lock", `{}`, testToken)
	var sr api.SessionResponse
	json.Unmarshal(body, &sr)
	if status != 200 || !sr.Success || sr.State != api.StateLocked {
		t.Fatalf("lock = %d %s", status, body)
	}
	if s.core.cache.Len() != 0 {
		t.Error("cache not wiped by lock")
	}
	status, body = do(t, h, "POST", "/v1/read", `{"ref":"op://v/i/f"}`, testToken)
	if status != 423 || errorCode(t, body) != api.CodeSessionLocked {
		t.Errorf("read while locked = %d %s", status, body)
	}
	status, body = do(t, h, "POST", "/v1/session/unlock", `{}`, testToken)
	json.Unmarshal(body, &sr)
	if status != 200 || !sr.Success || sr.State != api.StateUnlocked {
		t.Fatalf("unlock = %d %s", status, body)
	}
	if status, body := do(t, h, "POST", "/v1/read", `{"ref":"op://v/i/f"}`, testToken); status != 200 {
		t.Errorf("read after unlock = %d %s", status, body)
	}
}

func TestHandlerStatusFields(t *testing.T) {
	_, h := newTestServer(t, 0)
	do(t, h, "POST", "/v1/read", `{"ref":"op://v/i/f"}`, testToken)
	do(t, h, "POST", "/v1/read", `{"ref":"op://v/i/f"}`, testToken)
	status, body := do(t, h, "GET", "/v1/status", "", testToken)
	if status != 200 {
		t.Fatalf("status = %d %s", status, body)
	}
	var raw map[string]any
	json.Unmarshal(body, &raw)
	for _, k := range []string{"version", "pid", "backend", "socket_path", "uptime_seconds", "ttl_seconds", "cache_size",
		"hits", "misses", "coalesced", "backend_calls", "in_flight", "session", "policy"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status has no %q", k)
		}
	}
	var st api.Status
	json.Unmarshal(body, &st)
	if st.Hits != 1 || st.Misses != 1 || st.BackendCalls != 1 || st.CacheSize != 1 {
		t.Errorf("counters = %+v, want 1 hit, 1 miss, 1 call, 1 cached", st)
	}
}

// FuzzHandlers sends arbitrary bodies to every endpoint through the real
// handler: the answer is always JSON with a known code, and never a panic.
func FuzzHandlers(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "testdata", "requests", "*.json"))
	for _, file := range seeds {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), b)
		f.Add(uint8(1), b)
		f.Add(uint8(2), b)
	}
	paths := []string{"/v1/read", "/v1/reads", "/v1/resolve", "/v1/session/lock", "/v1/session/unlock"}
	_, h := newTestServer(f, 0)
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s answered non-JSON %q", path, rec.Body.Bytes())
		}
		if rec.Code != 200 {
			var eb api.ErrorBody
			if json.Unmarshal(rec.Body.Bytes(), &eb) != nil || eb.Error == nil || api.HTTPStatus(eb.Error.Code) != rec.Code {
				t.Fatalf("%s answered %d with %s", path, rec.Code, rec.Body.Bytes())
			}
		}
		if path == "/v1/session/lock" {
			do(t, h, "POST", "/v1/session/unlock", `{}`, testToken)
		}
	})
}
