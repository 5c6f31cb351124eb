//go:build unix

package e2e

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/opxhq/opx/cli"
	"github.com/opxhq/opx/e2e/harness"
)

// completionEnv is a testEnv whose config.json names a default account
// and whose 1Password CLI config names another, and a directory of files
// to complete.
func completionEnv(t *testing.T) (e *testEnv, files string) {
	e = newEnv(t)
	os.MkdirAll(e.ConfigDir, 0o700)
	os.WriteFile(filepath.Join(e.ConfigDir, "config.json"), []byte(`{"account": "team"}`), 0o600)
	os.MkdirAll(filepath.Join(e.Vars["XDG_CONFIG_HOME"], "op"), 0o700)
	os.WriteFile(filepath.Join(e.Vars["XDG_CONFIG_HOME"], "op", "config"), []byte(`{"accounts": [{"shorthand": "my", "email": "me@example.com"}]}`), 0o600)
	files = filepath.Join(e.Dir, "files")
	os.Mkdir(files, 0o700)
	for _, f := range []string{"tmpl-one.env", "tmpl-two.env"} {
		os.WriteFile(filepath.Join(files, f), nil, 0o600)
	}
	e.Vars["PATH"] = filepath.Dir(harness.Bins().Opx) + string(os.PathListSeparator) + e.Vars["PATH"]
	return e, files
}

// The probes every shell answers: the command line (the cursor at its
// end) and the completions a user would see. Values come only where the
// grammar expects them; a ref, a NAME=REF pair and a duration complete to
// nothing, not to file names.
func completionProbes(files string) []struct{ line, want string } {
	return []struct{ line, want string }{
		{"opx re", "read resolve restart"},
		{"opx read --no-n", "--no-newline"},
		{"opx login ", "1password bao vault"},
		{"opx login vault --token", "--token-ref"},
		{"opx daemon --enable-s", "--enable-session-lock"},
		{"opx completion ", "bash fish zsh"},
		{"opx daemon --backend ", "bao fake multi opcli vault"},
		{"opx login vault --method ", "approle token userpass"},
		{"opx --account ", "my team"},
		{"opx help sto", "stop"},
		{"opx inject -i " + files + "/tmpl-", files + "/tmpl-one.env " + files + "/tmpl-two.env"},
		{"opx run -- zs", "zsh"},
		{"opx run -e FOO=op://v/i/f zs", "zsh"},
		{"opx --account team completion ", "bash fish zsh"},
		{"opx help da", "daemon"},
		{"opx read " + files + "/tmpl-", ""},
		{"opx daemon --ttl " + files + "/tmpl-", ""},
	}
}

func sortedWords(s string) string {
	w := strings.Fields(s)
	sort.Strings(w)
	return strings.Join(slices.Compact(w), " ")
}

func TestCompletionsInBash(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	e, files := completionEnv(t)
	script := filepath.Join(e.Dir, "opx.bash")
	if err := os.WriteFile(script, []byte(e.MustOpx("completion", "bash")), 0o600); err != nil {
		t.Fatal(err)
	}
	// Each probe's line is split into words as bash splits it (at "=" too).
	probe := `source "$1" || exit 9
complete -p opx >/dev/null || exit 8
shift
for line in "$@"; do
  COMP_LINE="$line"; COMP_POINT=${#line}
  read -ra COMP_WORDS <<<"$line"
  [[ "$line" == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _opx
  echo "${COMPREPLY[*]}"
done
`
	probes := completionProbes(files)
	probes = append(probes, struct{ line, want string }{"opx daemon --backend=f", "fake"})
	args := []string{"-c", probe, "probe", script}
	for _, p := range probes {
		args = append(args, p.line)
	}
	cmd := exec.Command(bash, args...)
	cmd.Env = e.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(got) != len(probes) {
		t.Fatalf("bash answered %d lines for %d probes:\n%s", len(got), len(probes), out)
	}
	for i, p := range probes {
		g := sortedWords(got[i])
		if strings.HasSuffix(p.line, " zs") {
			checkPrograms(t, "bash", p.line, g)
			continue
		}
		if g != p.want {
			t.Errorf("bash: %q completes to %q, want %q", p.line, g, p.want)
		}
	}
}

