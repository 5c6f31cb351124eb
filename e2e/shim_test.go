//go:build unix

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/e2e/harness"
)

// shimEnv is an opcli env whose PATH starts with a directory holding opx
// as op, then the fake op (the "real" op the shim passes to). Its clients
// and daemon are one plain-built opx: a shim test starts many clients, and
// the daemon's side of their requests is raced by the read tests.
func shimEnv(t *testing.T) (e *testEnv, shims string) {
	return shimEnvOf(t, harness.Bins().Opx)
}

// shimEnvOf is shimEnv with prog as the one opx (harness.Env.OneBuild).
func shimEnvOf(t *testing.T, prog string) (e *testEnv, shims string) {
	e = newOPEnv(t)
	e.OneBuild(prog)
	e.SignIn("my")
	shims = filepath.Join(e.Dir, "shims")
	os.Mkdir(shims, 0o700)
	if err := os.Symlink(e.Client, filepath.Join(shims, "op")); err != nil {
		t.Fatal(err)
	}
	realOP := filepath.Join(e.Dir, "realop")
	os.Mkdir(realOP, 0o700)
	if err := os.Symlink(harness.Bins().FakeOp, filepath.Join(realOP, "op")); err != nil {
		t.Fatal(err)
	}
	e.Vars["PATH"] = shims + string(os.PathListSeparator) + realOP + string(os.PathListSeparator) + e.Vars["PATH"]
	return e, shims
}

// runOP runs `op ARGS` with stdin: through the shim (op found first on
// PATH), or the fake op itself.
func (e *testEnv) runOP(prog, stdin string, args ...string) harness.Result {
	e.T.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Args[0] = "op"
	cmd.Env = e.Environ()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.T.Fatalf("run op %v: %v", args, err)
	}
	return harness.Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

var opTimestamp = regexp.MustCompile(`\[ERROR\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d `)

