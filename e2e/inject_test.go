//go:build unix

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opxhq/opx/e2e/harness"
)

// Templates written for op inject render the same through opx inject as
// through the fake op, which follows 1Password's documented template syntax
// with an implementation of its own: the same bytes, or both refusing.
func TestInjectRendersAsOpInjectDoes(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.WriteFixture("mem", map[string]string{"user": "alice", "pass": "s3cr3t-pass", "key": "line1\nline2"})
	e.SignIn("my")
	e.StartDaemon("")
	e.Vars["VAULT"] = "Infra"
	rendered := 0
	for _, tmpl := range []string{
		"user: {{ op://Infra/mem/user }}\npass: {{op://Infra/mem/pass}}\n",
		"op://Infra/mem/user",
		"url=postgres://app:op://Infra/mem/pass@db:5432/app?sslmode=require\n",
		"not refs: a.op://Infra/mem/user b-op://Infra/mem/user c+op://Infra/mem/user 9op://Infra/mem/user \\op://Infra/mem/user\n",
		"quoted: \"op://Infra/mem/user\" 'op://Infra/mem/pass' (op://Infra/mem/user) [op://Infra/mem/pass]\n",
		`{{ "{{ op://Infra/mem/user }}" }} and {{ "a \"b\" c" }}` + "\n",
		"{{ op://Infra/mem/user } } {{op://Infra/mem/user}}} {{{{op://Infra/mem/user}}}}\n",
		"vars: op://$VAULT/mem/user {{ op://${VAULT}/mem/pass }} op://${ VAULT }/mem/user op://${NOPE:-Infra}/mem/pass op://$vault/mem/user\n",
		"key:\n{{ op://Infra/mem/key }}\n",
		"{{ not a ref }} {{ and }} }} {{\n",
		"bytes: \x00\x01\xff\xfe {{ \x7f }}\r\nop://Infra/mem/user\r\n",
		"no references at all\n",
		"",
		"ends with a dot: op://Infra/mem/user.\n",
		"{{ op://Infra/nope/user }}\n",
		"op://$UNSET_VAR/mem/user\n",
	} {
		op := exec.Command(harness.Bins().FakeOp, "inject")
		op.Env = e.Environ("FAKEOP_LOG=")
		op.Stdin = strings.NewReader(tmpl)
		var opOut, opErr bytes.Buffer
		op.Stdout, op.Stderr = &opOut, &opErr
		opFailed := op.Run() != nil

		cmd := exec.Command(harness.Bins().Opx, "inject")
		cmd.Env = e.Environ()
		cmd.Stdin = strings.NewReader(tmpl)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		failed := cmd.Run() != nil

		switch {
		case failed != opFailed:
			t.Errorf("%q: opx failed %v (%s), op failed %v (%s)", tmpl, failed, errb.String(), opFailed, opErr.String())
		case failed:
			if out.Len() != 0 {
				t.Errorf("%q: a failing template still printed %q", tmpl, out.String())
			}
		case !bytes.Equal(out.Bytes(), opOut.Bytes()):
			t.Errorf("%q:\nopx inject: %q\n op inject: %q", tmpl, out.String(), opOut.String())
		case strings.Contains(out.String(), "alice"):
			rendered++
		}
	}
	if rendered < 6 {
		t.Errorf("only %d templates rendered a value: the comparison proved little", rendered)
	}
}

func TestInjectFilesAndFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	tmplFile := filepath.Join(e.Dir, "config.tpl")
	os.WriteFile(tmplFile, []byte("a: {{ op://v/i/a }}\nb: {{ vault://secret/app#b }}\nc: {{bao://kv/app?version=2#c}}\na again: op://v/i/a\n"), 0o600)
	want := "a: " + fv("op://v/i/a") + "\nb: " + fv("vault://secret/app#b") + "\nc: " + fv("bao://kv/app?version=2#c") + "\na again: " + fv("op://v/i/a") + "\n"

	before := e.Status().BackendCalls
	out := filepath.Join(e.Dir, "config.yml")
	r := e.Opx("inject", "-i", tmplFile, "-o", out)
	if r.Code != 0 || r.Stdout != "" {
		t.Fatalf("inject -o: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if got, _ := os.ReadFile(out); string(got) != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if calls := e.Status().BackendCalls - before; calls != 1 {
		t.Errorf("%d backend calls for one template, want 1 (one round trip)", calls)
	}

	// An existing file is kept without --force (stdin is not a terminal).
	os.WriteFile(out, []byte("keep me"), 0o644)
	r = e.Opx("inject", "-i", tmplFile, "-o", out)
	if got, _ := os.ReadFile(out); r.Code == 0 || string(got) != "keep me" || !strings.Contains(r.Stderr, "--force") {
		t.Errorf("without --force: exit %d, file %q, stderr %q", r.Code, got, r.Stderr)
	}
	r = e.Opx("inject", "-i", tmplFile, "-o", out, "--force", "--file-mode", "0640")
	if got, _ := os.ReadFile(out); r.Code != 0 || string(got) != want {
		t.Errorf("--force: exit %d, file %q, stderr %q", r.Code, got, r.Stderr)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o640 {
		t.Errorf("--file-mode 0640 gave %v", fi.Mode().Perm())
	}
	if r := e.Opx("inject", "-i", tmplFile, "-o", out, "-f", "--file-mode", "999"); r.Code == 0 || !strings.Contains(r.Stderr, "octal") {
		t.Errorf("--file-mode 999: exit %d, stderr %q", r.Code, r.Stderr)
	}

	// The template on stdin, to stdout.
	r = e.OpxEnv(nil, "inject")
	if r.Code != 0 || r.Stdout != "" {
		t.Errorf("empty stdin: exit %d, stdout %q", r.Code, r.Stdout)
	}
	cmd := exec.Command(harness.Bins().Opx, "inject")
	cmd.Env = e.Environ()
	cmd.Stdin = strings.NewReader("x={{ op://v/i/x }}")
	got, err := cmd.Output()
	if err != nil || string(got) != "x="+fv("op://v/i/x") {
		t.Errorf("stdin to stdout: %q, %v", got, err)
	}

	// A template with failing refs writes nothing and names each, with
	// its lines.
	bad := filepath.Join(e.Dir, "bad.tpl")
	os.WriteFile(bad, []byte("ok: {{ op://v/i/a }}\nx: {{ vault:// }}\ny: op://v/i/$UNSET_VAR\n"), 0o600)
	target := filepath.Join(e.Dir, "never.yml")
	r = e.Opx("inject", "-i", bad, "-o", target)
	if _, err := os.Stat(target); r.Code != 1 || err == nil {
		t.Errorf("a failing template: exit %d, file written: %v", r.Code, err == nil)
	}
	if !strings.Contains(r.Stderr, "line 3") || !strings.Contains(r.Stderr, "UNSET_VAR") {
		t.Errorf("the error should name the variable and its line: %q", r.Stderr)
	}
	os.WriteFile(bad, []byte("ok: {{ op://v/i/a }}\nx: {{ op://v/i }}\ny: {{ bao://ok/p#f }}\nz: op://v/i\n"), 0o600)
	r = e.Opx("inject", "-i", bad, "-o", target)
	if _, err := os.Stat(target); r.Code != 1 || err == nil || !strings.Contains(r.Stderr, "lines 2, 4") || !strings.Contains(r.Stderr, "op://v/i:") {
		t.Errorf("a failing ref: exit %d, written %v, stderr %q", r.Code, err == nil, r.Stderr)
	}
}
