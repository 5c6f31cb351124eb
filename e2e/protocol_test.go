//go:build unix

package e2e

// The wire as an attacker or a broken client uses it: garbage, oversized
// bodies, a wrong token.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/e2e/harness"
)

func TestBadInputOverTheSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	hc, token := e.RawClient()
	hundredK := `{"refs":[` + strings.Repeat(`"op://v/i/f",`, 100000) + `"op://v/i/f"]}`
	over := `{"refs":[` + strings.Repeat(`"op://v/i/f",`, api.MaxRefs) + `"op://v/i/f"]}`
	for _, tc := range []struct {
		name, token, path, body string
		status                  int
		code                    string
	}{
		{"no token", "", "/v1/read", `{"ref":"op://v/i/f"}`, 401, "unauthorized"},
		{"wrong token", strings.Repeat("a", 64), "/v1/read", `{"ref":"op://v/i/f"}`, 401, "unauthorized"},
		{"malformed JSON", token, "/v1/read", `{"ref": op://`, 400, "bad_request"},
		{"leading dash", token, "/v1/read", `{"ref":"-op://v/i/f"}`, 400, "bad_request"},
		{"unknown scheme", token, "/v1/read", `{"ref":"gopher://v/i/f"}`, 400, "bad_request"},
		{"100k refs", token, "/v1/reads", hundredK, 413, "too_large"},
		{"more refs than the cap", token, "/v1/reads", over, 413, "too_large"},
		{"oversized body", token, "/v1/read", `{"ref":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := harness.Request(t, hc, tc.token, "POST", tc.path, strings.NewReader(tc.body))
			var eb api.ErrorBody
			if status != tc.status || json.Unmarshal([]byte(body), &eb) != nil || eb.Error == nil || eb.Error.Code != tc.code {
				t.Errorf("status %d body %.200s; want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	// The daemon still serves.
	if r := e.Opx("read", "op://v/i/f"); r.Code != 0 || r.Stdout != fv("op://v/i/f")+"\n" {
		t.Errorf("read after bad input = %+v", r)
	}
}

func TestWrongTokenFileGivesAHint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	os.WriteFile(filepath.Join(e.DataDir, "token"), []byte(strings.Repeat("b", 64)), 0o600)
	r := e.Opx("read", "op://v/i/f")
	if r.Code != 1 || !strings.Contains(r.Stderr, "invalid bearer token") || !strings.Contains(r.Stderr, "opx: hint:") {
		t.Errorf("read with a stale token = %+v", r)
	}
}
