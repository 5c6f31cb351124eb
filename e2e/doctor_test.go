//go:build unix

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opxhq/opx/api"
)

// doctorJSON runs opx doctor --json and decodes its report.
func (e *testEnv) doctorJSON(extra ...string) (ok bool, checks map[string][]api.Check, code int) {
	e.T.Helper()
	r := e.OpxEnv(extra, "doctor", "--json")
	var rep struct {
		OK     bool        `json:"ok"`
		Checks []api.Check `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		e.T.Fatalf("doctor --json: %v\n%s\n%s", err, r.Stdout, r.Stderr)
	}
	checks = map[string][]api.Check{}
	for _, c := range rep.Checks {
		checks[c.Name] = append(checks[c.Name], c)
	}
	return rep.OK, checks, r.Code
}

func TestDoctorHealthyFakeSetup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	r := e.Opx("doctor")
	if r.Code != 0 || strings.Contains(r.Stdout, "✗") {
		t.Fatalf("doctor on a healthy fake setup = %+v", r)
	}
	for _, want := range []string{"✓ daemon: running", "✓ daemon settings", "✓ token file", "✓ backend: fake", "✓ session: unlocked", "policy: none"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.Stdout)
		}
	}
	ok, checks, code := e.doctorJSON()
	if !ok || code != 0 || len(checks["daemon"]) != 1 || !checks["daemon"][0].OK {
		t.Errorf("doctor --json = ok %v, exit %d, %+v", ok, code, checks)
	}
}

// Without op, doctor fails and names the fix; every other check still runs.
func TestDoctorOPMissing(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.Vars["OPX_OP_PATH"] = filepath.Join(e.Dir, "no-such-op")
	e.StartDaemon("")
	r := e.Opx("doctor")
	if r.Code != 1 || !strings.Contains(r.Stdout, "✗ op: ") || !strings.Contains(r.Stdout, "fix: install the 1Password CLI") ||
		!strings.Contains(r.Stdout, "1 check failed") {
		t.Fatalf("doctor without op = %+v", r)
	}
	if !strings.Contains(r.Stdout, "✓ session") {
		t.Errorf("doctor stopped at the first failure:\n%s", r.Stdout)
	}
}

// With op, doctor shows its version and asks op whoami for each account:
// the default one signed in, the request's team account not.
func TestDoctorOPAccounts(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.StartDaemon("")
	ok, checks, code := e.doctorJSON()
	if !ok || code != 0 {
		t.Fatalf("doctor with the default account signed in = %v, %d: %+v", ok, code, checks)
	}
	if c := checks["op"]; len(c) != 1 || !strings.Contains(c[0].Detail, "op 2.") {
		t.Errorf("op check = %+v, want op's version", c)
	}
	if c := checks["1Password default account"]; len(c) != 1 || !c[0].OK || !strings.Contains(c[0].Detail, "signed in as") {
		t.Errorf("default account check = %+v", c)
	}
	r := e.Opx("--account", "team", "doctor")
	if r.Code != 1 || !strings.Contains(r.Stdout, "✗ 1Password account team") || !strings.Contains(r.Stdout, "opx login 1password --account team") {
		t.Errorf("doctor for the signed-out team account = %+v", r)
	}
}

func TestDoctorFindsWhatIsWrong(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	// A data directory others may read, a policy file that does not parse
	// (the daemon fails closed), and a client whose settings differ.
	if err := os.Chmod(e.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.ConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.ConfigDir, "policy.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.OpxEnv([]string{"OP_AUTHD_TTL=7"}, "doctor")
	if r.Code != 1 {
		t.Fatalf("doctor with problems = %+v", r)
	}
	for _, want := range []string{
		"✗ data directory", "fix: chmod 0700 " + e.DataDir,
		"✗ policy: ", "fix: fix the file",
		"! daemon settings: the running daemon has TTL 2m0s (this command's settings give 7s); reads get what this environment's daemon would give",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.Stdout)
		}
	}
	if r.Stderr != "" {
		t.Errorf("doctor warned on stderr as well: %s", r.Stderr)
	}
}

func TestDoctorWithoutDaemon(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.OpxEnv([]string{"OPX_AUTOSTART=0"}, "doctor")
	if r.Code != 1 || !strings.Contains(r.Stdout, "✗ daemon") || !strings.Contains(r.Stdout, "fix: start it") {
		t.Errorf("doctor with no daemon and no autostart = %+v", r)
	}
	// What only a daemon can say is not made up.
	for _, absent := range []string{"session", "policy:", "audit log", "backend"} {
		if strings.Contains(r.Stdout, absent) {
			t.Errorf("doctor without a daemon reports %q:\n%s", absent, r.Stdout)
		}
	}
}

// A policy file that is a link (as Home Manager makes, into a store owned
// by root) is fine; a policy that refuses the program refuses doctor's
// backend check too, with a named failure.
func TestDoctorPolicyLinkAndRefusal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	os.MkdirAll(e.ConfigDir, 0o700)
	store := filepath.Join(e.Dir, "store-policy.json")
	os.WriteFile(store, []byte(`{"allow": [{"path": "/nonexistent/tool", "refs": ["*"]}], "default_deny": true}`), 0o444)
	if err := os.Symlink(store, filepath.Join(e.ConfigDir, "policy.json")); err != nil {
		t.Fatal(err)
	}
	e.StartDaemon("", "--backend=fake")
	r := e.Opx("doctor")
	if !strings.Contains(r.Stdout, "✓ policy file: ") {
		t.Errorf("a linked policy file is reported wrong:\n%s", r.Stdout)
	}
	if r.Code != 1 || !strings.Contains(r.Stdout, "✗ backend: ") || !strings.Contains(r.Stdout, "allows the program that ran opx doctor no ref") {
		t.Errorf("doctor under a policy that allows it nothing = %+v", r)
	}
}