// Every form opx serves as op, and a few it passes on, give the fake op's
// bytes: stdout, stderr (timestamps aside) and exit status; on success
// nothing at all on stderr.
func TestOPShimMatchesOP(t *testing.T) {
	t.Parallel()
	e, shims := shimEnv(t)
	e.StartDaemon("")
	shim := filepath.Join(shims, "op")
	tmpl := filepath.Join(e.Dir, "tmpl")
	os.WriteFile(tmpl, []byte("user={{ op://Private/db/username }}\npass=op://Private/db/password\n"), 0o600)
	envFile := filepath.Join(e.Dir, "app.env")
	os.WriteFile(envFile, []byte("# app\nUSER_NAME=op://Private/db/username\nPLAIN=\"not secret\"\n"), 0o600)
	e.Vars["DB_PASS"] = "op://Private/db/password"
	e.Vars["VAULT_REF"] = "vault://secret/app#k" // op run leaves it alone
	for _, tc := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"read", "op://Private/db/password"}},
		{"", []string{"read", "-n", "op://Private/db/password"}},
		{"", []string{"read", "op://Private/db/password", "--no-newline"}},
		{"", []string{"--account", "my", "read", "op://Private/Multi Line Note/notesPlain"}},
		{"", []string{"read", "op://Private/db/username", "--account=team"}},
		{"", []string{"read", "--", "op://Private/db/username"}},
		{"db: {{ op://Private/db/password }}\n", []string{"inject"}},
		{"", []string{"inject", "-i", tmpl}},
		{"", []string{"inject", "--in-file=" + tmpl, "--account", "my"}},
		{"", []string{"run", "--", "printenv", "DB_PASS"}},
		{"", []string{"run", "--no-masking", "--", "printenv", "DB_PASS"}},
		{"", []string{"run", "--env-file", envFile, "--", "sh", "-c", `echo "$USER_NAME and $PLAIN, $VAULT_REF"; echo "$DB_PASS" >&2`}},
		{"", []string{"--account=my", "run", "--env-file=" + envFile, "--", "sh", "-c", "exit 3"}},
		{"", []string{"read", "op://Private/db/password", "--cache", "-n"}},
		{"vault: {{ vault://secret/app#k }} op: {{ op://Private/db/username }}\n", []string{"inject", "--cache=false"}},
		{"", []string{"run", "printenv", "--", "DB_PASS"}},
		// Failures, in op's words.
		{"", []string{"read", "op://Private/no such item/password"}},
		{"", []string{"read", "op://Private/db/no-such-field"}},
		{"", []string{"read", "not-a-ref"}},
		{"", []string{"read"}},
		// Passed on to the real op.
		{"", []string{"whoami"}},
		{"", []string{"--version"}},
		{"", []string{"read", "--bogus", "op://Private/db/password"}},
		{"", []string{"read", "--format", "json", "op://Private/db/password"}},
		{"", []string{"item", "get", "db"}},
	} {
		got := e.runOP(shim, tc.stdin, tc.args...)
		want := e.runOP(harness.Bins().FakeOp, tc.stdin, tc.args...)
		if got.Stdout != want.Stdout || got.Code != want.Code ||
			opTimestamp.ReplaceAllString(got.Stderr, "") != opTimestamp.ReplaceAllString(want.Stderr, "") {
			t.Errorf("op %q:\n shim = %+v\n op   = %+v", tc.args, got, want)
		}
		if got.Code == 0 && got.Stderr != "" && tc.args[0] != "run" { // a run's stderr is the command's
			t.Errorf("op %q printed on stderr on success: %q", tc.args, got.Stderr)
		}
	}
	if r := e.runOP(shim, "", "run", "--", "printenv", "DB_PASS"); r.Stdout != "<concealed by 1Password>\n" {
		t.Errorf("op run through the shim = %+v, want the value concealed", r)
	}
	if r := e.runOP(shim, "", "run", "--no-masking", "--", "printenv", "DB_PASS"); r.Stdout != "s3cr3t-db-pass\n" {
		t.Errorf("op run --no-masking through the shim = %+v", r)
	}
	e.Vars["OP_RUN_NO_MASKING"] = "false"
	if r := e.runOP(shim, "", "run", "--", "printenv", "DB_PASS"); r.Stdout != "<concealed by 1Password>\n" {
		t.Errorf("op run with OP_RUN_NO_MASKING=false = %+v, want the value concealed", r)
	}
	delete(e.Vars, "OP_RUN_NO_MASKING")
	// --out-file writes what op writes, with its mode.
	for _, prog := range []string{shim, harness.Bins().FakeOp} {
		out := filepath.Join(e.Dir, filepath.Base(filepath.Dir(prog))+".out")
		if r := e.runOP(prog, "", "read", "-o", out, "--file-mode", "0640", "op://Private/db/password"); r.Code != 0 || r.Stderr != "" {
			t.Errorf("%s read -o = %+v", prog, r)
		}
		b, _ := os.ReadFile(out)
		if string(b) != "s3cr3t-db-pass\n" || mode(t, out) != 0o640 && prog == shim {
			t.Errorf("%s read -o wrote %q, mode %o", prog, b, mode(t, out))
		}
	}
}

// A PATH with the shim and no real op: no loop. The pass-through fails as
// a shell would (127), and the daemon's 1Password backend, looking op up
// on its PATH, never runs opx.
func TestOPShimWithoutRealOP(t *testing.T) {
	t.Parallel()
	e, shims := shimEnv(t)
	e.Vars["PATH"] = shims + string(os.PathListSeparator) + "/usr/bin:/bin"
	delete(e.Vars, "OPX_OP_PATH")
	e.StartDaemon("")
	shim := filepath.Join(shims, "op")
	done := make(chan [2]harness.Result, 1)
	go func() {
		done <- [2]harness.Result{e.runOP(shim, "", "whoami"), e.runOP(shim, "", "read", "op://Private/db/password")}
	}()
	select {
	case r := <-done:
		if r[0].Code != 127 || !strings.Contains(r[0].Stderr, "op: command not found") {
			t.Errorf("op whoami with only the shim = %+v", r[0])
		}
		if r[1].Code != 1 || !strings.Contains(r[1].Stderr, "opx's own shim") {
			t.Errorf("op read with only the shim = %+v", r[1])
		}
	case <-time.After(60 * time.Second):
		t.Fatal("op through the shim did not finish: it loops")
	}
	if calls := e.OpCalls(); len(calls) != 0 {
		t.Errorf("the fake op ran: %q", calls)
	}
}

