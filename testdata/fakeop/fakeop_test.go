package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// These tests run the built program as opx runs op: by environment and
// arguments, reading stdout, stderr and the exit code.

var fakeOp string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fakeop-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeOp = filepath.Join(dir, "op")
	if out, err := exec.Command("go", "build", "-o", fakeOp, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fake op: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	tokenA = "ops_eyJzaWduSW5BZGRyZXNzIjoibXkuMXBhc3N3b3JkLmNvbSIsImEiOjF9"
	tokenB = "ops_eyJzaWduSW5BZGRyZXNzIjoibXkuMXBhc3N3b3JkLmNvbSIsImIiOjJ9"
	// byName costs a service account 3 reads, byID 1 (vault and item IDs).
	byName = "op://Private/db/password"
	byID   = "op://vprivate0000000000000000000/idb00000000000000000000000/password"
)

// fakeEnv is one test's op environment: its own state directory and log.
type fakeEnv struct {
	t     *testing.T
	state string
	log   string
	vars  map[string]string
}

func newFakeEnv(t *testing.T, vars ...string) *fakeEnv {
	t.Helper()
	dir := t.TempDir()
	e := &fakeEnv{t: t, state: filepath.Join(dir, "state"), log: filepath.Join(dir, "op.log"), vars: map[string]string{}}
	if err := os.Mkdir(e.state, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		e.vars[k] = v
	}
	return e
}

// op runs the fake op with args and stdin; it returns stdout, stderr and
// the exit code.
func (e *fakeEnv) op(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(fakeOp, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "FAKEOP_FIXTURE=" + filepath.Join(mustGetwd(e.t), "fixture.json"),
		"FAKEOP_STATE=" + e.state, "FAKEOP_LOG=" + e.log}
	for k, v := range e.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// ok runs op and fails the test unless it succeeds.
func (e *fakeEnv) ok(args ...string) string {
	e.t.Helper()
	out, errs, code := e.op("", args...)
	if code != 0 {
		e.t.Fatalf("op %q: exit %d, %s", args, code, errs)
	}
	return out
}

// failure runs op and returns its error message without the "[ERROR] date
// time " prefix, failing the test unless op fails with exit code 1.
func (e *fakeEnv) failure(args ...string) string {
	e.t.Helper()
	out, errs, code := e.op("", args...)
	if code != 1 || out != "" {
		e.t.Fatalf("op %q = %q, exit %d; want a failure", args, out, code)
	}
	m := regexp.MustCompile(`^\[ERROR\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d (.*)\n$`).FindStringSubmatch(errs)
	if m == nil {
		e.t.Fatalf("op %q stderr = %q, want one [ERROR] line", args, errs)
	}
	return m[1]
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// valueFor is the documented rule: the fixture's value, "~", and the first
// 8 hex digits of SHA-256 of the token (of host "\n" token for Connect).
func valueFor(secret, plain string) string {
	sum := sha256.Sum256([]byte(secret))
	return plain + "~" + hex.EncodeToString(sum[:4])
}

func TestConnectTakesPrecedenceOverAServiceAccount(t *testing.T) {
	e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA, "OP_CONNECT_HOST=http://connect.test:8080", "OP_CONNECT_TOKEN=ctoken")
	got := e.ok("read", "-n", byName)
	if want := valueFor("http://connect.test:8080\nctoken", "s3cr3t-db-pass"); got != want {
		t.Errorf("read with Connect and a service account = %q, want %q (Connect's)", got, want)
	}
	if msg := e.failure("whoami"); msg != `unknown command "whoami" for "op"` {
		t.Errorf("whoami with Connect: %q", msg)
	}
	if msg := e.failure("service-account", "ratelimit"); !strings.Contains(msg, "unknown command") {
		t.Errorf("service-account ratelimit with Connect: %q", msg)
	}
}

func TestHalfAConnectConfigurationFails(t *testing.T) {
	for _, v := range []string{"OP_CONNECT_HOST=http://connect.test:8080", "OP_CONNECT_TOKEN=ctoken"} {
		e := newFakeEnv(t, v, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA)
		name, _, _ := strings.Cut(v, "=")
		if msg := e.failure("read", byName); !strings.Contains(msg, name+" is set but") {
			t.Errorf("read with only %s = %q, want it to name the missing variable", name, msg)
		}
	}
}

func TestServiceAccountValuesDifferPerToken(t *testing.T) {
	e := newFakeEnv(t)
	seen := map[string]string{}
	for _, tok := range []string{tokenA, tokenB} {
		e.vars["OP_SERVICE_ACCOUNT_TOKEN"] = tok
		got := e.ok("read", "-n", byName)
		if want := valueFor(tok, "s3cr3t-db-pass"); got != want {
			t.Errorf("read as %s… = %q, want %q", tok[:8], got, want)
		}
		if inj, _, _ := e.op("pw={{ op://Private/db/password }}", "inject"); inj != "pw="+got {
			t.Errorf("inject = %q, want pw=%s", inj, got)
		}
		seen[tok] = got
	}
	if seen[tokenA] == seen[tokenB] {
		t.Errorf("both tokens read %q", seen[tokenA])
	}
	delete(e.vars, "OP_SERVICE_ACCOUNT_TOKEN")
	e.ok("signin")
	if got := e.ok("read", "-n", byName); got != "s3cr3t-db-pass" {
		t.Errorf("desktop read = %q, want the fixture's value", got)
	}
}

func TestServiceAccountRunAndItemGet(t *testing.T) {
	e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA, "PW="+byName)
	want := valueFor(tokenA, "s3cr3t-db-pass")
	if got := e.ok("run", "--no-masking", "--", "sh", "-c", `printf %s "$PW"`); got != want {
		t.Errorf("run = %q, want %q", got, want)
	}
	if got := e.ok("run", "--", "sh", "-c", `printf %s "$PW"`); got != "<concealed by 1Password>" {
		t.Errorf("run, masked = %q", got)
	}
	if msg := e.failure("item", "get", "db"); !strings.Contains(msg, "--vault") {
		t.Errorf("item get without --vault = %q, want it to ask for --vault", msg)
	}
	var item struct {
		Fields []struct{ Label, Value string }
	}
	if err := json.Unmarshal([]byte(e.ok("item", "get", "db", "--vault", "Private", "--format", "json")), &item); err != nil {
		t.Fatal(err)
	}
	for _, f := range item.Fields {
		if f.Label == "password" && f.Value != want {
			t.Errorf("item get password = %q, want %q", f.Value, want)
		}
	}
}

