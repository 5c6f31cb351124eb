package main

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/opxhq/opx/cli"
)

var updateHelp = flag.Bool("update-help", false, "rewrite testdata/help from the current binary")

// helpCases are the command lines whose output a user reads to learn opx:
// --help of the program and of every command and subcommand, the errors of a
// mistyped command line, and the completion scripts. Each one's output is
// kept in testdata/help; the grammar is built per command to save start-up
// time, and none of this may change because of it.
func helpCases(t *testing.T) map[string][]string {
	t.Helper()
	cases := map[string][]string{
		"opx":                   {},
		"opx --help":            {"--help"},
		"opx -h":                {"-h"},
		"opx reed":              {"reed", "op://a/b/c"},
		"opx read":              {"read"},
		"opx read --bogus":      {"read", "--bogus", "op://a/b/c"},
		"opx login":             {"login"},
		"opx login vaul":        {"login", "vaul"},
		"opx completion":        {"completion"},
		"opx completion tcsh":   {"completion", "tcsh"},
		"opx completion bash":   {"completion", "bash"},
		"opx completion zsh":    {"completion", "zsh"},
		"opx completion fish":   {"completion", "fish"},
		"opx --account":         {"--account"},
		"opx --account x read":  {"--account", "x", "read"},
		"opx read --help extra": {"read", "--help", "op://a/b/c"},
		"opx daemon --ttl=soon": {"daemon", "--ttl=soon"},
		"opx -- read":           {"--", "read"},
		"opx read -nh":          {"read", "-nh"},
		"opx status --json x":   {"status", "--json", "x"},
		"opx run":               {"run"},
		"opx help read":         {"help", "read"},
		"opx help login vault":  {"help", "login", "vault"},
		"opx help":              {"help"},
	}
	parser, _, err := newParser(wholeGrammar, false, &cli.Env{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *kong.Node, path []string)
	walk = func(n *kong.Node, path []string) {
		for _, c := range n.Children {
			if c.Type != kong.CommandNode {
				continue
			}
			p := append(append([]string(nil), path...), c.Name)
			cases["opx "+strings.Join(p, " ")+" --help"] = append(append([]string(nil), p...), "--help")
			walk(c, p)
		}
	}
	walk(parser.Model.Node, nil)
	return cases
}

func TestHelpAndErrorsStayTheSame(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join("testdata", "help")
	if *updateHelp {
		os.MkdirAll(dir, 0o755)
	}
	for name, args := range helpCases(t) {
		r := e.opxEnv([]string{"COLUMNS=80", "OPX_AUTOSTART=0"}, args...)
		got := "exit " + string(rune('0'+r.code)) + "\n--- stdout\n" + r.stdout + "--- stderr\n" + r.stderr
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".txt")
		if *updateHelp {
			if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s: %v (run go test -run TestHelpAndErrorsStayTheSame -update-help to record it)", name, err)
			continue
		}
		if got != string(want) {
			t.Errorf("%q prints something else than before:\n--- want\n%s\n--- got\n%s", name, want, got)
		}
	}
}

func TestTheCommandIsFoundBeforeParsing(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // "" for the whole grammar
		help bool
	}{
		{[]string{"read", "op://a/b/c"}, "read", false},
		{[]string{"--account", "read", "status"}, "status", false},
		{[]string{"--account=x", "run", "--", "env"}, "run", false},
		{[]string{"-n", "read", "x"}, "read", false},
		{[]string{"completion", "bash"}, "", false},
		{[]string{"reed"}, "", false},
		{[]string{"--", "read"}, "", false},
		{nil, "", false},
		{[]string{"read", "--help"}, "read", true},
		{[]string{"read", "-nh"}, "read", true},
		{[]string{"login", "vault", "--help=true"}, "login", true},
		{[]string{"run", "--", "ls", "-h"}, "run", false},
		{[]string{"read", "--no-newline", "op://a/b/c"}, "read", false},
	} {
		got := ""
		if i := commandIn(c.args); i != wholeGrammar {
			got = commands[i].name
		}
		if got != c.want || asksForHelp(c.args) != c.help {
			t.Errorf("%q: command %q, help %v; want %q, %v", c.args, got, asksForHelp(c.args), c.want, c.help)
		}
	}
}

func TestVersionBareAndHelp(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{{"--version"}, {"version"}, {"--account", "x", "--version"}} {
		r := e.opx(args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "opx ") || !strings.Contains(r.stdout, "(commit ") || !strings.Contains(r.stdout, runtime.Version()) || !strings.Contains(r.stdout, runtime.GOOS+"/"+runtime.GOARCH) {
			t.Errorf("%q: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
	// --version after the command to run is the command's.
	r := e.opxEnv([]string{"OP_AUTHD_BACKEND=fake"}, "run", "--env", "A=op://v/i/a", "sh", "-c", `echo "$1"`, "sh", "--version")
	if r.stdout != "--version\n" {
		t.Errorf("opx run ... echo --version printed %q", r.stdout)
	}
	r = e.opx()
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "Usage: opx <command>") || !strings.Contains(r.stderr, "Examples:") {
		t.Errorf("bare opx: exit %d, stdout %q, stderr %.200q", r.code, r.stdout, r.stderr)
	}
	if a, b := e.opx("help", "read"), e.opx("read", "--help"); a.code != 0 || a.stdout != b.stdout {
		t.Errorf("opx help read differs from opx read --help:\n%s\n%s", a.stdout, b.stdout)
	}
}
