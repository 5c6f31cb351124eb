//go:build unix

package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/e2e/harness"
)

// Tokens in the form of 1Password's service account tokens, made for the
// tests; the fake op gives each its own values (harness.FakeOPValueFor).
const (
	saTokenA = "ops_eyJzaWduSW5BZGRyZXNzIjoibXkuZTJlIiwidXNlckF1dGgiOnsibWV0aG9kIjoiU1JQZy00MDk2In0sImVtYWlsIjoiYUBlMmUifQ"
	saTokenB = "ops_eyJzaWduSW5BZGRyZXNzIjoibXkuZTJlIiwidXNlckF1dGgiOnsibWV0aG9kIjoiU1JQZy00MDk2In0sImVtYWlsIjoiYkBlMmUifQ"
)

var saRefs = []struct{ ref, plain string }{
	{"op://Private/db/password", "s3cr3t-db-pass"},
	{"op://Private/db/username", "app"},
	{"op://Bulk/item00/value", "bulk-value-00"},
}

// TestServiceAccountsNeverCross: two service accounts reading the same
// refs at once, from 50 and 10 processes, get each its own values, never
// the other's; each token's reads are one op process, however many
// callers; a Connect server's callers (10) and the desktop sign-in's (10
// more) read neither's. Status names each token by a short
// fingerprint and never shows a token.
func TestServiceAccountsNeverCross(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	// A slow op: every caller comes while the first batch runs.
	e.Vars["FAKEOP_DELAY"] = "1500ms"
	e.StartDaemon("")
	args := []string{"read"}
	for _, r := range saRefs {
		args = append(args, r.ref)
	}
	const connectHost, connectToken = "http://127.0.0.1:8080", "connect-token-e2e"
	const connect = "connect"
	want := func(token string) string {
		var b strings.Builder
		for _, r := range saRefs {
			switch token {
			case "":
				b.WriteString(r.plain + "\n")
			case connect:
				b.WriteString(harness.FakeOPConnectValueFor(connectHost, connectToken, r.plain) + "\n")
			default:
				b.WriteString(harness.FakeOPValueFor(token, r.plain) + "\n")
			}
		}
		return b.String()
	}
	callers := map[string]int{saTokenA: 50, saTokenB: 10, connect: 10, "": 10}
	var wg sync.WaitGroup
	errs := make(chan string, 80)
	for _, token := range []string{saTokenA, saTokenB, connect, ""} {
		for range callers[token] {
			wg.Go(func() {
				var extra []string
				switch token {
				case "":
				case connect:
					// Connect wins over a service account, as op has it.
					extra = []string{"OP_CONNECT_HOST=" + connectHost, "OP_CONNECT_TOKEN=" + connectToken, "OP_SERVICE_ACCOUNT_TOKEN=" + saTokenA}
				default:
					extra = []string{"OP_SERVICE_ACCOUNT_TOKEN=" + token}
				}
				if r := e.OpxEnv(extra, args...); r.Code != 0 || r.Stdout != want(token) {
					errs <- fmt.Sprintf("token %.12s: opx read = %+v, want %q", token, r, want(token))
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	for _, token := range []string{saTokenA, saTokenB} {
		// One read, and one ask for the token's limits (the governor's).
		var reads, asks int
		calls := e.OpCallsAs("sa=" + harness.FakeOPTokenID(token))
		for _, c := range calls {
			if strings.Join(c, " ") == "service-account ratelimit --format=json" {
				asks++
			} else {
				reads++
			}
		}
		if reads != 1 || asks != 1 {
			t.Errorf("op processes for token %.12s: %q; want 1 read for %d callers and 1 ask for the limits", token, calls, callers[token])
		}
	}
	if calls := e.OpCallsAs(""); len(calls) != 1 {
		t.Errorf("op processes for the desktop sign-in: %d (%q), want 1", len(calls), calls)
	}
	if calls := e.OpCallsAs("connect=" + harness.FakeOPTokenID(connectHost+"\n"+connectToken)); len(calls) != 1 {
		t.Errorf("op processes for the Connect server: %q, want 1", calls)
	}
	st := e.Status()
	kinds := map[string]int{}
	for _, u := range st.OPCalls {
		kinds[u.IdentityKind]++
		if u.IdentityKind == api.IdentityServiceAccount && len(u.Identity) != 12 {
			t.Errorf("status op calls %+v: want a 12-digit fingerprint", u)
		}
	}
	if kinds[api.IdentityServiceAccount] != 2 || kinds[api.IdentityConnect] != 1 || kinds[""] != 1 {
		t.Errorf("status op calls %+v: want two service accounts, a Connect server and the desktop", st.OPCalls)
	}
	text := e.MustOpx("status")
	if strings.Contains(text, "ops_") || strings.Contains(text, connectToken) || !strings.Contains(text, "as service account ") || !strings.Contains(text, "as Connect server ") {
		t.Errorf("opx status names the tokens wrongly:\n%s", text)
	}
}

// TestServiceAccountTokenNeverLeaves: a service account's token, read
// with through opx read, opx run and the op shim, with the audit log on,
// is in no file opx or op wrote, no op argument list, and, once the reads
// are done, nowhere in the daemon's memory.
func TestServiceAccountTokenNeverLeaves(t *testing.T) {
	t.Parallel()
	e, shims := shimEnv(t)
	e.Vars["OP_AUTHD_ENABLE_AUDIT_LOG"] = "true"
	cmd := e.StartDaemon(harness.Bins().Opx, "daemon", "--verbose")
	e.Vars["OP_SERVICE_ACCOUNT_TOKEN"] = saTokenA
	ref := saRefs[0]
	wantValue := harness.FakeOPValueFor(saTokenA, ref.plain)
	if out := e.MustOpx("read", ref.ref, saRefs[1].ref); !strings.HasPrefix(out, wantValue+"\n") {
		t.Fatalf("opx read = %q, want %q first", out, wantValue)
	}
	if r := e.Opx("run", "--env", "V="+saRefs[2].ref, "--", "printenv", "V"); r.Code != 0 || r.Stdout != "<concealed by opx>\n" && !strings.Contains(r.Stdout, "concealed") {
		t.Errorf("opx run = %+v", r)
	}
	// A ref not read before: the shim's read is a batch of its own.
	if r, want := e.runOP(filepath.Join(shims, "op"), "", "read", "op://Private/GitHub/password"), harness.FakeOPValueFor(saTokenA, "gh-pass"); r.Code != 0 || r.Stdout != want+"\n" {
		t.Errorf("op read through the shim = %+v, want %q", r, want)
	}
	if e.Status().InFlight != 0 {
		t.Fatal("reads still in flight")
	}

	token := []byte(saTokenA)
	filepath.WalkDir(e.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, token) {
			t.Errorf("%s holds the token", p)
		}
		return nil
	})
	for _, call := range e.OpCalls() {
		if strings.Contains(strings.Join(call, " "), saTokenA) {
			t.Errorf("op was run with the token in its arguments: %q", call)
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid)); err == nil && bytes.Contains(b, token) {
		t.Error("the daemon's environment holds the token")
	}
	if !strings.Contains(e.DaemonLog(), "backend call") {
		t.Errorf("the daemon logged no backend call at debug level: the log check would prove nothing")
	}
	harness.AssertNoSecrets(t, cmd.Process.Pid, [][]byte{token})
}

// TestOPShimServesServiceAccounts: a caller signed in with a service
// account token gets, through the shim, op's bytes as op gives them to
// that token (stdout, stderr bar timestamps, exit status), served by the
// daemon: the second round makes no op process.
func TestOPShimServesServiceAccounts(t *testing.T) {
	t.Parallel()
	e, shims := shimEnv(t)
	e.StartDaemon("")
	e.Vars["OP_SERVICE_ACCOUNT_TOKEN"] = saTokenB
	e.Vars["DB_PASS"] = "op://Private/db/password"
	shim := filepath.Join(shims, "op")
	cases := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"read", "op://Private/db/password"}},
		{"", []string{"read", "-n", "op://Private/db/username"}},
		{"", []string{"read", "--", "op://Private/Multi Line Note/notesPlain"}},
		{"db: {{ op://Private/db/password }}\nuser: {{ op://Private/db/username }}\n", []string{"inject"}},
		{"", []string{"run", "--no-masking", "--", "printenv", "DB_PASS"}},
		{"", []string{"read", "op://Private/no such item/password"}},
		{"", []string{"whoami"}},
	}
	for round := range 2 {
		before := len(e.OpCallsAs("sa=" + harness.FakeOPTokenID(saTokenB)))
		for _, tc := range cases {
			got := e.runOP(shim, tc.stdin, tc.args...)
			want := e.runOP(harness.Bins().FakeOp, tc.stdin, tc.args...)
			if got.Stdout != want.Stdout || got.Code != want.Code ||
				opTimestamp.ReplaceAllString(got.Stderr, "") != opTimestamp.ReplaceAllString(want.Stderr, "") {
				t.Errorf("round %d, op %q:\n shim = %+v\n op   = %+v", round, tc.args, got, want)
			}
		}
		if round == 1 {
			// Each round ran op itself once per case for the comparison;
			// the shim's reads came from the daemon's cache (the failed
			// read and whoami pass to op or fail again: 2 more).
			if extra := len(e.OpCallsAs("sa="+harness.FakeOPTokenID(saTokenB))) - before - len(cases); extra > 2 {
				t.Errorf("the second round made %d op processes beyond the comparison's: the shim did not serve the reads from the cache", extra)
			}
		}
	}
	if r := e.runOP(shim, "", "run", "--", "printenv", "DB_PASS"); r.Stdout != "<concealed by 1Password>\n" {
		t.Errorf("op run through the shim for a service account = %+v, want the value concealed", r)
	}
}