// opx shim install links op to opx where a real op exists, says which op
// gets the rest and the PATH line for each shell; status and doctor say
// the same; uninstall removes only the link.
func TestShimInstallStatusUninstall(t *testing.T) {
	t.Parallel()
	e, _ := shimEnv(t)
	dir := filepath.Join(e.Dir, "my shims")
	out := e.MustOpx("shim", "install", dir)
	realOP := filepath.Join(e.Dir, "realop", "op")
	for _, want := range []string{filepath.Join(dir, "op") + " -> opx", "go to " + realOP, `export PATH='` + dir + `':"$PATH"`, "fish_add_path --prepend '" + dir + "'"} {
		if !strings.Contains(out, want) {
			t.Errorf("shim install lacks %q:\n%s", want, out)
		}
	}
	if got, err := os.Readlink(filepath.Join(dir, "op")); err != nil || !strings.HasSuffix(got, "opx") {
		t.Errorf("op link = %q, %v", got, err)
	}
	if out := e.MustOpx("shim", "status", dir); !strings.Contains(out, "op: shimmed at "+filepath.Join(dir, "op")) ||
		!strings.Contains(out, "the rest goes to "+realOP) {
		t.Errorf("shim status:\n%s", out)
	}
	os.WriteFile(filepath.Join(dir, "keep"), nil, 0o600)
	e.MustOpx("shim", "uninstall", dir)
	if _, err := os.Lstat(filepath.Join(dir, "op")); err == nil {
		t.Error("shim uninstall left the op link")
	}
	if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
		t.Error("shim uninstall removed another file")
	}
	// A user's own op in the directory is never replaced.
	mine := filepath.Join(e.Dir, "mine")
	os.Mkdir(mine, 0o700)
	os.Symlink(realOP, filepath.Join(mine, "op"))
	if r := e.Opx("shim", "install", mine); r.Code != 1 || !strings.Contains(r.Stderr, "is not opx") {
		t.Errorf("shim install over the user's own op = %+v", r)
	}
	if got, _ := os.Readlink(filepath.Join(mine, "op")); got != realOP {
		t.Errorf("the user's op link now points to %q", got)
	}
	// Without a real op, nothing is linked unless asked.
	e.Vars["PATH"] = "/usr/bin:/bin"
	if out := e.MustOpx("shim", "install", filepath.Join(e.Dir, "none")); !strings.Contains(out, "op: not linked") || !strings.Contains(out, "vault: not linked") {
		t.Errorf("shim install without op or vault:\n%s", out)
	}
	// Names asked for are linked without their real program; the others
	// are left alone.
	named := filepath.Join(e.Dir, "named")
	out = e.MustOpx("shim", "install", named, "--name=vault,bao")
	if !strings.Contains(out, "no real vault: only vault kv get and vault read") {
		t.Errorf("shim install --name=vault,bao:\n%s", out)
	}
	for name, want := range map[string]bool{"vault": true, "bao": true, "op": false} {
		if _, err := os.Lstat(filepath.Join(named, name)); (err == nil) != want {
			t.Errorf("after --name=vault,bao, %s linked: %v, want %v", name, err == nil, want)
		}
	}
	if out := e.MustOpx("shim", "status", named); !strings.Contains(out, "vault: shimmed at "+filepath.Join(named, "vault")) || !strings.Contains(out, "op: not shimmed") {
		t.Errorf("shim status:\n%s", out)
	}
}

