//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opxhq/opx/e2e/harness"
)

// direnv's `use opx` (packaging/direnv/opx.sh) exports the variables of an
// env file with every ref resolved, driven through Debian's real direnv.
func TestDirenvUseOpx(t *testing.T) {
	t.Parallel()
	direnv, err := exec.LookPath("direnv")
	if err != nil {
		t.Skip("direnv is not installed (.ci/run installs it from Debian): use_opx cannot be tried")
	}
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	lib := filepath.Join(e.Vars["XDG_CONFIG_HOME"], "direnv", "lib")
	os.MkdirAll(lib, 0o700)
	script, err := os.ReadFile(repoFile("packaging/direnv/opx.sh"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(lib, "opx.sh"), script, 0o600)
	project := filepath.Join(e.Dir, "project")
	os.Mkdir(project, 0o700)
	os.WriteFile(filepath.Join(project, ".envrc"), []byte("use opx .env.op\n"), 0o600)
	os.WriteFile(filepath.Join(project, ".env.op"), []byte("DB_PASS=op://Private/db/password\nAPI_KEY=\"vault://secret/app#key\"\nLOG_LEVEL=debug\n"), 0o600)
	e.Vars["PATH"] = filepath.Dir(harness.Bins().Opx) + string(os.PathListSeparator) + e.Vars["PATH"]

	direnvRun := func(args ...string) (string, string, error) {
		cmd := exec.Command(direnv, args...)
		cmd.Dir = project
		cmd.Env = e.Environ()
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	if _, stderr, err := direnvRun("allow", project); err != nil {
		t.Fatalf("direnv allow: %v\n%s", err, stderr)
	}
	out, stderr, err := direnvRun("exec", project, "sh", "-c", `printf '%s|%s|%s\n' "$DB_PASS" "$API_KEY" "$LOG_LEVEL"`)
	want := fv("op://Private/db/password") + "|" + fv("vault://secret/app#key") + "|debug\n"
	if err != nil || out != want {
		t.Fatalf("direnv exec: %v, stdout %q, want %q\nstderr: %s", err, out, want, stderr)
	}

	// A failing ref exports nothing, and says which.
	os.WriteFile(filepath.Join(project, ".env.op"), []byte("DB_PASS=op://Private/db/password\nBAD=op://only/two\n"), 0o600)
	out, stderr, _ = direnvRun("exec", project, "sh", "-c", `printf '[%s]' "$DB_PASS"`)
	if out != "[]" || !strings.Contains(stderr, "BAD") {
		t.Errorf("with a failing ref: stdout %q (want nothing exported), stderr %q", out, stderr)
	}
}
