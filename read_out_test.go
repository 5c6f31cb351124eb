package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadJSONAndFiles(t *testing.T) {
	e := newEnv(t)
	e.startDaemon("", "--backend=fake")
	e.vars["APP_ENV"] = "prod"
	refs := []string{"op://v/i/a", `vault://secret/app#"quoted"`, "op://$APP_ENV/i/b", "op://v/i/a"}
	out := e.mustOpx(append([]string{"read", "--json"}, refs...)...)
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

	file := filepath.Join(e.root, "secret.txt")
	if r := e.opx("read", "-o", file, "op://v/i/a"); r.code != 0 || r.stdout != "" {
		t.Fatalf("read -o: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got, _ := os.ReadFile(file); string(got) != fv("op://v/i/a") {
		t.Errorf("read -o wrote %q, want the value without a newline", got)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("read -o made mode %v, want 0600", fi.Mode().Perm())
	}
	if r := e.opx("read", "-o", file, "op://v/i/b"); r.code == 0 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("read -o over an existing file without --force: exit %d, stderr %q", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(file); string(got) != fv("op://v/i/a") {
		t.Errorf("the refused write changed the file: %q", got)
	}
	if r := e.opx("read", "-o", file, "--force", "--file-mode", "0644", "op://v/i/b"); r.code != 0 {
		t.Errorf("read -o --force: exit %d, stderr %q", r.code, r.stderr)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o644 {
		t.Errorf("--file-mode 0644 made %v", fi.Mode().Perm())
	}
	if r := e.opx("read", "-o", file, "-f", "op://v/i/a", "op://v/i/b"); r.code == 0 || !strings.Contains(r.stderr, "one value") {
		t.Errorf("read -o with two refs: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := e.opx("read", "--json", "-o", file, "op://v/i/a"); r.code != 2 {
		t.Errorf("--json with -o: exit %d, want a usage error", r.code)
	}
}

// A value that is not text has no JSON form: --json refuses it and points
// to -o, which writes its bytes as they are.
func TestReadBinaryValues(t *testing.T) {
	e := newOPEnv(t)
	e.signIn("my")
	e.startDaemon("")
	ref := "op://Private/blob/data.bin"
	want := e.opDirect("read", "-n", ref)
	r := e.opx("read", "--json", ref)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, ref) || !strings.Contains(r.stderr, "-o FILE") {
		t.Errorf("--json of a binary value: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	file := filepath.Join(e.root, "data.bin")
	e.mustOpx("read", "-o", file, ref)
	if got, _ := os.ReadFile(file); string(got) != want || !strings.Contains(want, "\xff") {
		t.Errorf("read -o wrote %q, want %q", got, want)
	}
}

// -o writes only regular files: a link or a FIFO at the path is refused,
// --force or not, and left as it was.
func TestOutputFileRefusesWhatIsNotAFile(t *testing.T) {
	e := newEnv(t)
	e.startDaemon("", "--backend=fake")
	target := filepath.Join(e.root, "target")
	os.WriteFile(target, []byte("keep"), 0o600)
	link := filepath.Join(e.root, "link")
	os.Symlink(target, link)
	fifo := filepath.Join(e.root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{link, fifo, e.root} {
		for _, force := range []string{"--force=false", "--force"} {
			r := e.opx("read", "-o", path, force, "op://v/i/a")
			if r.code == 0 {
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
	e := newEnv(t)
	e.startDaemon("", "--backend=fake", "--fake-delay=3s")
	path := filepath.Join(e.root, "late")
	read := e.startInFlight("read", "-o", path, "op://v/i/a")
	os.WriteFile(path, []byte("theirs"), 0o600)
	err := <-read.done
	if got, _ := os.ReadFile(path); err == nil || string(got) != "theirs" || !strings.Contains(read.stderr.String(), "appeared") {
		t.Errorf("exit %v, file %q, stderr %q", err, got, read.stderr.String())
	}
}

// A value with a NUL byte cannot be an environment variable: opx run and
// resolve --export say which variable, instead of failing vaguely or
// dropping the byte.
func TestNULInValues(t *testing.T) {
	e := newOPEnv(t)
	writeFixture(t, e, map[string]string{"nul": "before\x00after"})
	e.signIn("my")
	e.startDaemon("")
	for _, args := range [][]string{
		{"run", "--env", "WITH_NUL=op://Infra/mem/nul", "--", "true"},
		{"resolve", "--export", "WITH_NUL=op://Infra/mem/nul"},
	} {
		r := e.opx(args...)
		if r.code != 1 || !strings.Contains(r.stderr, "WITH_NUL") || !strings.Contains(r.stderr, "NUL") || r.stdout != "" || strings.Contains(r.stderr, "before") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}
