//go:build unix

package e2e

// Tests of the 1Password backend, through the real daemon and the fake op
// program in testdata/fakeop.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/e2e/harness"
)

var opForms = []struct{ ref, want string }{
	{"op://Private/db/password", "s3cr3t-db-pass"},
	{"op://Private/db/username", "app"},
	{"op://Private/Multi Line Note/notesPlain", "line one\nline two\n\nline four with trailing spaces   \n"},
	{"op://Private/Multi Line Note/Section 1/api key", "key in a section"},
	{"op://Private/Multi Line Note/Section 1/unicode", "naïve ✓ 日本語 🚀"},
	{"op://Private/Multi Line Note/Section 1/empty", ""},
	{"op://Private/Multi Line Note/Section 1/spaces", "  padded  "},
	{"op://Work Vault/API Token/credential", "work-api-token"},
	{"op://Private/db/password?attribute=type", "concealed"},
}

func TestOPEveryRefFormByteExact(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.StartDaemon("")
	var refs []string
	var want strings.Builder
	for _, f := range opForms {
		refs = append(refs, f.ref)
		want.WriteString(f.want + "\n")
	}
	sshRef := "op://Private/deploy key/private key?ssh-format=openssh"
	sshWant := e.OpDirect("read", "-n", sshRef)
	refs = append(refs, sshRef)
	want.WriteString(sshWant + "\n")
	// All at once: one op inject for the two refs its template syntax can
	// hold whole, and one op read for each of the 8 others (spaces, '=').
	if out := e.MustOpx(append([]string{"read"}, refs...)...); out != want.String() {
		t.Errorf("batch read =\n%q\nwant\n%q", out, want.String())
	}
	calls := e.OpCalls()
	injects := 0
	for _, c := range calls {
		if slices.Contains(c, "inject") {
			injects++
		}
	}
	if len(calls) != 9 || injects != 1 {
		t.Errorf("%d op processes (%d inject) for one batch, want 9 (1 inject): %q", len(calls), injects, calls)
	}
	// One by one, uncached (a fresh daemon), through op read.
	e.StopDaemon()
	f := newOPEnv(t)
	f.SignIn("my")
	f.StartDaemon("")
	for _, fm := range append(opForms, struct{ ref, want string }{sshRef, sshWant}) {
		if out := f.MustOpx("read", "-n", fm.ref); out != fm.want {
			t.Errorf("opx read -n %q = %q, want %q", fm.ref, out, fm.want)
		}
	}
	if !strings.Contains(sshWant, "BEGIN OPENSSH PRIVATE KEY") {
		t.Errorf("ssh-format=openssh gave %.40q", sshWant)
	}
}

func TestOPOneTimePasswordNotServedPastItsStep(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.StartDaemon("", "--ttl=10m")
	hc, token := e.RawClient()
	ref := "op://Private/GitHub/one-time password?attribute=otp"
	for i := range 2 {
		status, body := harness.Request(t, hc, token, "POST", "/v1/read", strings.NewReader(`{"ref":"`+ref+`"}`))
		now := time.Now()
		var r api.ReadResult
		if status != 200 || json.Unmarshal([]byte(body), &r) != nil {
			t.Fatalf("read otp: %d %s", status, body)
		}
		if len(r.Value) != 6 {
			t.Errorf("otp = %q, want 6 digits", r.Value)
		}
		left := 30 - now.Unix()%30
		if r.ExpiresInSeconds > left+1 {
			t.Errorf("read %d: otp expires in %d s, past its step (%d s left)", i, r.ExpiresInSeconds, left)
		}
	}
}

func TestOPFiftyRefsOneProcess(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.StartDaemon("")
	args := []string{"read"}
	var want strings.Builder
	for i := range 50 {
		args = append(args, fmt.Sprintf("op://Bulk/item%02d/value", i))
		fmt.Fprintf(&want, "bulk-value-%02d\n", i)
	}
	if out := e.MustOpx(args...); out != want.String() {
		t.Fatalf("read of 50 refs = %q", out)
	}
	calls := e.OpCalls()
	if len(calls) != 1 || calls[0][len(calls[0])-1] != "inject" {
		t.Errorf("op processes = %v, want exactly one inject", calls)
	}
}

// Concurrent opx read processes of distinct refs share op processes: the
// daemon gathers their misses into one batch while an op call is out.
// (Concurrent reads of one ref share one call whatever the backend, as the
// daemon's table of fetches in flight joins them: TestReadsShareBackendCalls.)
func TestOPConcurrentProcessesShareProcesses(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	// Long enough for twenty clients to reach the daemon while the first
	// op call is out, however loaded the machine.
	e.Vars["FAKEOP_DELAY"] = "5s"
	e.StartDaemon("")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if r := e.Opx("read", fmt.Sprintf("op://Bulk/item%02d/value", i)); r.Code != 0 {
				t.Errorf("reader %d: %+v", i, r)
			}
		})
	}
	wg.Wait()
	if n := len(e.OpCalls()); n > 2 {
		t.Errorf("20 processes with distinct refs made %d op processes, want at most 2", n)
	}
}

