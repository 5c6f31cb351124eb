//go:build unix

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadJSONAndFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	e.Vars["APP_ENV"] = "prod"
	refs := []string{"op://v/i/a", `vault://secret/app#"quoted"`, "op://$APP_ENV/i/b", "op://v/i/a"}
	out := e.MustOpx(append([]string{"read", "--json"}, refs...)...)
	var m map[string]string
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("read --json printed %q: %v", out, err)
	}
	want := map[string]string{
		"op://v/i/a":                  fv("op://v/i/a"),
		`vault://secret/app#"quoted"`: fv(`vault://secret/app#"quoted"`),
		"op://$APP_ENV/i/b":           fv("op://prod/i/b"), // keyed as given
	}
	if len(m) != len(want) {
		t.Errorf("read --json = %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("read --json[%q] = %q, want %q", k, m[k], v)
		}
	}

	file := filepath.Join(e.Dir, "secret.txt")
	if r := e.Opx("read", "-o", file, "op://v/i/a"); r.Code != 0 || r.Stdout != "" {
		t.Fatalf("read -o: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if got, _ := os.ReadFile(file); string(got) != fv("op://v/i/a") {
		t.Errorf("read -o wrote %q, want the value without a newline", got)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("read -o made mode %v, want 0600", fi.Mode().Perm())
	}
	if r := e.Opx("read", "-o", file, "op://v/i/b"); r.Code == 0 || !strings.Contains(r.Stderr, "--force") {
		t.Errorf("read -o over an existing file without --force: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if got, _ := os.ReadFile(file); string(got) != fv("op://v/i/a") {
		t.Errorf("the refused write changed the file: %q", got)
	}
	if r := e.Opx("read", "-o", file, "--force", "--file-mode", "0644", "op://v/i/b"); r.Code != 0 {
		t.Errorf("read -o --force: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o644 {
		t.Errorf("--file-mode 0644 made %v", fi.Mode().Perm())
	}
	if r := e.Opx("read", "-o", file, "-f", "op://v/i/a", "op://v/i/b"); r.Code == 0 || !strings.Contains(r.Stderr, "one value") {
		t.Errorf("read -o with two refs: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if r := e.Opx("read", "--json", "-o", file, "op://v/i/a"); r.Code != 2 {
		t.Errorf("--json with -o: exit %d, want a usage error", r.Code)
	}
}

// A value that is not text has no JSON form: --json refuses it and points
// to -o, which writes its bytes as they are.
func TestReadBinaryValues(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.SignIn("my")
	e.StartDaemon("")
	ref := "op://Private/blob/data.bin"
	want := e.OpDirect("read", "-n", ref)
	r := e.Opx("read", "--json", ref)
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, ref) || !strings.Contains(r.Stderr, "-o FILE") {
		t.Errorf("--json of a binary value: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	file := filepath.Join(e.Dir, "data.bin")
	e.MustOpx("read", "-o", file, ref)
	if got, _ := os.ReadFile(file); string(got) != want || !strings.Contains(want, "\xff") {
		t.Errorf("read -o wrote %q, want %q", got, want)
	}
}

// -o writes only regular files: a link or a FIFO at the path is refused,
// --force or not, and left as it was.
func TestOutputFileRefusesWhatIsNotAFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	target := filepath.Join(e.Dir, "target")
	os.WriteFile(target, []byte("keep"), 0o600)
	link := filepath.Join(e.Dir, "link")
	os.Symlink(target, link)
	fifo := filepath.Join(e.Dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{link, fifo, e.Dir} {
		for _, force := range []string{"--force=false", "--force"} {
			r := e.Opx("read", "-o", path, force, "op://v/i/a")
			if r.Code == 0 {
				t.Errorf("read -o %s %s: written", path, force)
			}
		}
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced")
	}
	if got, _ := os.ReadFile(target); string(got) != "keep" {
		t.Errorf("the link's target was written: %q", got)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced")
	}
}

// A file that appears at the -o path while the value is being read is
// left alone (without --force), not replaced.
func TestOutputFileThatAppearsMeanwhileIsKept(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake", "--fake-delay=3s")
	path := filepath.Join(e.Dir, "late")
	read := e.StartInFlight("read", "-o", path, "op://v/i/a")
	os.WriteFile(path, []byte("theirs"), 0o600)
	err := <-read.Done
	if got, _ := os.ReadFile(path); err == nil || string(got) != "theirs" || !strings.Contains(read.Stderr.String(), "appeared") {
		t.Errorf("exit %v, file %q, stderr %q", err, got, read.Stderr.String())
	}
}

// A value with a NUL byte cannot be an environment variable: opx run and
// resolve --export say which variable, instead of failing vaguely or
// dropping the byte.
func TestNULInValues(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	e.WriteFixture("mem", map[string]string{"nul": "before\x00after"})
	e.SignIn("my")
	e.StartDaemon("")
	for _, args := range [][]string{
		{"run", "--env", "WITH_NUL=op://Infra/mem/nul", "--", "true"},
		{"resolve", "--export", "WITH_NUL=op://Infra/mem/nul"},
	} {
		r := e.Opx(args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "WITH_NUL") || !strings.Contains(r.Stderr, "NUL") || r.Stdout != "" || strings.Contains(r.Stderr, "before") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, r.Code, r.Stdout, r.Stderr)
		}
	}
}
