//go:build unix

package e2e

import (
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