// A read through the op shim is judged, and recorded, as a read by the
// program that ran op: the shim is the opx client.
func TestOPShimPolicyJudgesTheProgramThatRanOP(t *testing.T) {
	t.Parallel()
	a, b := buildHelpers(t)
	e, shims := shimEnvOf(t, harness.Bins().Daemon)
	e.writePolicy(`{"allow": [{"path": "` + a + `", "refs": ["op://Private/*"]}], "default_deny": true}`)
	e.StartDaemon("", "--enable-audit-log")
	ref := "op://Private/db/password"
	viaShim := func(prog string) harness.Result {
		return e.helperEnv([]string{"OPX_BIN=" + filepath.Join(shims, "op")}, prog, "read", ref)
	}
	if r := viaShim(a); r.Code != 0 || r.Stdout != "s3cr3t-db-pass\n" || r.Stderr != "" {
		t.Errorf("allowed program through the shim: %+v", r)
	}
	r := viaShim(b)
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "[ERROR] ") || !strings.Contains(r.Stderr, b) || !strings.Contains(r.Stderr, "may not read") {
		t.Errorf("denied program through the shim: %+v", r)
	}
	logs, _ := filepath.Glob(filepath.Join(e.DataDir, "audit-*.log"))
	var audit string
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		audit += string(data)
	}
	if !strings.Contains(audit, `"Path":"`+a+`"`) || !strings.Contains(audit, `"Path":"`+b+`"`) || !strings.Contains(audit, "parent of the opx client") {
		t.Errorf("the audit log does not name the programs that ran op:\n%s", audit)
	}
}

// With no daemon to ask (none running, autostart off), the shim hands op
// read to the real op rather than failing.
func TestOPShimFallsBackWithoutDaemon(t *testing.T) {
	t.Parallel()
	e, shims := shimEnv(t)
	e.Vars["OPX_AUTOSTART"] = "0"
	r := e.runOP(filepath.Join(shims, "op"), "", "read", "op://Private/db/password")
	if r.Code != 0 || r.Stdout != "s3cr3t-db-pass\n" || r.Stderr != "" {
		t.Errorf("op read through the shim with no daemon = %+v, want the real op's answer", r)
	}
	if calls := e.OpCalls(); len(calls) != 1 {
		t.Errorf("op processes: %q, want the real op's one", calls)
	}
}

// An op on the daemon's PATH that is opx but not recognised as such (a
// copy, as after an upgrade under a running daemon) never asks the daemon
// back: run by the daemon, it passes straight to the real op.
func TestOPShimNotRecognisedDoesNotLoop(t *testing.T) {
	t.Parallel()
	e, _ := shimEnv(t)
	copyDir := filepath.Join(e.Dir, "copy")
	os.Mkdir(copyDir, 0o700)
	data, err := os.ReadFile(e.Client)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(copyDir, "opx"), data, 0o700)
	os.Symlink(filepath.Join(copyDir, "opx"), filepath.Join(copyDir, "op"))
	e.Vars["PATH"] = copyDir + string(os.PathListSeparator) + filepath.Join(e.Dir, "realop") + ":/usr/bin:/bin"
	delete(e.Vars, "OPX_OP_PATH")
	e.StartDaemon("")
	done := make(chan harness.Result, 1)
	go func() { done <- e.Opx("read", "op://Private/db/password") }()
	select {
	case r := <-done:
		if r.Code != 0 || r.Stdout != "s3cr3t-db-pass\n" {
			t.Errorf("read through an unrecognised opx-as-op = %+v", r)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon's op ran opx in a loop")
	}
}

// A daemon whose settings differ from this environment's (here: the fake
// backend, while the environment asks for op) is not asked: the shim may
// not warn, so the real op answers.
func TestOPShimSkipsAMismatchedDaemon(t *testing.T) {
	t.Parallel()
	e, shims := shimEnv(t)
	e.StartDaemon("", "--backend=fake")
	e.Vars["OP_AUTHD_BACKEND"] = "opcli"
	for _, args := range [][]string{{"read", "op://Private/db/password"}, {"run", "--no-masking", "--", "printenv", "DB"}} {
		e.Vars["DB"] = "op://Private/db/password"
		r := e.runOP(filepath.Join(shims, "op"), "", args...)
		if r.Code != 0 || r.Stdout != "s3cr3t-db-pass\n" || r.Stderr != "" {
			t.Errorf("op %q with a fake-backend daemon running = %+v, want the real op's value", args, r)
		}
	}
}
