package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/opxhq/opx/cli"
)

var updateHelp = flag.Bool("update-help", false, "rewrite testdata/help/cases.json from the grammar")

// helpCases are the command lines whose output a user reads to learn opx:
// --help of the program and of every command and subcommand, the errors of a
// mistyped command line, and the completion scripts. Each one's output is
// kept in testdata/help (cases.json lists them for the e2e test that runs
// them); the grammar is built per command to save start-up
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

// TestHelpCasesAreRecorded keeps testdata/help/cases.json, the command
// lines whose output e2e's TestHelpAndErrorsStayTheSame compares with the
// recorded files, the same as helpCases: a command added to the grammar
// gets its --help recorded. -update-help rewrites the file.
func TestHelpCasesAreRecorded(t *testing.T) {
	file := filepath.Join("testdata", "help", "cases.json")
	cases := helpCases(t)
	got, err := json.MarshalIndent(cases, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *updateHelp {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil || string(want) != string(got) {
		t.Errorf("%s differs from the grammar's help cases (%v); run go test -run TestHelpCasesAreRecorded -update-help . and then go test -run TestHelpAndErrorsStayTheSame -update-help ./e2e/", file, err)
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
