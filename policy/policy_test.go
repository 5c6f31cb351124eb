//go:build unix

package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{`, "not a policy"},
		{`{"allow": [], "default_deny": "yes"}`, "not a policy"},
		{`{"allow": [{"path": "/bin/x", "refs": ["*"], "color": 1}]}`, `unknown field "color"`},
		{`{"allow": [{"path": "bin/x", "refs": ["*"]}]}`, "allow[0]: path \"bin/x\" is not absolute"},
		{`{"allow": [{"exe_sha256": "xyz", "refs": ["*"]}]}`, "allow[0]: exe_sha256 must be 64 hex digits"},
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
			d := p.Decide(tc.r, Read{Ref: tc.ref}, Env{Signed: tc.signed})
			if d.Allow != tc.allow || d.Rule != tc.rule || d.Reason == "" {
				t.Errorf("Decide(%+v, %q) = %+v, want allow=%v rule=%d", tc.r, tc.ref, d, tc.allow, tc.rule)
			}
		})
	}
	open := &Policy{Allow: p.Allow}
	if d := open.Decide(Requester{Path: "/tmp/evil"}, Read{Ref: "op://x/y/z"}, Env{}); !d.Allow {
		t.Error("without default_deny an unmatched request must be allowed")
	}
	var none *Policy
	if d := none.Decide(Requester{}, Read{Ref: "op://x/y/z"}, Env{}); !d.Allow {
		t.Error("no policy must allow everything")
	}
}

func TestStoreFollowsContentAndFailsClosed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.json")
	var changes []string
	s, err := Load(path, func(old, cur *Snapshot) { changes = append(changes, old.State+">"+cur.State) })
	if err != nil || s.Current().State != StateNone {
		t.Fatalf("missing file: %v, %v; want state none", s, err)
	}
	a := Requester{PID: 1, Path: "/a"}
	allowed := func() bool { return s.Current().Decide(a, Read{Ref: "op://v/i/f"}, Env{}).Allow }

	// Every write below keeps the size and sets the same modification
	// time (1, as in the Nix store): only the content tells them apart.
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(path, time.Unix(1, 0), time.Unix(1, 0))
	}
	write(`{"allow": [{"path": "/a", "refs": ["*"]}], "default_deny": true}`)
	if !allowed() || s.Current().State != StateLoaded {
		t.Fatal("new file not picked up")
	}
	write(`{"allow": [{"path": "/b", "refs": ["*"]}], "default_deny": true}`)
	if allowed() {
		t.Fatal("a same-size, same-mtime edit that revokes access was not applied")
	}
	write(`{"allow": [{"path": "/a", "refs": ["*"]}], "default_deny": true}`)
	h := s.Current().Hash
	if !allowed() || len(h) != 64 {
		t.Fatalf("hash %q", h)
	}

	// A broken edit keeps the last good policy, and says so.
	write(`{"allow": [`)
	if snap := s.Current(); snap.State != StateLoaded || !allowed() || !strings.Contains(snap.Reason, "does not parse") || snap.Hash != h {
		t.Fatalf("broken edit: %+v", snap)
	}

	// Deleted, a directory, writable by others: denied, until a good file returns.
	for _, tc := range []struct {
		name, want string
		spoil      func()
	}{
		{"deleted", "was removed", func() { os.Remove(path) }},
		{"a directory", "not a regular file", func() { os.Remove(path); os.Mkdir(path, 0o700) }},
		{"world-writable", "writable by others", func() { os.Chmod(path, 0o666) }},
		{"group-writable", "writable by others", func() { os.Chmod(path, 0o620) }},
		{"too large", "larger than", func() { os.WriteFile(path, make([]byte, 2<<20), 0o600) }},
		{"a link to nowhere", "which does not exist", func() { os.Remove(path); os.Symlink(filepath.Join(dir, "gone"), path) }},
	} {
		write(`{"allow": [{"path": "/a", "refs": ["*"]}], "default_deny": true}`)
		if !allowed() {
			t.Fatalf("%s: good file not in force before the test", tc.name)
		}
		tc.spoil()
		snap := s.Current()
		if snap.State != StateFailedClosed || !strings.Contains(snap.Reason, tc.want) || snap.Decide(a, Read{Ref: "op://v/i/f"}, Env{}).Allow {
			t.Errorf("%s: %+v, want failed_closed because %q", tc.name, snap, tc.want)
		}
		if snap.AllowsAny(a, Env{}) {
			t.Errorf("%s: a failed-closed policy lets a program lock or unlock", tc.name)
		}
		os.RemoveAll(path)
	}
	if os.Geteuid() == 0 {
		write(`{"allow": [{"path": "/a", "refs": ["*"]}], "default_deny": true}`)
		s.Current()
		os.Chown(path, 65534, 65534)
		if snap := s.Current(); snap.State != StateFailedClosed || !strings.Contains(snap.Reason, "owned by uid 65534") {
			t.Errorf("foreign-owned: %+v", snap)
		}
	} else {
		t.Log("not root: the foreign-owner case needs chown")
	}

	// A good file through a link (as Home Manager writes it) is followed.
	target := filepath.Join(dir, "store-policy.json")
	os.WriteFile(target, []byte(`{"allow": [{"path": "/a", "refs": ["*"]}], "default_deny": true}`), 0o444)
	os.RemoveAll(path)
	os.Symlink(target, path)
	if snap := s.Current(); snap.State != StateLoaded || !allowed() {
		t.Errorf("through a link: %+v", snap)
	}
	if len(changes) < 8 {
		t.Errorf("changes reported: %v", changes)
	}

	// A broken file with no good policy before it fails closed, and one
	// that is broken at start stops the load.
	os.Remove(path)
	os.WriteFile(path, []byte(`nope`), 0o600)
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load of a broken file = %v, want an error naming it", err)
	}
	os.Remove(path)
	s2, _ := Load(path, nil)
	os.WriteFile(path, []byte(`nope`), 0o600)
	if snap := s2.Current(); snap.State != StateFailedClosed {
		t.Errorf("broken file after none: %+v", snap)
	}
	os.Chmod(path, 0o666)
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("Load of a world-writable file = %v", err)
	}

	// A link to a missing file (a Nix store path not built yet) is a
	// policy the user meant: it fails closed at start and after none.
	os.Remove(path)
	os.Symlink(filepath.Join(dir, "not-built-yet.json"), path)
	s3, err := Load(path, nil)
	if err != nil || s3.Current().State != StateFailedClosed || s3.Current().Decide(a, Read{Ref: "op://v/i/f"}, Env{}).Allow {
		t.Errorf("Load of a dangling link = %+v, %v; want failed_closed", s3.Current(), err)
	}
	os.Remove(path)
	s4, _ := Load(path, nil)
	os.Symlink(filepath.Join(dir, "not-built-yet.json"), path)
	if snap := s4.Current(); snap.State != StateFailedClosed || !strings.Contains(snap.Reason, "does not exist") {
		t.Errorf("a dangling link after none: %+v", snap)
	}
	os.WriteFile(filepath.Join(dir, "not-built-yet.json"), []byte(`{"allow": [{"path": "/a", "refs": ["*"]}], "default_deny": true}`), 0o444)
	if snap := s4.Current(); snap.State != StateLoaded {
		t.Errorf("once the link's target exists: %+v", snap)
	}
}

func TestResolvePathIsWhatTheKernelShows(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "python3.11")
	os.WriteFile(real, []byte("#!"), 0o755)
	os.Symlink("python3.11", filepath.Join(dir, "python3"))
	home := filepath.Join(dir, "home")
	os.MkdirAll(filepath.Join(home, ".nix-profile", "bin"), 0o755)
	os.Symlink(real, filepath.Join(home, ".nix-profile", "bin", "py"))
	realDir, _ := filepath.EvalSymlinks(dir)
	want := filepath.Join(realDir, "python3.11")
	for _, in := range []string{filepath.Join(dir, "python3"), real, "~/.nix-profile/bin/py"} {
		if got := ResolvePath(in, home); got != want {
			t.Errorf("ResolvePath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ResolvePath("/no/such/./bin", home); got != "/no/such/bin" {
		t.Errorf("ResolvePath of a missing path = %q", got)
	}
	p, err := Parse([]byte(`{"allow": [{"path": "` + filepath.Join(dir, "python3") + `", "refs": ["*"]}, {"path": "~/.nix-profile/bin/py", "refs": ["op://Nix/*"]}], "default_deny": true}`))
	if err != nil {
		t.Fatal(err)
	}
	r := Requester{PID: 3, Path: want}
	if d := p.Decide(r, Read{Ref: "op://x/y/z"}, Env{Home: home}); !d.Allow || d.Rule != 0 {
		t.Errorf("a rule for the python3 link does not match python3.11: %+v", d)
	}
	// Upgrade: the link now points elsewhere; the old binary no longer matches rule 0.
	os.Remove(filepath.Join(dir, "python3"))
	os.WriteFile(filepath.Join(dir, "python3.12"), []byte("#!"), 0o755)
	os.Symlink("python3.12", filepath.Join(dir, "python3"))
	if d := p.Decide(r, Read{Ref: "op://x/y/z"}, Env{Home: home}); d.Allow {
		t.Errorf("after the link moved on, the old binary still matches: %+v", d)
	}
	if d := p.Decide(Requester{Path: filepath.Join(realDir, "python3.12")}, Read{Ref: "op://x/y/z"}, Env{Home: home}); !d.Allow {
		t.Errorf("after an upgrade the new binary does not match: %+v", d)
	}
}

func TestInterpreterRulesAreFlagged(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/bin/bash", true}, {"/usr/bin/python3.11", true}, {"/usr/bin/env", true}, {"/usr/local/bin/node", true},
		{"/usr/bin/zsh-5.9", true}, {"/usr/bin/kubectl", false}, {"/usr/bin/sleep", false}, {"/opt/homebrew/bin/op", false},
	} {
		why, ok := Interpreter(tc.path, "")
		if ok != tc.want || (ok && !strings.Contains(why, "every program")) {
			t.Errorf("Interpreter(%q) = %q, %v; want %v", tc.path, why, ok, tc.want)
		}
	}
}

func TestExeSHA256Rule(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	p, err := Parse([]byte(`{"allow": [{"exe_sha256": "` + sum + `", "refs": ["*"]}], "default_deny": true}`))
	if err != nil || !p.UsesExeSHA256() {
		t.Fatal(err)
	}
	if d := p.Decide(Requester{Path: "/x", ExeSHA256: strings.ToUpper(sum)}, Read{Ref: "op://a/b/c"}, Env{}); !d.Allow {
		t.Errorf("matching content hash denied: %+v", d)
	}
	for _, h := range []string{"", strings.Repeat("cd", 32)} {
		if d := p.Decide(Requester{Path: "/x", ExeSHA256: h}, Read{Ref: "op://a/b/c"}, Env{}); d.Allow {
			t.Errorf("content hash %q allowed", h)
		}
	}
	if p.AllowsAny(Requester{Path: "/x"}, Env{}) || !p.AllowsAny(Requester{Path: "/x", ExeSHA256: sum}, Env{}) {
		t.Error("AllowsAny does not follow the rule's identity")
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
		d := p.Decide(Requester{PID: 1, Path: "/usr/bin/x"}, Read{Ref: ref}, Env{})
		if d.Reason == "" || (d.Allow && d.Rule >= len(p.Allow)) {
			t.Fatalf("Decide gave %+v", d)
		}
	})
}

// A rule names the 1Password account (and the Vault/OpenBao server) its
// refs may be read from; without one it covers the default account only
// (issue 21: a rule for op://Prod/* allowed op://Prod/... of every account).
func TestDecideAccountAndServer(t *testing.T) {
	p, err := Parse([]byte(`{"allow": [
		{"path": "/usr/bin/app", "refs": ["op://Prod/*"]},
		{"path": "/usr/bin/ops", "refs": ["op://Prod/*"], "account": "Corp-Prod"},
		{"path": "/usr/bin/any", "refs": ["op://Prod/*"], "account": "*"},
		{"path": "/usr/bin/app", "refs": ["vault://secret/*"], "server": {"address": "https://vault.corp:8200/"}},
		{"path": "/usr/bin/app", "refs": ["bao://kv/*"], "server": {"address": "https://bao.corp", "namespace": "team"}}
	], "default_deny": true}`))
	if err != nil {
		t.Fatal(err)
	}
	vault := &api.Server{Address: "https://vault.corp:8200"}
	other := &api.Server{Address: "https://evil.example:8200"}
	team := &api.Server{Address: "https://bao.corp", Namespace: "/team/"}
	cases := []struct {
		prog string
		q    Read
		want bool
	}{
		{"/usr/bin/app", Read{Ref: "op://Prod/db/pw"}, true},
		{"/usr/bin/app", Read{Ref: "op://Prod/db/pw", Account: "corp-prod"}, false},
		{"/usr/bin/app", Read{Ref: "op://Prod/db/pw", Account: "my", DefaultAccount: "MY"}, true},
		{"/usr/bin/app", Read{Ref: "op://Prod/db/pw", Account: "corp-prod", DefaultAccount: "my"}, false},
		{"/usr/bin/ops", Read{Ref: "op://Prod/db/pw", Account: "corp-prod"}, true},
		{"/usr/bin/ops", Read{Ref: "op://Prod/db/pw"}, false},
		{"/usr/bin/ops", Read{Ref: "op://Prod/db/pw", DefaultAccount: "corp-prod"}, false},
		{"/usr/bin/ops", Read{Ref: "op://Prod/db/pw", Account: "personal"}, false},
		{"/usr/bin/any", Read{Ref: "op://Prod/db/pw", Account: "personal"}, true},
		{"/usr/bin/app", Read{Ref: "vault://secret/app#k", Account: "corp-prod", Server: vault}, true},
		{"/usr/bin/app", Read{Ref: "vault://secret/app#k", Server: other}, false},
		{"/usr/bin/app", Read{Ref: "vault://secret/app#k"}, false},
		{"/usr/bin/app", Read{Ref: "bao://kv/app#k", Server: team}, true},
		{"/usr/bin/app", Read{Ref: "bao://kv/app#k", Server: &api.Server{Address: "https://bao.corp"}}, false},
	}
	for _, tc := range cases {
		d := p.Decide(Requester{Path: tc.prog}, tc.q, Env{})
		if d.Allow != tc.want {
			t.Errorf("Decide(%s, %+v) = %+v, want allow=%v", tc.prog, tc.q, d, tc.want)
		}
	}
	d := p.Decide(Requester{Path: "/usr/bin/app"}, Read{Ref: "op://Prod/db/pw", Account: "corp-prod"}, Env{})
	if !strings.Contains(d.Reason, `"account": "corp-prod"`) {
		t.Errorf("the reason for another account's ref does not say how to allow it: %q", d.Reason)
	}
	if got := p.NoAccount(); len(got) != 1 || got[0] != 0 {
		t.Errorf("NoAccount() = %v, want [0]", got)
	}
}

// A policy is a JSON object: null (which decoded into an empty policy that
// allowed everything), a list, a string or a number is an error.
func TestParseWantsAnObject(t *testing.T) {
	for _, body := range []string{"null", " null\n", "[]", `"x"`, "1", "true", ""} {
		if _, err := Parse([]byte(body)); err == nil {
			t.Errorf("Parse(%q) = nil error, want one", body)
		}
	}
	for _, body := range []string{
		`{"allow": [{"refs": ["*"], "account": "-x"}]}`,
		`{"allow": [{"refs": ["*"], "account": "a b"}]}`,
		`{"allow": [{"refs": ["*"], "server": {"namespace": "x"}}]}`,
	} {
		if _, err := Parse([]byte(body)); err == nil {
			t.Errorf("Parse(%s) = nil error, want one", body)
		}
	}
}

// TestIdentityRules: a rule naming an identity kind or fingerprint allows
// op:// reads as that identity only; a rule naming none allows any.
func TestIdentityRules(t *testing.T) {
	const fpA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	const fpB = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	p, err := Parse([]byte(`{"default_deny": true, "allow": [
		{"path": "/ci/a", "identity": "service-account", "refs": ["*"]},
		{"path": "/ci/b", "identity": "0123456789AB", "refs": ["op://*"]},
		{"path": "/ci/c", "identity": "desktop", "refs": ["*"]},
		{"path": "/ci/d", "refs": ["*"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, kind, fp string
		allow          bool
	}{
		{"/ci/a", "service-account", fpA, true},
		{"/ci/a", "connect", fpA, false},
		{"/ci/a", "desktop", "", false},
		{"/ci/b", "service-account", fpA, true},
		{"/ci/b", "service-account", fpB, false},
		{"/ci/c", "desktop", "", true},
		{"/ci/c", "service-account", fpA, false},
		{"/ci/d", "connect", fpB, true},
	} {
		d := p.Decide(Requester{Path: tc.path}, Read{Ref: "op://v/i/f", IdentityKind: tc.kind, Identity: tc.fp}, Env{})
		if d.Allow != tc.allow {
			t.Errorf("%s as %s %.12s: %+v, want allow=%v", tc.path, tc.kind, tc.fp, d, tc.allow)
		}
	}
	for _, bad := range []string{"robot", "0123", "0123456789ag"} {
		if _, err := Parse([]byte(`{"allow": [{"identity": "` + bad + `", "refs": ["*"]}]}`)); err == nil || !strings.Contains(err.Error(), "identity") {
			t.Errorf("identity %q: Parse error = %v", bad, err)
		}
	}
}

// TestAskRulesAndDefault: a rule with "ask" and the default "ask" decide
// Ask, not Allow; "default" and "default_deny" must agree.
func TestAskRulesAndDefault(t *testing.T) {
	p, err := Parse([]byte(`{"default": "ask", "allow": [
		{"path": "/bin/a", "refs": ["op://v/*"]},
		{"path": "/bin/b", "ask": true, "refs": ["op://v/*"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, ref  string
		allow, ask bool
		rule       int
	}{
		{"/bin/a", "op://v/i/f", true, false, 0},
		{"/bin/b", "op://v/i/f", false, true, 1},
		{"/bin/c", "op://v/i/f", false, true, -1},
		{"/bin/a", "op://w/i/f", false, true, -1},
	} {
		d := p.Decide(Requester{Path: tc.path}, Read{Ref: tc.ref}, Env{})
		if d.Allow != tc.allow || d.Ask != tc.ask || d.Rule != tc.rule {
			t.Errorf("%s %s: %+v", tc.path, tc.ref, d)
		}
	}
	if !p.AllowsAny(Requester{Path: "/bin/c"}, Env{}) {
		t.Error("a default of ask does not let a program lock or approve")
	}
	deny, err := Parse([]byte(`{"default": "deny", "allow": [{"path": "/bin/b", "ask": true, "refs": ["*"]}]}`))
	if err != nil || !deny.DefaultDeny {
		t.Fatalf("default deny: %+v, %v", deny, err)
	}
	if d := deny.Decide(Requester{Path: "/bin/c"}, Read{Ref: "op://v/i/f"}, Env{}); d.Allow || d.Ask {
		t.Errorf("default deny, no rule: %+v", d)
	}
	if !deny.AllowsAny(Requester{Path: "/bin/b"}, Env{}) || deny.AllowsAny(Requester{Path: "/bin/c"}, Env{}) {
		t.Error("AllowsAny: an asking rule counts, no rule does not")
	}
	for _, bad := range []string{`{"default": "maybe", "allow": []}`, `{"default": "ask", "default_deny": true, "allow": []}`} {
		if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "default") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
