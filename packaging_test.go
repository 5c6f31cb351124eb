package main

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/opxhq/opx/client"
)

func TestCompletionsLoadInBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	e := newEnv(t)
	script := filepath.Join(e.root, "opx.bash")
	if err := os.WriteFile(script, []byte(e.mustOpx("completion", "bash")), 0o600); err != nil {
		t.Fatal(err)
	}
	probe := `source "$1" || exit 9
complete -p opx >/dev/null || exit 8
try() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); _opx; echo "${COMPREPLY[*]}"; }
try opx re
try opx read --no-n
try opx login ''
try opx login vault --token
try opx daemon --enable-s
`
	out, err := exec.Command(bash, "-c", probe, "probe", script).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	want := "read resolve restart\n--no-newline\n1password bao vault\n--token-ref\n--enable-session-lock\n"
	if string(out) != want {
		t.Errorf("completions =\n%s\nwant\n%s", out, want)
	}
	for _, shell := range []string{"zsh", "fish"} {
		if out := e.mustOpx("completion", shell); !strings.Contains(out, "opx") || !strings.Contains(out, "login") {
			t.Errorf("%s completion = %.200q", shell, out)
		}
	}
}

func TestServiceUnitAndPlist(t *testing.T) {
	e := newEnv(t)
	envFile := filepath.Join(e.root, "opx.env")
	os.WriteFile(envFile, []byte("OP_AUTHD_BACKEND=multi\n"), 0o600)
	opDir := filepath.Join(e.root, "op-here")
	os.Mkdir(opDir, 0o700)
	e.vars["OPX_OP_PATH"] = filepath.Join(opDir, "op")
	unit := e.mustOpx("service", "install", "--print", "--env-file", envFile, "--", "--ttl=60s")
	for _, want := range []string{"ExecStart=" + opxBin + " daemon --ttl=60s", "Restart=on-failure", "EnvironmentFile=" + envFile, "WantedBy=default.target",
		"EnvironmentFile=-" + filepath.Join(e.config, "opx.env"), "Environment=PATH=" + opDir + ":/usr/local/bin:/usr/bin:/bin",
		"RestartPreventExitStatus=75", "Environment=OPX_SERVICE=systemd"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	repoUnit, err := os.ReadFile("packaging/systemd/opx.service")
	if err != nil {
		t.Fatal(err)
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze is not installed: units not verified")
	} else {
		for name, text := range map[string]string{
			"generated": unit,
			"packaged":  strings.Replace(string(repoUnit), "/usr/local/bin/opx", opxBin, 1),
		} {
			f := filepath.Join(e.root, name+".service")
			os.WriteFile(f, []byte(text), 0o644)
			if out, err := exec.Command(analyze, "verify", f).CombinedOutput(); err != nil {
				t.Errorf("systemd-analyze verify of the %s unit: %v\n%s", name, err, out)
			}
		}
	}
	plist := client.LaunchdPlist("/opt/homebrew/bin/opx", client.ServiceSettings{Path: "/opt/homebrew/bin:/usr/bin", DefaultEnvFile: "/Users/me/.config/op-authd/opx.env", EnvFile: "/Users/me/opx env"}, "/Users/me/log", []string{"--backend=multi"})
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
	if runtime.GOOS != "linux" {
		t.Skip("systemd units are Linux's")
	}
	e := newEnv(t)
	unit := filepath.Join(e.vars["XDG_CONFIG_HOME"], "systemd", "user", "opx.service")
	e.vars["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=" + filepath.Join(e.root, "no-bus")
	e.vars["XDG_RUNTIME_DIR"] = filepath.Join(e.root, "r")
	r := e.opx("service", "install")
	if r.code == 0 {
		t.Skipf("this machine has a systemd user session: the install succeeded (%s)", r.stdout)
	}
	if _, err := os.Stat(unit); err == nil {
		t.Errorf("a failed install left %s behind", unit)
	}
	// A unit that was there before is put back as it was.
	os.MkdirAll(filepath.Dir(unit), 0o700)
	os.WriteFile(unit, []byte("# the user's working unit\n"), 0o644)
	if r := e.opx("service", "install", "--", "--ttl=5m"); r.code == 0 {
		t.Fatalf("the second install succeeded: %+v", r)
	}
	if got, _ := os.ReadFile(unit); string(got) != "# the user's working unit\n" {
		t.Errorf("a failed install replaced the unit that was there: %q", got)
	}
	if !strings.Contains(r.stderr, "opx: hint:") {
		t.Errorf("no hint on why: %q", r.stderr)
	}
}
