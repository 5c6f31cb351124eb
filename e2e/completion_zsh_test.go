//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCompletionsInZsh loads the native zsh script with compinit in an
// interactive zsh on a pseudo-terminal, presses Tab after each probe, and
// reads what the completion system was given (compadd is wrapped to print
// its matches and descriptions).
func TestCompletionsInZsh(t *testing.T) {
	t.Parallel()
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh is not installed (Debian package zsh; .ci/run installs it)")
	}
	e, files := completionEnv(t)
	zdot := filepath.Join(e.Dir, "zdot")
	fn := filepath.Join(zdot, "fn")
	os.MkdirAll(fn, 0o700)
	if err := os.WriteFile(filepath.Join(fn, "_opx"), []byte(e.MustOpx("completion", "zsh")), 0o600); err != nil {
		t.Fatal(err)
	}
	rc := `PS1='zsh-ready> '
fpath=(` + fn + ` $fpath)
autoload -Uz compinit && compinit -u -D
compadd() {
  local -a __m __d
  builtin compadd -O __m "$@"
  local i
  for ((i = 1; i < $#; i++)); do
    [[ ${@[i]} == -d ]] && __d=(${(P)${@[i+1]}})
  done
  for i in $__m; do print -r -- "MATCH:$i:"; done
  for i in $__d; do print -r -- "DESC:$i:"; done
  builtin compadd "$@"
}
# Tab completes, then says so: the test sends the next keys only then, as
# zsh completes differently when keys are already waiting (typeahead).
probe-complete() { zle expand-or-complete; print -r -- "tab-done-$((++__probes))"; }
zle -N probe-complete
bindkey '^I' probe-complete
`
	if err := os.WriteFile(filepath.Join(zdot, ".zshrc"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(zsh, "-i")
	cmd.Env = append(e.Environ(), "ZDOTDIR="+zdot, "TERM=dumb")
	tt := startTTY(t, cmd)
	tt.expect("zsh-ready> ")
	probes := completionProbes(files)
	probes = append(probes, struct{ line, want string }{"opx daemon --backend=f", "fake"})
	for i, p := range probes {
		from := tt.seen
		tt.send(p.line + "\t")
		tt.expect(fmt.Sprintf("tab-done-%d", i+1))
		// Kill the line and print a mark, after which the probe's
		// output is complete.
		mark := fmt.Sprintf("probe-%d-done", i)
		tt.send("\x15echo probe-" + fmt.Sprint(i) + "''-done\r")
		tt.expect(mark)
		tt.mu.Lock()
		out := tt.out.String()[from:tt.seen]
		tt.mu.Unlock()
		var matches, descs []string
		for _, m := range regexp.MustCompile(`(MATCH|DESC):([^\r\n]*):`).FindAllStringSubmatch(out, -1) {
			if m[1] == "MATCH" {
				matches = append(matches, m[2])
			} else {
				descs = append(descs, m[2])
			}
		}
		g := sortedWords(strings.Join(matches, " "))
		if strings.HasPrefix(p.line, "opx inject -i ") {
			// zsh's _files offers each path component, then the names in
			// the directory.
			var names []string
			for _, m := range matches {
				if strings.HasPrefix(m, "tmpl-") {
					names = append(names, files+"/"+m)
				}
			}
			g = sortedWords(strings.Join(names, " "))
		}
		if strings.HasSuffix(p.line, " zs") {
			checkPrograms(t, "zsh", p.line, g)
			continue
		}
		if p.want == "" {
			// Where nothing is expected, zsh may list the flags instead:
			// never files.
			if strings.Contains(g, "tmpl") {
				t.Errorf("zsh: %q offers files: %q", p.line, g)
			}
			continue
		}
		if g != p.want {
			t.Errorf("zsh: %q completes to %q, want %q\n%s", p.line, g, p.want, out)
		}
		if p.line == "opx re" && !strings.Contains(strings.Join(descs, "\n"), "Print the values of secret references") {
			t.Errorf("zsh: commands come without their descriptions:\n%s", out)
		}
	}
}
