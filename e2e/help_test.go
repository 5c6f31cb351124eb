//go:build unix

package e2e

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/opxhq/opx/e2e/harness"
)

var updateHelp = flag.Bool("update-help", false, "rewrite testdata/help from the current binary")

// TestHelpAndErrorsStayTheSame runs the command lines a user reads to learn
// opx (testdata/help/cases.json, kept equal to the grammar by the root
// package's TestHelpCasesAreRecorded) and compares each one's output with
// its recorded file.
func TestHelpAndErrorsStayTheSame(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(harness.Bins().Root, "testdata", "help")
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases map[string][]string
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkHelp(t, dir, name, args)
		})
	}
}

// checkHelp compares what opx ARGS prints, in an Env of its own, with the
// recorded file for name, or records it with -update-help.
func checkHelp(t *testing.T, dir, name string, args []string) {
	e := newEnv(t)
	r := e.OpxEnv([]string{"COLUMNS=80", "OPX_AUTOSTART=0"}, args...)
	got := "exit " + string(rune('0'+r.Code)) + "\n--- stdout\n" + r.Stdout + "--- stderr\n" + r.Stderr
	file := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".txt")
	if *updateHelp {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%s: %v (run go test -run TestHelpAndErrorsStayTheSame -update-help ./e2e/ to record it)", name, err)
	}
	if got != string(want) {
		t.Errorf("%q prints something else than before:\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}

// opx version, --version (before or after a global flag) print the version
// with its commit, Go version and OS/arch; --version after the command to
// run is the command's; opx help CMD is opx CMD --help. What bare opx and
// --help print is compared whole by TestHelpAndErrorsStayTheSame.
func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, args := range [][]string{{"--version"}, {"version"}, {"--account", "x", "--version"}} {
		r := e.Opx(args...)
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "opx ") || !strings.Contains(r.Stdout, "(commit ") || !strings.Contains(r.Stdout, runtime.Version()) || !strings.Contains(r.Stdout, runtime.GOOS+"/"+runtime.GOARCH) {
			t.Errorf("%q: exit %d, stdout %q", args, r.Code, r.Stdout)
		}
	}
	// --version after the command to run is the command's.
	r := e.OpxEnv([]string{"OP_AUTHD_BACKEND=fake"}, "run", "--env", "A=op://v/i/a", "sh", "-c", `echo "$1"`, "sh", "--version")
	if r.Stdout != "--version\n" {
		t.Errorf("opx run ... echo --version printed %q", r.Stdout)
	}
	if a, b := e.Opx("help", "read"), e.Opx("read", "--help"); a.Code != 0 || a.Stdout != b.Stdout {
		t.Errorf("opx help read differs from opx read --help:\n%s\n%s", a.Stdout, b.Stdout)
	}
}