// TestServiceAccountLimitsAreKeptNotHit: with a token allowed 20 reads an
// hour, opx asks op for the limits, counts its reads, and refuses the read
// that would take the token into its reserve, naming the limit and when it
// resets, before 1Password ever answers 429; status and doctor say what is
// left.
func TestServiceAccountLimitsAreKeptNotHit(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.Vars["FAKEOP_SA_READ_LIMIT"] = "20"
	e.StartDaemon("")
	const token = "ops_eyJsaW1pdHMiOiJlMmUifQ"
	extra := []string{"OP_SERVICE_ACCOUNT_TOKEN=" + token}
	served, refused := 0, ""
	// Refs not read before: no cached value to serve stale when opx
	// refuses to call op.
	for i := range 10 {
		want := harness.FakeOPValueFor(token, fmt.Sprintf("bulk-value-%02d", i)) + "\n"
		r := e.OpxEnv(extra, "read", fmt.Sprintf("op://Bulk/item%02d/value", i))
		if r.Code != 0 {
			refused = r.Stderr
			break
		}
		if r.Stdout != want {
			t.Fatalf("opx read = %+v, want %q", r, want)
		}
		served++
	}
	// op read costs a service account 3 requests; 5 of 20 are kept.
	if served != 5 || !strings.Contains(refused, "in reserve") || !strings.Contains(refused, "of its 20 read requests left") {
		t.Fatalf("%d reads served, then: %q; want 5, then opx's refusal naming the limit", served, refused)
	}
	for _, c := range e.OpCalls() {
		if len(c) > 0 && c[0] == "read" {
			continue
		}
		if strings.Join(c, " ") != "service-account ratelimit --format=json" {
			t.Errorf("op call %q: want only reads and one ratelimit", c)
		}
	}
	cmd := exec.Command(harness.Bins().FakeOp, "service-account", "ratelimit", "--format", "json")
	cmd.Env = e.Environ(append(extra, "FAKEOP_LOG=")...)
	out, err := cmd.Output()
	if direct := string(out); err != nil || !strings.Contains(direct, `"remaining": 5`) {
		t.Errorf("1Password's count after opx stopped: %s; want 5 reads left, never a 429", direct)
	}
	st := e.Status()
	found := false
	for _, u := range st.OPCalls {
		for _, l := range u.Limits {
			if u.IdentityKind == api.IdentityServiceAccount && l.Action == "read" && l.Limit == 20 && l.Remaining == 5 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("status op calls %+v: want the token's 5 of 20 reads left", st.OPCalls)
	}
	if out := e.MustOpx("status"); !strings.Contains(out, "left: 5 of 20 reads this hour") {
		t.Errorf("opx status does not say what is left:\n%s", out)
	}
	if r := e.Opx("doctor"); !strings.Contains(r.Stdout+r.Stderr, "5 of 20 reads this hour") {
		t.Errorf("opx doctor does not say what is left:\n%s%s", r.Stdout, r.Stderr)
	}
}