func TestServiceAccountWhoami(t *testing.T) {
	e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA)
	text := e.ok("whoami")
	if !regexp.MustCompile(`^URL: +https://my\.1password\.com\nIntegration ID: +[A-Z2-7]{26}\nUser Type: +SERVICE_ACCOUNT\n$`).MatchString(text) {
		t.Errorf("whoami = %q", text)
	}
	var who map[string]string
	if err := json.Unmarshal([]byte(e.ok("whoami", "--format", "json")), &who); err != nil {
		t.Fatal(err)
	}
	if who["user_type"] != "SERVICE_ACCOUNT" || who["ServiceAccountType"] != "SERVICE_ACCOUNT" || who["url"] != "https://my.1password.com" || who["account_uuid"] != "AMYACCT000000000000000000" || len(who["user_uuid"]) != 26 {
		t.Errorf("whoami --format json = %v", who)
	}
	e.vars["OP_SERVICE_ACCOUNT_TOKEN"] = tokenB
	var other map[string]string
	json.Unmarshal([]byte(e.ok("whoami", "--format", "json")), &other)
	if other["user_uuid"] == who["user_uuid"] {
		t.Errorf("two tokens share user_uuid %s", who["user_uuid"])
	}
}

func TestServiceAccountIgnoresAccount(t *testing.T) {
	e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA, "OP_ACCOUNT=team")
	if got, want := e.ok("--account", "team", "read", "-n", byName), valueFor(tokenA, "s3cr3t-db-pass"); got != want {
		t.Errorf("read --account team = %q, want the default account's %q", got, want)
	}
}