// checkPrograms checks that a program name was completed after "opx run
// --": zsh when it is installed, else nothing that is a path.
func checkPrograms(t *testing.T, shell, line, got string) {
	t.Helper()
	words := strings.Fields(got)
	if _, err := exec.LookPath("zsh"); err == nil && !slices.Contains(words, "zsh") {
		t.Errorf("%s: %q completes to %q, want the programs on PATH (zsh among them)", shell, line, got)
	}
	if strings.Contains(got, "/") {
		t.Errorf("%s: %q completes to paths: %q", shell, line, got)
	}
}

func TestCompletionsInFish(t *testing.T) {
	t.Parallel()
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Skip("fish is not installed (Debian package fish; .ci/run installs it)")
	}
	e, files := completionEnv(t)
	script := filepath.Join(e.Dir, "opx.fish")
	if err := os.WriteFile(script, []byte(e.MustOpx("completion", "fish")), 0o600); err != nil {
		t.Fatal(err)
	}
	probes := completionProbes(files)
	// fish completes flag values given as --flag=value too, and programs after --.
	probes = append(probes, struct{ line, want string }{"opx daemon --backend=f", "--backend=fake"})
	for _, p := range probes {
		cmd := exec.Command(fish, "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, script, p.line)
		cmd.Env = append(e.Environ(), "XDG_DATA_HOME="+filepath.Join(e.Dir, "fishdata"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, out)
		}
		var words, descs []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line == "" {
				continue
			}
			w, d, _ := strings.Cut(line, "\t")
			words, descs = append(words, w), append(descs, d)
		}
		g := sortedWords(strings.Join(words, " "))
		if strings.HasSuffix(p.line, " zs") {
			checkPrograms(t, "fish", p.line, g)
			continue
		}
		if g != p.want {
			t.Errorf("fish: %q completes to %q, want %q", p.line, g, p.want)
		}
		if p.line == "opx re" && !slices.Contains(descs, "Print the values of secret references, one per line.") {
			t.Errorf("fish: commands come without their descriptions: %q", out)
		}
	}
}

func TestServiceUnitAndPlist(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	envFile := filepath.Join(e.Dir, "opx.env")
	os.WriteFile(envFile, []byte("OP_AUTHD_BACKEND=multi\n"), 0o600)
	opDir := filepath.Join(e.Dir, "op-here")
	os.Mkdir(opDir, 0o700)
	e.Vars["OPX_OP_PATH"] = filepath.Join(opDir, "op")
	unit := e.MustOpx("service", "install", "--print", "--env-file", envFile, "--", "--ttl=60s")
	for _, want := range []string{"ExecStart=" + harness.Bins().Opx + " daemon --ttl=60s", "Restart=on-failure", "EnvironmentFile=" + envFile, "WantedBy=default.target",
		"EnvironmentFile=-" + filepath.Join(e.ConfigDir, "opx.env"), "Environment=PATH=" + opDir + ":/usr/local/bin:/usr/bin:/bin",
		"RestartPreventExitStatus=75", "Environment=OPX_SERVICE=systemd"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	repoUnit, err := os.ReadFile(repoFile("packaging/systemd/opx.service"))
	if err != nil {
		t.Fatal(err)
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze is not installed: units not verified")
	} else {
		for name, text := range map[string]string{
			"generated": unit,
			"packaged":  strings.Replace(string(repoUnit), "/usr/local/bin/opx", harness.Bins().Opx, 1),
		} {
			f := filepath.Join(e.Dir, name+".service")
			os.WriteFile(f, []byte(text), 0o644)
			if out, err := exec.Command(analyze, "verify", f).CombinedOutput(); err != nil {
				t.Errorf("systemd-analyze verify of the %s unit: %v\n%s", name, err, out)
			}
		}
	}
	plist := cli.LaunchdPlist("/opt/homebrew/bin/opx", cli.ServiceSettings{Path: "/opt/homebrew/bin:/usr/bin", DefaultEnvFile: "/Users/me/.config/op-authd/opx.env", EnvFile: "/Users/me/opx env"}, "/Users/me/log", []string{"--backend=multi"})
	d := xml.NewDecoder(strings.NewReader(plist))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Errorf("plist is not well-formed XML: %v", err)
			}
			break
		}
	}
	for _, want := range []string{"<string>dev.opx.authd</string>", "<string>/opt/homebrew/bin/opx</string>", "<string>daemon</string>", "<string>--backend=multi</string>", "<key>KeepAlive</key>", "/Users/me/opx env",
		"<key>PATH</key><string>/opt/homebrew/bin:/usr/bin</string>", "/Users/me/.config/op-authd/opx.env"} {
		if !strings.Contains(plist, want) {
			t.Errorf("plist lacks %q", want)
		}
	}
}

