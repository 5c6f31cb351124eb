//go:build unix

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/e2e/harness"
)

// A rule knows its 1Password account (issue 21, item 3): a rule for
// op://Prod/* allowed the same ref in every account the daemon can reach
// (`"account":"corp-prod"` returned another account's value). Now a rule
// without an account covers the default account only (no account named, or
// config.json's), a rule names another one to allow it, `opx audit -i`
// writes the account it saw, and `opx policy check` judges as the daemon.
func TestPolicyRulesKnowTheirAccount(t *testing.T) {
	t.Parallel()
	a, _ := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	ref := "op://Prod/db/password"
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["op://Prod/*"]}], "default_deny": true}`)
	os.MkdirAll(e.ConfigDir, 0o700)
	if err := os.WriteFile(filepath.Join(e.ConfigDir, "config.json"), []byte(`{"account": "my"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e.StartDaemon("", "--backend=fake", "--enable-audit-log")
	corp := backend.FakeValue("corp-prod", ref)

	// The default account, named by config.json (as opx read sends it) or
	// not named at all (as op's own default): allowed.
	if r := e.helper(a, "read", ref); r.Code != 0 || r.Stdout != backend.FakeValue("my", ref)+"\n" {
		t.Errorf("read in config.json's default account: %+v", r)
	}
	if r := e.helper(a, "http", ref); !strings.HasPrefix(r.Stdout, "200 ") {
		t.Errorf("read naming no account: %+v", r)
	}
	// Another account: refused, and the reason says how to allow it.
	r := e.helperEnv([]string{"OPX_ACCOUNT=corp-prod"}, a, "read", ref)
	if r.Code != 1 || strings.Contains(r.Stdout+r.Stderr, corp) || !strings.Contains(r.Stderr, "forbidden") || !strings.Contains(r.Stderr, `"account": "corp-prod"`) {
		t.Fatalf("read in another account under a rule without one: %+v", r)
	}
	if r := e.helper(a, "post", "/v1/read", `{"ref":"`+ref+`","account":"corp-prod"}`); !strings.HasPrefix(r.Stdout, "403 ") || strings.Contains(r.Stdout, corp) {
		t.Errorf("raw request in another account: %+v", r)
	}
	var denied map[string]any
	for _, m := range e.auditLines() {
		if m["event"] == "ACCESS_DECISION" && m["decision"] == "DENY" {
			denied = m
		}
	}
	if denied == nil || denied["account"] != "corp-prod" {
		t.Errorf("audit record of the refusal = %v; want it to name account corp-prod", denied)
	}

	// opx policy check judges as the daemon does.
	check := func(account string) harness.Result {
		t.Helper()
		cmd := exec.Command(e.Client, "--account", account, "policy", "check", "--path", a, ref)
		cmd.Env = e.Environ()
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return harness.Result{Stdout: string(out), Code: code}
	}
	if r := check("corp-prod"); r.Code != 1 || !strings.Contains(r.Stdout, "DENY") {
		t.Errorf("opx policy check in account corp-prod: %+v", r)
	}
	r = check("my")
	if r.Code != 0 || !strings.Contains(r.Stdout, "ALLOW") {
		t.Errorf("opx policy check in the default account: %+v", r)
	}
	// Both flag the rule that no longer covers what it allowed before.
	if !strings.Contains(r.Stdout, "note: allow[0] names no account") || !strings.Contains(r.Stdout, "in account corp-prod") {
		t.Errorf("opx policy check does not flag the rule without an account:\n%s", r.Stdout)
	}
	_, checks, _ := e.doctorJSON()
	if notes := checks["policy accounts"]; len(notes) != 1 || !strings.Contains(notes[0].Detail, "corp-prod") {
		t.Errorf("opx doctor's policy accounts = %+v; want the rule flagged", notes)
	}

	// opx audit -i turns the refusal into a rule naming the account.
	cmd := exec.Command(e.Client, "audit", "--interactive", "--since", "1h")
	cmd.Env = e.Environ()
	cmd.Stdin = strings.NewReader("1\ne\ny\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "in account corp-prod") {
		t.Fatalf("opx audit -i: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(e.ConfigDir, "policy.json"))
	var pol struct {
		Allow []struct {
			Path    string   `json:"path"`
			Refs    []string `json:"refs"`
			Account string   `json:"account"`
		} `json:"allow"`
	}
	if err := json.Unmarshal(b, &pol); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rule := range pol.Allow {
		if rule.Path == a && rule.Account == "corp-prod" && len(rule.Refs) == 1 && rule.Refs[0] == ref {
			found = true
		}
	}
	if !found {
		t.Errorf("policy after opx audit -i:\n%s\nwant a rule for %s, %s in account corp-prod", b, a, ref)
	}
	if r := e.helperEnv([]string{"OPX_ACCOUNT=corp-prod"}, a, "read", ref); r.Code != 0 || r.Stdout != corp+"\n" {
		t.Errorf("read in account corp-prod once a rule names it: %+v", r)
	}
	if r := e.helperEnv([]string{"OPX_ACCOUNT=personal"}, a, "read", ref); r.Code != 1 {
		t.Errorf("read in a third account: %+v", r)
	}
}
