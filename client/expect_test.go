package client

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
)

// What the client weighs in the daemon's settings: what changes the answer
// for the request's schemes, not every setting (issue 26).
func TestExpectationDiffs(t *testing.T) {
	header := func(kv ...string) string {
		v := url.Values{"ttl": {"2m0s"}, "version": {"v1"}, "op_path": {""}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	plain := &Expectation{Backend: "opcli", TTL: 2 * time.Minute, Version: "v1"}
	chosenFake := &Expectation{Backend: "fake", BackendChosen: true, TTL: 2 * time.Minute, Version: "v1"}
	withOP := &Expectation{Backend: "opcli", TTL: 2 * time.Minute, Version: "v1", OPPath: "/opt/op", OPPathChosen: true}
	vaultAt := func(addr string) *Expectation {
		return &Expectation{Backend: "opcli", TTL: 2 * time.Minute, Version: "v1",
			Server: func(s string) (api.Server, bool) { return api.Server{Address: addr}, s == "vault" }}
	}
	for _, tc := range []struct {
		name    string
		e       *Expectation
		header  string
		schemes []string
		answer  string // a part of the one answer difference, "" for none
		notes   int
	}{
		{"multi by hand, default caller", plain, header("backend", "multi"), []string{"op"}, "", 0},
		{"multi, a vault read", plain, header("backend", "multi"), []string{"vault"}, "", 0},
		{"fake daemon, real caller", plain, header("backend", "fake"), nil, "made-up values", 0},
		{"real daemon, fake caller", chosenFake, header("backend", "multi"), []string{"op"}, "serves real values", 0},
		{"fake for fake", chosenFake, header("backend", "fake"), []string{"op"}, "", 0},
		{"vault daemon, op read", plain, header("backend", "vault"), []string{"op"}, "does not read op://", 0},
		{"TTL and version only", plain, header("backend", "opcli", "ttl", "7s", "version", "v2"), []string{"op"}, "", 2},
		{"op chosen, another op", withOP, header("backend", "opcli", "op_path", "/usr/bin/op"), []string{"op"}, "the op program /usr/bin/op", 0},
		{"op not chosen, daemon's own op", plain, header("backend", "opcli", "op_path", "/usr/bin/op"), []string{"op"}, "", 0},
		{"another vault server", vaultAt("https://a:8200"), header("backend", "multi", "vault_address", "https://b:8200"), []string{"vault"}, "vault:// refs read from https://b:8200", 0},
		{"the same vault server", vaultAt("https://a:8200/"), header("backend", "multi", "vault_address", "https://a:8200"), []string{"vault"}, "", 0},
		{"another vault server, op read", vaultAt("https://a:8200"), header("backend", "multi", "vault_address", "https://b:8200"), []string{"op"}, "", 0},
	} {
		answer, notes := tc.e.diffs(tc.header, tc.schemes)
		switch {
		case tc.answer == "" && len(answer) > 0, tc.answer != "" && (len(answer) != 1 || !strings.Contains(answer[0], tc.answer)):
			t.Errorf("%s: diffs = %q, want one naming %q", tc.name, answer, tc.answer)
		case len(notes) != tc.notes:
			t.Errorf("%s: notes = %q, want %d", tc.name, notes, tc.notes)
		}
	}
}
