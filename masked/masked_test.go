//go:build unix

package masked

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runScript runs script under sh through Run with pipes for streams (files, so
// not terminals), and returns its exit status and what it printed.
func runScript(t *testing.T, script string, values ...string) (code int, stdout, stderr string) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	in, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, errf := open("out"), open("err")
	var vs [][]byte
	for _, v := range values {
		vs = append(vs, []byte(v))
	}
	code, err = Run(Command{Path: sh, Args: []string{"sh", "-c", script}, Env: os.Environ(),
		Values: vs, Marker: "<hidden>", Stdin: in, Stdout: out, Stderr: errf})
	if err != nil && code != 127 && code != 126 {
		t.Fatalf("Run(%q): %v", script, err)
	}
	b1, _ := os.ReadFile(out.Name())
	b2, _ := os.ReadFile(errf.Name())
	return code, string(b1), string(b2)
}

func TestRunConceals(t *testing.T) {
	code, out, errs := runScript(t, `echo "a s3cr3t-value b"; echo "s3cr3t-value" >&2`, "s3cr3t-value")
	if code != 0 || out != "a <hidden> b\n" || errs != "<hidden>\n" {
		t.Errorf("Run = %d, %q, %q; want 0, %q, %q", code, out, errs, "a <hidden> b\n", "<hidden>\n")
	}
	if strings.Contains(out+errs, "s3cr3t") {
		t.Errorf("the value leaked: %q %q", out, errs)
	}
}

// The exit status is the command's, as a shell reports it: its own code,
// 128+N for signal N, 127 for a program that is not there.
func TestRunExitStatus(t *testing.T) {
	if code, _, _ := runScript(t, "exit 7"); code != 7 {
		t.Errorf("exit 7: status %d, want 7", code)
	}
	if code, _, _ := runScript(t, "kill -TERM $$"); code != 128+15 {
		t.Errorf("killed by SIGTERM: status %d, want %d", code, 128+15)
	}
	code, err := Run(Command{Path: "/nonexistent/prog", Args: []string{"prog"}, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if code != 127 || err == nil {
		t.Errorf("a missing program: status %d, err %v; want 127 and an error", code, err)
	}
}
