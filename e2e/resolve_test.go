//go:build unix

package e2e

// opx resolve: NAME=value in its output formats, from the command line and
// env files.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// opx resolve prints NAME=value sorted by name, as JSON or as export
// lines; it takes pairs from env files (later files win, literals kept and
// quoted) and the command line; a bad ref or nothing to resolve is an
// error.
func TestResolveFormatsAndEnvFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	out := e.MustOpx("resolve", "B=op://v/i/b", "A=vault://kv/a#x")
	if want := "A=" + fv("vault://kv/a#x") + "\nB=" + fv("op://v/i/b") + "\n"; out != want {
		t.Errorf("resolve = %q, want %q", out, want)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(e.MustOpx("resolve", "--json", "A=op://v/i/a")), &m); err != nil || m["A"] != fv("op://v/i/a") {
		t.Errorf("resolve --json = %v, %v", m, err)
	}
	if out := e.MustOpx("resolve", "--export", "A=op://v/i/a"); out != "export A='"+fv("op://v/i/a")+"'\n" {
		t.Errorf("resolve --export = %q", out)
	}
	r := e.Opx("resolve", "A=op://v/i/a", "B=nope")
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "B:") {
		t.Errorf("resolve with a bad ref = %+v", r)
	}

	e.Vars["APP_ENV"] = "prod"
	a := filepath.Join(e.Dir, "a.env")
	b := filepath.Join(e.Dir, "b.env")
	os.WriteFile(a, []byte("# first\nDB=op://$APP_ENV/db/password\nMODE=\"dev mode\"\nKEY=op://v/i/old\n"), 0o600)
	os.WriteFile(b, []byte("export KEY=op://v/i/key\n"), 0o600)
	out = e.MustOpx("resolve", "--env-file", a, "--env-file", b, "EXTRA=op://v/i/extra")
	want := "DB=" + fv("op://prod/db/password") + "\nEXTRA=" + fv("op://v/i/extra") + "\nKEY=" + fv("op://v/i/key") + "\nMODE=dev mode\n"
	if out != want {
		t.Errorf("resolve --env-file:\n%s\nwant\n%s", out, want)
	}
	if out := e.MustOpx("resolve", "--export", "--env-file", b, "--env-file", a); !strings.Contains(out, "export KEY='"+fv("op://v/i/old")+"'\n") || !strings.Contains(out, "export MODE='dev mode'\n") {
		t.Errorf("later files win, literals are quoted: %q", out)
	}
	if r := e.Opx("resolve"); r.Code == 0 || !strings.Contains(r.Stderr, "nothing to resolve") {
		t.Errorf("resolve with nothing: exit %d, stderr %q", r.Code, r.Stderr)
	}
}
