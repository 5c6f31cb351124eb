package harness

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// UseFakeOp points the Env's opx at the fake op (testdata/fakeop) with the
// repository's fixture, a sign-in state directory of its own (no account
// signed in) and a log of every op call, and makes the 1Password CLI
// backend (opcli) the default.
func (e *Env) UseFakeOp() {
	e.T.Helper()
	state := filepath.Join(e.Dir, "opstate")
	if err := os.MkdirAll(state, 0o700); err != nil {
		e.T.Fatal(err)
	}
	e.Vars["FAKEOP_FIXTURE"] = filepath.Join(Bins().Root, "testdata", "fakeop", "fixture.json")
	e.Vars["FAKEOP_STATE"] = state
	e.Vars["FAKEOP_LOG"] = filepath.Join(e.Dir, "op-calls.log")
	e.Vars["OPX_OP_PATH"] = Bins().FakeOp
	e.Vars["OP_AUTHD_BACKEND"] = "opcli"
}

// SignIn signs accounts in to the fake op.
func (e *Env) SignIn(accounts ...string) {
	e.T.Helper()
	for _, a := range accounts {
		if err := os.WriteFile(filepath.Join(e.Vars["FAKEOP_STATE"], a), nil, 0o600); err != nil {
			e.T.Fatal(err)
		}
	}
}

// SignOut signs accounts out of the fake op.
func (e *Env) SignOut(accounts ...string) {
	e.T.Helper()
	for _, a := range accounts {
		if err := os.Remove(filepath.Join(e.Vars["FAKEOP_STATE"], a)); err != nil {
			e.T.Fatal(err)
		}
	}
}

// OpCalls returns the argument lists of every op process started so far.
func (e *Env) OpCalls() [][]string {
	f, err := os.Open(e.Vars["FAKEOP_LOG"])
	if err != nil {
		return nil
	}
	defer f.Close()
	var calls [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		_, args, _ := strings.Cut(sc.Text(), " ")
		var a []string
		json.Unmarshal([]byte(args), &a)
		calls = append(calls, a)
	}
	return calls
}

// OpDirect runs the fake op itself (not logged), for expected values.
func (e *Env) OpDirect(args ...string) string {
	e.T.Helper()
	cmd := exec.Command(Bins().FakeOp, args...)
	cmd.Env = e.Environ("FAKEOP_LOG=")
	out, err := cmd.Output()
	if err != nil {
		e.T.Fatalf("op %v: %v", args, err)
	}
	return string(out)
}

// WriteFixture points the fake op at the repository's fixture plus a vault
// "Infra" holding one item titled title with fields (concealed).
func (e *Env) WriteFixture(title string, fields map[string]string) {
	e.T.Helper()
	out, err := FixtureWithItem(filepath.Join(Bins().Root, "testdata", "fakeop", "fixture.json"), title, fields)
	if err != nil {
		e.T.Fatal(err)
	}
	path := filepath.Join(e.Dir, "fixture.json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		e.T.Fatal(err)
	}
	e.Vars["FAKEOP_FIXTURE"] = path
}

// FixtureWithItem returns the fake op fixture at path with a vault "Infra"
// added to its first account, holding one item titled title with fields
// (concealed).
func FixtureWithItem(path, title string, fields map[string]string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var fx map[string]any
	if err := json.Unmarshal(b, &fx); err != nil {
		return nil, err
	}
	var fl []map[string]any
	for k, v := range fields {
		fl = append(fl, map[string]any{"id": k, "label": k, "type": "CONCEALED", "value": v})
	}
	acct := fx["accounts"].([]any)[0].(map[string]any)
	acct["vaults"] = append(acct["vaults"].([]any), map[string]any{"id": "vinfra", "name": "Infra",
		"items": []any{map[string]any{"id": "i" + title, "title": title, "fields": fl}}})
	return json.Marshal(fx)
}