// ratelimit reads op service-account ratelimit --format json as rows by
// "type action".
func ratelimit(t *testing.T, e *fakeEnv) map[string]map[string]int64 {
	t.Helper()
	var rows []struct {
		Type, Action                  string
		Limit, Used, Remaining, Reset int64
	}
	if err := json.Unmarshal([]byte(e.ok("service-account", "ratelimit", "--format", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int64{}
	for _, r := range rows {
		out[r.Type+" "+r.Action] = map[string]int64{"limit": r.Limit, "used": r.Used, "remaining": r.Remaining, "reset": r.Reset}
	}
	return out
}

func TestRatelimitCountsRequests(t *testing.T) {
	e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA)
	if got := ratelimit(t, e)["token read"]; got["used"] != 0 || got["reset"] != 0 || got["limit"] != 1000 {
		t.Errorf("fresh token read row = %v", got)
	}
	steps := []struct {
		args []string
		cost int64
	}{
		{[]string{"read", byName}, 3},
		{[]string{"read", byID}, 1},
		{[]string{"whoami"}, 1},
		{[]string{"inject", "-i", "/dev/null"}, 1},
		{[]string{"service-account", "ratelimit"}, 0},
		{[]string{"item", "get", "idb00000000000000000000000", "--vault", "vprivate0000000000000000000"}, 1},
		{[]string{"item", "get", "db", "--vault", "Private"}, 3},
	}
	var used int64
	for _, s := range steps {
		e.ok(s.args...)
		used += s.cost
		rows := ratelimit(t, e)
		if got := rows["token read"]["used"]; got != used {
			t.Errorf("after op %q: token read used = %d, want %d", s.args, got, used)
		}
		if got := rows["account read_write"]["used"]; got != used {
			t.Errorf("after op %q: account used = %d, want %d", s.args, got, used)
		}
	}
	rows := ratelimit(t, e)
	if r := rows["token read"]; r["remaining"] != 1000-used || r["reset"] < 3500 || r["reset"] > 3600 {
		t.Errorf("token read row = %v", r)
	}
	if r := rows["account read_write"]; r["limit"] != 5000 || r["reset"] < 86300 || r["reset"] > 86400 {
		t.Errorf("account row = %v", r)
	}
	if r := rows["token write"]; r["used"] != 0 || r["limit"] != 100 || r["reset"] != 0 {
		t.Errorf("token write row = %v", r)
	}
	table := e.ok("service-account", "ratelimit")
	want := regexp.MustCompile(`^TYPE +ACTION +LIMIT +USED +REMAINING +RESET\n` +
		`token +write +100 +0 +100 +N/A\n` +
		fmt.Sprintf(`token +read +1000 +%d +%d +59 minutes from now\n`, used, 1000-used) +
		fmt.Sprintf(`account +read_write +5000 +%d +%d +23 hours from now\n$`, used, 5000-used))
	if !want.MatchString(table) {
		t.Errorf("ratelimit table:\n%s", table)
	}
	// Another token has its own hourly count but shares the account's day.
	e.vars["OP_SERVICE_ACCOUNT_TOKEN"] = tokenB
	e.ok("read", byID)
	rows = ratelimit(t, e)
	if rows["token read"]["used"] != 1 || rows["account read_write"]["used"] != used+1 {
		t.Errorf("second token: %v", rows)
	}
}

func TestHourlyLimitRefusesReads(t *testing.T) {
	e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA, "FAKEOP_SA_READ_LIMIT=4")
	e.ok("read", byName) // 3
	e.ok("read", byID)   // 4
	msg := e.failure("read", byID)
	want := regexp.MustCompile(`^\(429\) Too Many Requests: You've reached the maximum number of this type of requests this service account is allowed to make\. Please retry in (59|60) minutes or try other requests\.$`)
	if !want.MatchString(msg) {
		t.Errorf("read past the hourly limit = %q", msg)
	}
	if r := ratelimit(t, e)["token read"]; r["used"] != 4 || r["remaining"] != 0 {
		t.Errorf("refused read counted: %v", r)
	}
	// A read by names that crosses the limit spends what it made.
	e2 := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA, "FAKEOP_SA_READ_LIMIT=2")
	e2.failure("read", byName)
	if r := ratelimit(t, e2)["token read"]; r["used"] != 2 {
		t.Errorf("read by names past the limit: used %d, want 2", r["used"])
	}
	// Another token still reads.
	e.vars["OP_SERVICE_ACCOUNT_TOKEN"] = tokenB
	e.ok("read", byID)
}

