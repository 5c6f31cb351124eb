package harness

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
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
	var calls [][]string
	for _, c := range e.opLog() {
		calls = append(calls, c.args)
	}
	return calls
}

// OpCallsAs returns the argument lists of the op processes started so far
// as one identity: "sa=" + FakeOPTokenID(token) for a service account,
// "connect=" + FakeOPTokenID(host+"\n"+token) for Connect, "" for the
// accounts signed in interactively.
func (e *Env) OpCallsAs(identity string) [][]string {
	var calls [][]string
	for _, c := range e.opLog() {
		if c.identity == identity {
			calls = append(calls, c.args)
		}
	}
	return calls
}

type opCall struct {
	identity string
	args     []string
}

// opLog reads FAKEOP_LOG: "<pid> [sa=<id>|connect=<id>] <args as JSON>".
func (e *Env) opLog() []opCall {
	f, err := os.Open(e.Vars["FAKEOP_LOG"])
	if err != nil {
		return nil
	}
	defer f.Close()
	var calls []opCall
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		_, rest, _ := strings.Cut(sc.Text(), " ")
		var c opCall
		if !strings.HasPrefix(rest, "[") {
			c.identity, rest, _ = strings.Cut(rest, " ")
		}
		json.Unmarshal([]byte(rest), &c.args)
		calls = append(calls, c)
	}
	return calls
}

// FakeOPTokenID is how the fake op names a token in its log and state
// files: the first 8 hex digits of its SHA-256 (for Connect, of host + "\n"
// + token). A file "revoked-" + FakeOPTokenID(token) in FAKEOP_STATE deletes
// that service account.
func FakeOPTokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}

// FakeOPValueFor is the value the fake op gives a service account with
// token for a secret whose fixture value is plain: plain + "~" +
// FakeOPTokenID(token), so that a test can tell which token read it.
func FakeOPValueFor(token, plain string) string {
	return plain + "~" + FakeOPTokenID(token)
}

// FakeOPConnectValueFor is FakeOPValueFor for a Connect server at host
// with token.
func FakeOPConnectValueFor(host, token, plain string) string {
	return FakeOPValueFor(host+"\n"+token, plain)
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