func TestOPOneBadRefAmongTwenty(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.StartDaemon("")
	refs := []string{}
	for i := range 19 {
		refs = append(refs, fmt.Sprintf("op://Bulk/item%02d/value", i))
	}
	bad := "op://Bulk/no such item/value"
	refs = append(refs[:7], append([]string{bad}, refs[7:]...)...)
	r := e.Opx(append([]string{"read"}, refs...)...)
	if r.Code != 1 || r.Stdout != "" || strings.Count(r.Stderr, "opx: error:") != 1 ||
		!strings.Contains(r.Stderr, "opx: error: "+bad+": ") || !strings.Contains(r.Stderr, "isn't an item") {
		t.Fatalf("opx read with one bad ref = %+v", r)
	}
	// The good 19 were cached by that read: /v1/reads now serves them from
	// the cache and reports the bad one alone.
	hc, token := e.RawClient()
	body, _ := json.Marshal(api.ReadsRequest{Refs: refs})
	status, resp := harness.Request(t, hc, token, "POST", "/v1/reads", strings.NewReader(string(body)))
	var res api.ReadsResponse
	if status != 200 || json.Unmarshal([]byte(resp), &res) != nil {
		t.Fatalf("/v1/reads: %d %s", status, resp)
	}
	if len(res.Results) != 19 || len(res.Errors) != 1 || res.Errors[bad] == nil || res.Errors[bad].Code != api.CodeNotFound {
		t.Fatalf("/v1/reads: %d results, errors %v; want 19 and one not_found", len(res.Results), res.Errors)
	}
	for ref, rr := range res.Results {
		if !rr.FromCache {
			t.Errorf("%s was not served from the cache", ref)
		}
	}
	if strings.Contains(resp, "bulk-value") && strings.Contains(res.Errors[bad].Message, "bulk-value") {
		t.Error("an error message holds a value")
	}
}

func TestOPTwoAccounts(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my", "team")
	e.StartDaemon("")
	if out := e.MustOpx("--account", "my", "read", "op://Private/db/password"); out != "s3cr3t-db-pass\n" {
		t.Errorf("account my = %q", out)
	}
	if out := e.MustOpx("read", "--account=team", "op://Private/db/password"); out != "team-db-pass\n" {
		t.Errorf("account team = %q", out)
	}
	if st := e.Status(); st.CacheSize != 2 {
		t.Errorf("cache size = %d, want an entry per account", st.CacheSize)
	}
	for _, c := range e.OpCalls() {
		if c[0] != "--account=my" && c[0] != "--account=team" {
			t.Errorf("op called without the request's account: %v", c)
		}
	}
}

func TestOPNothingBecomesAFlag(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.StartDaemon("")
	for _, args := range [][]string{
		{"read", "--", "-n"},
		{"read", "--", "--account=team"},
		{"read", "--account=-x", "op://Private/db/password"},
		{"read", "--account=--help", "op://Private/db/password"},
		{"read", "--account", "my --format=json", "op://Private/db/password"},
	} {
		if r := e.Opx(args...); r.Code != 1 || !strings.Contains(r.Stderr, "bad_request") && !strings.Contains(r.Stderr, "account may not") {
			t.Errorf("opx %q = %+v, want a bad_request", args, r)
		}
	}
	if calls := e.OpCalls(); len(calls) != 0 {
		t.Errorf("op was started for refused input: %v", calls)
	}
	e.MustOpx("read", "op://Private/db/password")
	for _, c := range e.OpCalls() {
		if c[0] != "read" || c[1] != "--" || c[2] != "op://Private/db/password" {
			t.Errorf("op argv = %q, want read -- REF", c)
		}
	}
}

// fakeOpPIDs lists live fake op processes started for this env.
func (e *testEnv) fakeOpPIDs() []int {
	var pids []int
	for _, c := range e.opLogPIDs() {
		if harness.Alive(c) {
			pids = append(pids, c)
		}
	}
	return pids
}