func TestHourlyWindowEnds(t *testing.T) {
	e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA, "FAKEOP_SA_READ_LIMIT=1")
	id := valueFor(tokenA, "")[1:]
	old := time.Now().Add(-61 * time.Minute).UnixNano()
	if err := os.WriteFile(filepath.Join(e.state, "sa-"+id+".requests"), []byte(fmt.Sprintf("%d r\n", old)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("read", byID)
	if r := ratelimit(t, e)["token read"]; r["used"] != 1 {
		t.Errorf("a new window: %v", r)
	}
	if r := ratelimit(t, e)["account read_write"]; r["used"] != 2 {
		t.Errorf("the day's window still holds both: %v", r)
	}
}

func TestDailyLimitIsTheAccounts(t *testing.T) {
	e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA, "FAKEOP_SA_DAILY_LIMIT=2")
	e.ok("read", byID)
	e.vars["OP_SERVICE_ACCOUNT_TOKEN"] = tokenB
	e.ok("read", byID)
	msg := e.failure("read", byID)
	if !regexp.MustCompile(`this 1Password account is allowed to make\. Please retry in 23 hours and 59 minutes or try other requests\.$`).MatchString(msg) {
		t.Errorf("read past the daily limit = %q", msg)
	}
}

func TestUnsupportedCommandsFailAsOpDoes(t *testing.T) {
	e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA)
	for _, args := range [][]string{{"signin"}, {"signout"}, {"user", "provision"}, {"group", "list"}, {"connect", "server", "list"}, {"events-api", "create"}} {
		if msg, want := e.failure(args...), fmt.Sprintf("unknown command %q for \"op\"", args[0]); msg != want {
			t.Errorf("op %q = %q, want %q", args, msg, want)
		}
	}
	if _, err := os.Stat(filepath.Join(e.state, "my")); err == nil {
		t.Error("op signin with a service account signed an account in")
	}
	if got := ratelimit(t, e)["token read"]["used"]; got != 0 {
		t.Errorf("refused commands cost %d reads", got)
	}
}

func TestBadTokensFailAsOpDoes(t *testing.T) {
	for _, tok := range []string{"not-a-token", "ops_", "ops_has spaces"} {
		e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tok)
		if msg := e.failure("read", byName); msg != "could not read secret '"+byName+"': error initializing client: Validation: (failed to session.DecodeSACredentials), Server: (failed to DecodeSACredentials), failed to parseToken, format is invalid" {
			t.Errorf("read with token %q = %q", tok, msg)
		}
		if msg := e.failure("whoami"); !strings.HasPrefix(msg, "error initializing client:") {
			t.Errorf("whoami with token %q = %q", tok, msg)
		}
	}
	e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA)
	id := valueFor(tokenA, "")[1:]
	if err := os.WriteFile(filepath.Join(e.state, "revoked-"+id), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := e.failure("whoami"); msg != "(403) Forbidden (Service Account Deleted): The Service Account used in this integration has been deleted." {
		t.Errorf("whoami with a revoked token = %q", msg)
	}
	e.vars["OP_SERVICE_ACCOUNT_TOKEN"] = tokenB
	e.ok("whoami")
}