// An install that cannot enable the service (here: no systemd user
// session, or no systemctl) leaves no unit behind, and says why.
func TestFailedServiceInstallLeavesNothing(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("systemd units are Linux's")
	}
	e := newEnv(t)
	unit := filepath.Join(e.Vars["XDG_CONFIG_HOME"], "systemd", "user", "opx.service")
	e.Vars["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=" + filepath.Join(e.Dir, "no-bus")
	e.Vars["XDG_RUNTIME_DIR"] = filepath.Join(e.Dir, "r")
	r := e.Opx("service", "install")
	if r.Code == 0 {
		t.Skipf("this machine has a systemd user session: the install succeeded (%s)", r.Stdout)
	}
	if _, err := os.Stat(unit); err == nil {
		t.Errorf("a failed install left %s behind", unit)
	}
	// A unit that was there before is put back as it was.
	os.MkdirAll(filepath.Dir(unit), 0o700)
	os.WriteFile(unit, []byte("# the user's working unit\n"), 0o644)
	if r := e.Opx("service", "install", "--", "--ttl=5m"); r.Code == 0 {
		t.Fatalf("the second install succeeded: %+v", r)
	}
	if got, _ := os.ReadFile(unit); string(got) != "# the user's working unit\n" {
		t.Errorf("a failed install replaced the unit that was there: %q", got)
	}
	if !strings.Contains(r.Stderr, "opx: hint:") {
		t.Errorf("no hint on why: %q", r.Stderr)
	}
}

// opx --man is a page man reads without a warning, with every command and
// flag --help shows, none that it hides, and the exit codes.
func TestManPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	page := filepath.Join(e.Dir, "opx.1")
	if err := os.WriteFile(page, []byte(e.MustOpx("--man")), 0o600); err != nil {
		t.Fatal(err)
	}
	if groff, err := exec.LookPath("groff"); err == nil {
		out, err := exec.Command(groff, "-man", "-ww", "-z", page).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff warns about the page: %v\n%s", err, out)
		}
	}
	man, err := exec.LookPath("man")
	if err != nil {
		t.Skip("man is not installed (Debian package man-db)")
	}
	cmd := exec.Command(man, "-l", page)
	cmd.Env = append(e.Environ(), "MANWIDTH=100", "MANPAGER=cat", "PAGER=cat")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("man -l: %v\n%s", err, out)
	}
	text := strings.Join(strings.Fields(string(out)), " ") // man justifies and wraps
	for _, want := range []string{"NAME", "opx - a local secrets broker", "SYNOPSIS", "GLOBAL FLAGS", "--account=ACCOUNT",
		"opx read <ref> ...", "opx doctor", "opx login vault", "opx login 1password", "opx policy check", "opx service install",
		"--backend=opcli|vault|bao|multi|fake", "Environment: OP_AUTHD_BACKEND", "EXIT STATUS", "75 Another daemon already serves this socket",
		"EXAMPLES", "opx run --env DB_PASS=op://Private/db/password -- ./deploy.sh", "FILES", "policy.json"} {
		if !strings.Contains(text, want) {
			t.Errorf("the man page lacks %q", want)
		}
	}
	for _, hidden := range []string{"--man", "--values"} {
		if strings.Contains(text, hidden) {
			t.Errorf("the man page shows the hidden flag %s", hidden)
		}
	}
}
