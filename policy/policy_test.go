package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{`, "not a policy"},
		{`{"allow": [], "default_deny": "yes"}`, "not a policy"},
		{`{"allow": [{"path": "/bin/x", "refs": ["*"], "color": 1}]}`, `unknown field "color"`},
		{`{"allow": [{"path": "bin/x", "refs": ["*"]}]}`, "allow[0]: path \"bin/x\" is not absolute"},
		{`{"allow": [{"path": "/bin/x", "refs": []}]}`, "allow[0]: refs is empty"},
		{`{"allow": [{"path_sha256": "abc", "refs": ["*"]}]}`, "allow[0]: path_sha256 must be 64 hex digits"},
		{`{"allow": [{"pid": -1, "refs": ["*"]}]}`, "allow[0]: pid must be positive"},
		{`{"allow": [{"refs": ["op://*/x"]}]}`, `allow[0]: ref pattern "op://*/x"`},
		{`{} {}`, "data after"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestDecide(t *testing.T) {
	p, err := Parse([]byte(`{
	  "allow": [
	    {"path": "/usr/bin/kubectl", "refs": ["op://Production/*"]},
	    {"path_sha256": "` + PathSHA256("/opt/ci/runner") + `", "refs": ["vault://ci/deploy#token"]},
	    {"pid": 4242, "refs": ["*"]},
	    {"path": "/usr/bin/signed", "refs": ["*"], "require_signed": true}
	  ],
	  "default_deny": true}`))
	if err != nil {
		t.Fatal(err)
	}
	kubectl := Requester{PID: 10, Path: "/usr/bin/kubectl"}
	for _, tc := range []struct {
		name   string
		r      Requester
		ref    string
		signed func(string) bool
		allow  bool
		rule   int
	}{
		{"prefix match", kubectl, "op://Production/db/password", nil, true, 0},
		{"prefix miss", kubectl, "op://Staging/db/password", nil, false, -1},
		{"prefix is not a substring", kubectl, "op://ProductionX/db/password", nil, false, -1},
		{"sha256 of path", Requester{PID: 5, Path: "/opt/ci/runner"}, "vault://ci/deploy#token", nil, true, 1},
		{"exact ref only", Requester{PID: 5, Path: "/opt/ci/runner"}, "vault://ci/deploy#other", nil, false, -1},
		{"pid", Requester{PID: 4242, Path: "/anything"}, "bao://x", nil, true, 2},
		{"unsigned platform", Requester{PID: 7, Path: "/usr/bin/signed"}, "op://a/b/c", nil, false, -1},
		{"signature fails", Requester{PID: 7, Path: "/usr/bin/signed"}, "op://a/b/c", func(string) bool { return false }, false, -1},
		{"signature passes", Requester{PID: 7, Path: "/usr/bin/signed"}, "op://a/b/c", func(string) bool { return true }, true, 3},
		{"stranger", Requester{PID: 9, Path: "/tmp/evil"}, "op://Production/db/password", nil, false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(tc.r, tc.ref, tc.signed)
			if d.Allow != tc.allow || d.Rule != tc.rule || d.Reason == "" {
				t.Errorf("Decide(%+v, %q) = %+v, want allow=%v rule=%d", tc.r, tc.ref, d, tc.allow, tc.rule)
			}
		})
	}
	open := &Policy{Allow: p.Allow}
	if d := open.Decide(Requester{Path: "/tmp/evil"}, "op://x/y/z", nil); !d.Allow {
		t.Error("without default_deny an unmatched request must be allowed")
	}
	var none *Policy
	if d := none.Decide(Requester{}, "op://x/y/z", nil); !d.Allow {
		t.Error("no policy must allow everything")
	}
}

func TestStoreReloadsAndKeepsLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	var reported []error
	s, err := Load(path, func(err error) { reported = append(reported, err) })
	if err != nil || s.Current() != nil {
		t.Fatalf("missing file: %v, %v; want no policy", s, err)
	}
	write := func(body string) {
		os.WriteFile(path, []byte(body), 0o600)
		// A later modification time, even on coarse file systems.
		future := time.Now().Add(time.Duration(len(reported)+2) * time.Second)
		os.Chtimes(path, future, future)
	}
	write(`{"allow": [{"path": "/a", "refs": ["*"]}], "default_deny": true}`)
	if p := s.Current(); p == nil || len(p.Allow) != 1 {
		t.Fatalf("new file not picked up: %+v", p)
	}
	write(`{"allow": [`)
	if p := s.Current(); p == nil || len(p.Allow) != 1 {
		t.Fatalf("a broken edit replaced the last good policy: %+v", p)
	}
	s.Current()
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), path) {
		t.Errorf("broken edit reported %v, want once, naming the file", reported)
	}
	write(`{"allow": [{"path": "/a", "refs": ["*"]}, {"path": "/b", "refs": ["*"]}]}`)
	if p := s.Current(); p == nil || len(p.Allow) != 2 || p.DefaultDeny {
		t.Fatalf("fixed file not picked up: %+v", p)
	}
	os.WriteFile(path, []byte(`nope`), 0o600)
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load of a broken file = %v, want an error naming it", err)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "policy", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "op://Production/db/password")
	}
	f.Fuzz(func(t *testing.T, data []byte, ref string) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		d := p.Decide(Requester{PID: 1, Path: "/usr/bin/x"}, ref, nil)
		if d.Reason == "" || (d.Allow && d.Rule >= len(p.Allow)) {
			t.Fatalf("Decide gave %+v", d)
		}
	})
}