func TestRatelimitFileStillApplies(t *testing.T) {
	e := newFakeEnv(t, "OP_SERVICE_ACCOUNT_TOKEN="+tokenA)
	if err := os.WriteFile(filepath.Join(e.state, "ratelimit"), []byte("58 minutes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := e.failure("read", byName); !strings.HasSuffix(msg, "Please retry in 58 minutes or try other requests.") {
		t.Errorf("read under a ratelimit file = %q", msg)
	}
	e.ok("service-account", "ratelimit") // asking is free and allowed
}

func TestLogNamesTheIdentityNeverTheToken(t *testing.T) {
	e := newFakeEnv(t)
	e.ok("signin")
	e.ok("whoami")
	e.vars["OP_SERVICE_ACCOUNT_TOKEN"] = tokenA
	e.ok("read", byName)
	e.ok("service-account", "ratelimit")
	e.vars["OP_CONNECT_HOST"], e.vars["OP_CONNECT_TOKEN"] = "http://connect.test:8080", "ctoken-secret"
	e.ok("read", byName)
	b, err := os.ReadFile(e.log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	saID, cID := valueFor(tokenA, "")[1:], valueFor("http://connect.test:8080\nctoken-secret", "")[1:]
	wants := []string{`^\d+ \["signin"\]$`, `^\d+ \["whoami"\]$`, `^\d+ sa=` + saID + ` \["read",`, `^\d+ sa=` + saID + ` \["service-account"`, `^\d+ connect=` + cID + ` \["read",`}
	if len(lines) != len(wants) {
		t.Fatalf("log:\n%s", b)
	}
	for i, w := range wants {
		if !regexp.MustCompile(w).MatchString(lines[i]) {
			t.Errorf("log line %d = %q, want %s", i, lines[i], w)
		}
	}
	filepath.Walk(filepath.Dir(e.log), func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		for _, tok := range []string{tokenA, tokenA[4:], "ctoken-secret"} {
			if bytes.Contains(b, []byte(tok)) || strings.Contains(path, tok) {
				t.Errorf("%s holds a token", path)
			}
		}
		return nil
	})
}

func TestDesktopStaysAsItWas(t *testing.T) {
	e := newFakeEnv(t)
	if msg := e.failure("read", byName); !strings.Contains(msg, "not currently signed in") {
		t.Errorf("read signed out = %q", msg)
	}
	if msg := e.failure("service-account", "ratelimit"); msg != `unknown command "service-account" for "op"` {
		t.Errorf("service-account ratelimit as a desktop account = %q", msg)
	}
	e.ok("signin")
	if got := e.ok("whoami"); !strings.Contains(got, "User Type:  HUMAN") {
		t.Errorf("whoami = %q", got)
	}
	if entries, _ := os.ReadDir(e.state); len(entries) != 1 {
		t.Errorf("state after desktop use: %v, want the sign-in file only", entries)
	}
}

// A locked app fails every command of an account signed in through it, as
// op does when the app does not authorize it, until the app is unlocked;
// an account the file does not name, and a service account, go on.
func TestLockedAppFailsAsOpDoes(t *testing.T) {
	e := newFakeEnv(t)
	e.ok("signin")
	e.ok("--account", "team", "signin")
	lock := filepath.Join(e.state, "locked")
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const timeout = "error initializing client: authorization timeout"
	if msg, want := e.failure("read", byName), "could not read secret '"+byName+"': "+timeout; msg != want {
		t.Errorf("read while locked = %q, want %q", msg, want)
	}
	for _, args := range [][]string{{"whoami"}, {"inject"}, {"--account", "my", "item", "get", "db"}} {
		if msg := e.failure(args...); msg != timeout {
			t.Errorf("op %q while locked = %q, want %q", args, msg, timeout)
		}
	}
	e.ok("--version")
	// A file that names accounts locks those alone.
	if err := os.WriteFile(lock, []byte("team\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := e.failure("--account", "team", "read", byName); !strings.HasSuffix(msg, timeout) {
		t.Errorf("team read while team's app is locked = %q", msg)
	}
	if got := e.ok("read", byName); got != "s3cr3t-db-pass\n" {
		t.Errorf("read of an account the locked app does not hold = %q", got)
	}
	e.vars["OP_SERVICE_ACCOUNT_TOKEN"] = tokenA
	e.ok("read", byName)
	delete(e.vars, "OP_SERVICE_ACCOUNT_TOKEN")
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	if got := e.ok("read", byName); got != "s3cr3t-db-pass\n" {
		t.Errorf("read once unlocked = %q", got)
	}
}
