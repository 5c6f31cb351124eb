package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// $VAR and ${VAR} in refs expand from the client's environment, in every
// place refs come from; an unset variable is an error naming it.
func TestVariablesInRefs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	e.Vars["APP_ENV"] = "prod"
	want := fv("op://prod/db/password")

	for _, ref := range []string{"op://$APP_ENV/db/password", "op://${APP_ENV}/db/password", "op://${STAGE:-prod}/db/password"} {
		if out := e.MustOpx("read", ref); out != want+"\n" {
			t.Errorf("read %s = %q, want the value of op://prod/db/password", ref, out)
		}
	}
	if out := e.MustOpx("resolve", "P=op://$APP_ENV/db/password"); out != "P="+want+"\n" {
		t.Errorf("resolve = %q", out)
	}
	envFile := filepath.Join(e.Dir, "app.env")
	os.WriteFile(envFile, []byte("FROM_FILE=op://${APP_ENV}/db/password\n"), 0o600)
	r := e.OpxEnv([]string{"INHERITED=op://$APP_ENV/db/password"}, "run", "--no-masking",
		"--env", "FLAG=op://$APP_ENV/db/password", "--env-file", envFile, "--",
		"sh", "-c", `echo "$FLAG $FROM_FILE $INHERITED"`)
	if r.Code != 0 || r.Stdout != want+" "+want+" "+want+"\n" {
		t.Errorf("run: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	before := e.Status().BackendCalls

	for _, args := range [][]string{
		{"read", "op://$MISSING_VAR/db/password"},
		{"resolve", "P=op://${MISSING_VAR}/db/password"},
		{"run", "--env", "P=op://$MISSING_VAR/db/password", "--", "true"},
	} {
		r := e.Opx(args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "MISSING_VAR is not set") {
			t.Errorf("%q: exit %d, stderr %q; want an error naming MISSING_VAR", args, r.Code, r.Stderr)
		}
	}
	if after := e.Status().BackendCalls; after != before {
		t.Errorf("an unset variable still reached the backend (%d calls)", after-before)
	}
}

// opx run and opx resolve take more refs than the daemon takes in one
// request, as opx read does: they split them.
func TestRunAndResolveOverAThousandRefs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	var pairs, runArgs []string
	for i := range 2500 {
		kv := fmt.Sprintf("V%04d=op://bulk/item%d/f", i, i)
		pairs = append(pairs, kv)
		runArgs = append(runArgs, "--env", kv)
	}
	out := e.MustOpx(append([]string{"resolve"}, pairs...)...)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2500 || lines[2499] != "V2499="+fv("op://bulk/item2499/f") {
		t.Fatalf("resolve of 2,500: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	r := e.Opx(append(append([]string{"run", "--no-masking"}, runArgs...), "--", "sh", "-c", `echo "$V0000 $V1999 $V2499"`)...)
	if want := fv("op://bulk/item0/f") + " " + fv("op://bulk/item1999/f") + " " + fv("op://bulk/item2499/f") + "\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("run with 2,500: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}