func (e *testEnv) opLogPIDs() []int {
	b, _ := os.ReadFile(e.Vars["FAKEOP_LOG"])
	var pids []int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			if pid, err := strconv.Atoi(f[0]); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func TestOPHangingIsATimeoutWithNoLeak(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.Vars["FAKEOP_DELAY"] = "1h"
	e.StartDaemon("", "--backend-timeout=1s")
	r := e.Opx("read", "op://Private/db/password", "op://Private/db/username")
	if r.Code != 1 || strings.Count(r.Stderr, "backend_timeout") != 2 {
		t.Fatalf("read from a hanging op = %+v", r)
	}
	time.Sleep(300 * time.Millisecond)
	if pids := e.fakeOpPIDs(); len(pids) != 0 {
		t.Errorf("op processes left running after the timeout: %v", pids)
	}
	if n := len(e.opLogPIDs()); n != 1 {
		t.Errorf("%d op processes, want 1 (a timed-out inject is not retried per ref)", n)
	}
}

func TestOPKilledMidRead(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.Vars["FAKEOP_DELAY"] = "5s"
	e.StartDaemon("")
	done := make(chan harness.Result, 1)
	go func() { done <- e.Opx("read", "op://Private/db/password") }()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.opLogPIDs()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	pids := e.opLogPIDs()
	if len(pids) != 1 {
		t.Fatalf("op did not start: %v", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	r := <-done
	if r.Code != 1 || !strings.Contains(r.Stderr, "killed") || !strings.Contains(r.Stderr, "backend_error") {
		t.Errorf("read whose op was killed = %+v", r)
	}
}

// With the daemon's defaults (--lock-on-auth-failure is on), op's "not
// signed in" locks the account's reads until opx unlock, which asks op.
func TestOPNotSignedInLocksAndUnlockValidates(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.StartDaemon("")
	r := e.Opx("read", "op://Private/db/password")
	if r.Code != 1 || !strings.Contains(r.Stderr, "not currently signed in") || strings.Count(r.Stderr, "opx login 1password") != 1 {
		t.Fatalf("read while signed out = %+v, want the sign-in command once", r)
	}
	st := e.Status()
	if len(st.Session.LockedAccounts) != 1 || st.Session.LockedAccounts[0].Account != "" || !st.Settings.LockOnAuthFailure {
		t.Fatalf("locked accounts = %+v (lock on auth failure %v) after an auth failure with the defaults", st.Session.LockedAccounts, st.Settings.LockOnAuthFailure)
	}
	// Locked: no op process is started for the account until unlock.
	before := len(e.opLogPIDs())
	if r := e.Opx("read", "op://Private/db/password"); r.Code != 1 || !strings.Contains(r.Stderr, "session_locked") ||
		!strings.Contains(r.Stderr, "the default account") || strings.Count(r.Stderr, "opx unlock") != 1 {
		t.Errorf("read of a locked account = %+v", r)
	}
	if n := len(e.opLogPIDs()); n != before {
		t.Errorf("a read of a locked account ran op (%d processes, was %d)", n, before)
	}
	if r := e.Opx("unlock"); r.Code != 1 || !strings.Contains(r.Stderr, "unlock failed") || !strings.Contains(r.Stderr, "signed in") {
		t.Errorf("unlock while signed out = %+v, want a refusal from op whoami", r)
	}
	e.SignIn("my")
	e.MustOpx("unlock")
	if out := e.MustOpx("read", "op://Private/db/password"); out != "s3cr3t-db-pass\n" {
		t.Errorf("read after sign-in and unlock = %q", out)
	}
}

// An auth failure of a secondary account locks only that account's reads:
// the default account goes on, every message names the account, and unlock
// checks only it.
func TestOPSecondaryAccountLocksAlone(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.StartDaemon("")
	if out := e.MustOpx("read", "op://Private/db/password"); out != "s3cr3t-db-pass\n" {
		t.Fatalf("default account read = %q", out)
	}
	r := e.Opx("--account", "team", "read", "op://Private/db/password")
	if r.Code != 1 || !strings.Contains(r.Stderr, "opx login 1password --account team") {
		t.Fatalf("read for the signed-out team account = %+v, want the account's sign-in command", r)
	}
	r = e.Opx("--account", "team", "read", "op://Private/db/password")
	if r.Code != 1 || !strings.Contains(r.Stderr, "account team") || !strings.Contains(r.Stderr, "opx login 1password --account team") {
		t.Errorf("second read for the locked team account = %+v", r)
	}
	// The default account is not locked, and its cached value is kept.
	calls := e.Status().BackendCalls
	if out := e.MustOpx("read", "op://Private/db/password"); out != "s3cr3t-db-pass\n" {
		t.Errorf("default account read after team's lock = %q", out)
	}
	st := e.Status()
	if st.BackendCalls != calls {
		t.Errorf("the default account's cached value was dropped (%d backend calls, was %d)", st.BackendCalls, calls)
	}
	if st.Session.State != "unlocked" || len(st.Session.LockedAccounts) != 1 || st.Session.LockedAccounts[0].Account != "team" {
		t.Errorf("session %+v, want unlocked with account team locked", st.Session)
	}
	if out := e.MustOpx("status"); !strings.Contains(out, "account team locked") {
		t.Errorf("status does not name the locked account:\n%s", out)
	}
	// unlock checks team alone (the default account is not asked again) and
	// names it while it is signed out.
	before := len(e.opLogPIDs())
	if r := e.Opx("unlock"); r.Code != 1 || !strings.Contains(r.Stderr, "account team") {
		t.Errorf("unlock with team signed out = %+v", r)
	}
	if n := len(e.opLogPIDs()) - before; n != 1 {
		t.Errorf("unlock ran op %d times, want 1 (team's whoami)", n)
	}
	e.SignIn("team")
	if out := e.MustOpx("unlock"); !strings.Contains(out, "account team unlocked") {
		t.Errorf("unlock after team signed in = %q", out)
	}
	if out := e.MustOpx("--account", "team", "read", "op://Private/db/password"); out != "team-db-pass\n" {
		t.Errorf("team read after unlock = %q", out)
	}
	if st := e.Status(); len(st.Session.LockedAccounts) != 0 {
		t.Errorf("locked accounts after unlock: %+v", st.Session.LockedAccounts)
	}
	// A manual lock with team signed out again: unlock opens the session
	// for the default account and keeps team locked, naming it.
	e.SignOut("team")
	e.MustOpx("lock")
	r = e.Opx("unlock")
	if r.Code != 1 || !strings.Contains(r.Stderr, "session unlocked, but still locked: account team") {
		t.Errorf("unlock with one of two accounts signed out = %+v", r)
	}
	if out := e.MustOpx("read", "op://Private/db/password"); out != "s3cr3t-db-pass\n" {
		t.Errorf("default account read after a partial unlock = %q", out)
	}
	if r := e.Opx("--account", "team", "read", "op://Private/db/password"); r.Code != 1 || !strings.Contains(r.Stderr, "session_locked") {
		t.Errorf("team read after a partial unlock = %+v", r)
	}
}

func TestOPLogin(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.Vars["FAKEOP_PASSWORD"] = "correct horse"
	cmd := exec.Command(harness.Bins().Opx, "login", "1password", "--account", "team")
	cmd.Env = e.Environ()
	cmd.Stdin = strings.NewReader("wrong\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "op signin failed") {
		t.Errorf("login with a wrong password: %v\n%s", err, out)
	}
	cmd = exec.Command(harness.Bins().Opx, "login", "1password", "--account", "team")
	cmd.Env = e.Environ()
	cmd.Stdin = strings.NewReader("correct horse\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "signed in to 1Password as me@team.example") {
		t.Fatalf("login: %v\n%s", err, out)
	}
	cfg, err := os.ReadFile(filepath.Join(e.ConfigDir, "config.json"))
	if err != nil || !strings.Contains(string(cfg), `"account": "team"`) {
		t.Fatalf("config.json = %s, %v", cfg, err)
	}
	if m := mode(t, filepath.Join(e.ConfigDir, "config.json")); m != 0o600 {
		t.Errorf("config.json mode %o", m)
	}
	// The recorded account is the default from now on.
	if out := e.MustOpx("read", "op://Private/db/password"); out != "team-db-pass\n" {
		t.Errorf("read after login = %q, want the team account's value", out)
	}
	// Another account: the change of default is said; --no-default keeps it.
	cmd = exec.Command(harness.Bins().Opx, "login", "1password", "--account", "my", "--no-default")
	cmd.Env = e.Environ()
	cmd.Stdin = strings.NewReader("correct horse\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "the default account stays team") {
		t.Errorf("login --no-default: %v\n%s", err, out)
	}
	if cfg, _ := os.ReadFile(filepath.Join(e.ConfigDir, "config.json")); !strings.Contains(string(cfg), `"account": "team"`) {
		t.Errorf("--no-default changed config.json: %s", cfg)
	}
	cmd = exec.Command(harness.Bins().Opx, "login", "1password", "--account", "my")
	cmd.Env = e.Environ()
	cmd.Stdin = strings.NewReader("correct horse\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "default account changes from team to my") {
		t.Errorf("login with another account: %v\n%s", err, out)
	}
}

// op installed after the daemon started is found at the next read: the
// daemon looks it up on PATH for every call, not once.
func TestOPFoundOnceInstalled(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	bin := filepath.Join(e.Dir, "bin")
	os.Mkdir(bin, 0o700)
	delete(e.Vars, "OPX_OP_PATH")
	e.Vars["PATH"] = bin + string(os.PathListSeparator) + e.Vars["PATH"]
	e.StartDaemon("")
	r := e.Opx("read", "op://Private/db/username")
	if r.Code != 1 || !strings.Contains(r.Stderr, "not found") {
		t.Fatalf("without op: exit %d, stderr %q", r.Code, r.Stderr)
	}
	data, err := os.ReadFile(harness.Bins().FakeOp)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bin, "op"), data, 0o700)
	if out := e.MustOpx("read", "op://Private/db/username"); out != "app\n" {
		t.Errorf("after installing op: %q", out)
	}
}
