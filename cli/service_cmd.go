package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/self"
	"github.com/opxhq/opx/xdg"
)

// ServiceCmd is `opx service install|uninstall|status`: the daemon as a
// systemd user service (Linux), a launchd agent (macOS) or a scheduled task
// that starts at the user's logon (Windows; service_task_cmd.go).
type ServiceCmd struct {
	Install   ServiceInstallCmd   `cmd:"" help:"Write and enable the service (on Windows, a task run at logon), so the daemon starts at login and restarts on failure."`
	Uninstall ServiceUninstallCmd `cmd:"" help:"Stop, disable and remove the service (or the task)."`
	Status    ServiceStatusCmd    `cmd:"" help:"Show the service manager's view of the daemon."`
}

const (
	systemdUnitName = "opx.service"
	launchdLabel    = "dev.opx.authd"
)

// ServiceInstallCmd is `opx service install`.
type ServiceInstallCmd struct {
	EnvFile string   `name:"env-file" type:"path" help:"File of KEY=VALUE settings for the daemon (OP_AUTHD_BACKEND, VAULT_ADDR, ...); not on Windows, where a task has no environment." placeholder:"FILE"`
	Print   bool     `help:"Print the unit (plist, task XML) instead of installing it."`
	Args    []string `arg:"" optional:"" name:"daemon-flags" help:"Flags for opx daemon, after --."`
}

// servicePaths is where the unit or plist goes.
func servicePaths() (file string, err error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "LaunchAgents", launchdLabel+".plist"), nil
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(cfg) {
		cfg = filepath.Join(home, ".config")
	}
	return filepath.Join(cfg, "systemd", "user", systemdUnitName), nil
}

// ServiceSettings is what a generated unit or plist carries besides the
// daemon's flags.
type ServiceSettings struct {
	// Path is the daemon's PATH: a service manager starts it with a bare
	// one, where op installed by Homebrew or in ~/bin is not found.
	Path string
	// DefaultEnvFile is config dir/opx.env, read when it exists (as the
	// packaged unit does); EnvFile is --env-file's, which must exist.
	DefaultEnvFile, EnvFile string
}

// SystemdUnit is the user unit that runs exe as the daemon.
func SystemdUnit(exe string, set ServiceSettings, args []string) string {
	var b strings.Builder
	b.WriteString("[Unit]\nDescription=opx secrets broker daemon\nDocumentation=https://github.com/opxhq/opx\n\n[Service]\nType=simple\n")
	fmt.Fprintf(&b, "ExecStart=%s\n", systemdQuote(append([]string{exe, "daemon"}, args...)))
	b.WriteString("Restart=on-failure\nRestartSec=2\n")
	// 75: another daemon serves the socket; restarting would not help.
	b.WriteString("RestartPreventExitStatus=75\nEnvironment=OPX_SERVICE=systemd\n")
	if set.Path != "" {
		fmt.Fprintf(&b, "Environment=%s\n", systemdQuote([]string{"PATH=" + set.Path}))
	}
	if set.DefaultEnvFile != "" {
		fmt.Fprintf(&b, "EnvironmentFile=-%s\n", set.DefaultEnvFile)
	}
	if set.EnvFile != "" {
		fmt.Fprintf(&b, "EnvironmentFile=%s\n", set.EnvFile)
	}
	b.WriteString("NoNewPrivileges=yes\nLimitCORE=0\nUMask=0077\n\n[Install]\nWantedBy=default.target\n")
	return b.String()
}

func systemdQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\"'\\$%;") {
			a = strconv.Quote(strings.ReplaceAll(strings.ReplaceAll(a, "%", "%%"), "$", "$$"))
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// LaunchdPlist is the agent that runs exe as the daemon, its output in the
// data dir's log.
func LaunchdPlist(exe string, set ServiceSettings, logFile string, args []string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>` + launchdLabel + `</string>
  <key>ProgramArguments</key>
  <array>
`)
	argv := append([]string{exe, "daemon"}, args...)
	if set.EnvFile != "" || set.DefaultEnvFile != "" {
		// launchd has no environment files: a shell reads them first,
		// the default one only when it exists.
		argv = []string{"/bin/sh", "-c", `if [ -f "$0" ]; then set -a; . "$0"; set +a; fi; if [ -n "$1" ]; then set -a; . "$1"; set +a; fi; shift; exec "$@"`,
			set.DefaultEnvFile, set.EnvFile, exe, "daemon"}
		argv = append(argv, args...)
	}
	for _, a := range argv {
		fmt.Fprintf(&b, "    <string>%s</string>\n", xmlEscape(a))
	}
	b.WriteString("  </array>\n")
	b.WriteString("  <key>EnvironmentVariables</key>\n  <dict>\n    <key>OPX_SERVICE</key><string>launchd</string>\n")
	if set.Path != "" {
		fmt.Fprintf(&b, "    <key>PATH</key><string>%s</string>\n", xmlEscape(set.Path))
	}
	b.WriteString("  </dict>\n")
	b.WriteString(`  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
  <key>StandardErrorPath</key><string>` + xmlEscape(logFile) + `</string>
  <key>StandardOutPath</key><string>` + xmlEscape(logFile) + `</string>
</dict>
</plist>
`)
	return b.String()
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Run writes the unit or plist and enables it.
func (c *ServiceInstallCmd) Run(env *Env) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := c.Args
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if runtime.GOOS == "windows" {
		// The path opx.exe runs from, junctions kept: Scoop's
		// apps\opx\current is one, to the version dir that an update
		// replaces and a cleanup removes.
		return c.installTask(env, exe, args)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	envFile := c.EnvFile
	if envFile != "" {
		if envFile, err = filepath.Abs(envFile); err != nil {
			return err
		}
		if _, err := os.Stat(envFile); err != nil {
			return &client.Error{Message: fmt.Sprintf("environment file: %v", err)}
		}
	}
	file, err := servicePaths()
	if err != nil {
		return err
	}
	set := ServiceSettings{
		Path:           servicePATH(args),
		DefaultEnvFile: filepath.Join(filepath.Dir(env.Paths.ConfigFile), "opx.env"),
		EnvFile:        envFile,
	}
	var text string
	if runtime.GOOS == "darwin" {
		text = LaunchdPlist(exe, set, env.Paths.LogFile, args)
	} else {
		text = SystemdUnit(exe, set, args)
	}
	if c.Print {
		_, err := fmt.Fprint(env.Stdout, text)
		return err
	}
	if err := xdg.EnsureDir(filepath.Dir(file)); err != nil {
		return err
	}
	previous, prevErr := os.ReadFile(file)
	if err := xdg.WriteFileAtomic(file, []byte(text), 0o644); err != nil {
		return err
	}
	// A service that cannot be enabled leaves things as they were: no
	// file, or the one that was there.
	undo := func(err error) error {
		if prevErr == nil {
			_ = xdg.WriteFileAtomic(file, previous, 0o644)
			fmt.Fprintf(env.Stderr, "opx: put the previous %s back\n", file)
		} else {
			os.Remove(file)
			fmt.Fprintf(env.Stderr, "opx: removed %s again\n", file)
		}
		if runtime.GOOS != "darwin" {
			_ = exec.Command("systemctl", "--user", "daemon-reload").Run()
		}
		return err
	}
	// A daemon that opx started itself holds the socket: stop it, so that
	// the service's daemon can take it.
	if st, err := env.NoStart.Status(context.Background()); err == nil && st.Settings.Service == "" {
		if _, err := stopDaemon(env); err != nil {
			return undo(err)
		}
	}
	if runtime.GOOS == "darwin" {
		uid := strconv.Itoa(os.Getuid())
		_ = exec.Command("launchctl", "bootout", "gui/"+uid+"/"+launchdLabel).Run()
		if err := runShown(env, "launchctl", "bootstrap", "gui/"+uid, file); err != nil {
			return undo(err)
		}
	} else {
		if err := runShown(env, "systemctl", "--user", "daemon-reload"); err != nil {
			return undo(err)
		}
		if err := runShown(env, "systemctl", "--user", "enable", "--now", systemdUnitName); err != nil {
			return undo(err)
		}
	}
	fmt.Fprintf(env.Stdout, "wrote and enabled %s\n", file)
	return nil
}

// servicePATH is the PATH a service gets: the directory of the op this
// install finds (--op-path among the daemon flags, OPX_OP_PATH, or op on
// PATH), then the usual places of programs.
func servicePATH(args []string) string {
	op := os.Getenv("OPX_OP_PATH")
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--op-path="); ok {
			op = v
		} else if a == "--op-path" && i+1 < len(args) {
			op = args[i+1]
		}
	}
	if op == "" || !strings.ContainsRune(op, '/') {
		// The real op: with the shim first on PATH, the shim's directory
		// would give the daemon only opx as op.
		if p, err := self.LookPath(cmp.Or(op, "op")); err == nil {
			op = p
		}
	}
	dirs := []string{"/usr/local/bin", "/usr/bin", "/bin"}
	if runtime.GOOS == "darwin" {
		dirs = append([]string{"/opt/homebrew/bin"}, dirs...)
	}
	if strings.ContainsRune(op, '/') {
		if abs, err := filepath.Abs(filepath.Dir(op)); err == nil && !slices.Contains(dirs, abs) {
			dirs = append([]string{abs}, dirs...)
		}
	}
	return strings.Join(dirs, ":")
}

// ServiceUninstallCmd is `opx service uninstall`.
type ServiceUninstallCmd struct{}

// Run stops and removes the service.
func (ServiceUninstallCmd) Run(env *Env) error {
	if runtime.GOOS == "windows" {
		return uninstallTask(env)
	}
	file, err := servicePaths()
	if err != nil {
		return err
	}
	if runtime.GOOS == "darwin" {
		_ = runShown(env, "launchctl", "bootout", "gui/"+strconv.Itoa(os.Getuid())+"/"+launchdLabel)
	} else {
		_ = runShown(env, "systemctl", "--user", "disable", "--now", systemdUnitName)
	}
	if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
		return err
	}
	if runtime.GOOS != "darwin" {
		_ = runShown(env, "systemctl", "--user", "daemon-reload")
	}
	fmt.Fprintf(env.Stdout, "removed %s\n", file)
	return nil
}

// restartService has the service manager restart the daemon; service is
// the daemon's OPX_SERVICE or --service ("systemd", "launchd", "schtasks",
// or with ":NAME").
func restartService(env *Env, service string) error {
	manager, name, _ := strings.Cut(service, ":")
	if manager == "schtasks" {
		// Stopped through the daemon, which cleans up (schtasks /End
		// would kill it), then run again by the task.
		if _, err := stopDaemon(env); err != nil {
			return err
		}
		return runSchtasks(env, "start the daemon yourself with: opx daemon, or let any opx command start it", "/Run", "/TN", cmp.Or(name, taskName))
	}
	if manager == "launchd" {
		return runShown(env, "launchctl", "kickstart", "-k", "gui/"+strconv.Itoa(os.Getuid())+"/"+cmp.Or(name, launchdLabel))
	}
	return runShown(env, "systemctl", "--user", "restart", cmp.Or(name, systemdUnitName))
}

// ServiceStatusCmd is `opx service status`.
type ServiceStatusCmd struct{}

// Run shows what the service manager says.
func (ServiceStatusCmd) Run(env *Env) error {
	if runtime.GOOS == "windows" {
		return taskStatus(env)
	}
	if runtime.GOOS == "darwin" {
		return runShown(env, "launchctl", "print", "gui/"+strconv.Itoa(os.Getuid())+"/"+launchdLabel)
	}
	return runShown(env, "systemctl", "--user", "status", "--no-pager", systemdUnitName)
}

// runShown runs a service-manager command with its output on the user's
// streams, naming it when it fails, and saying so in one sentence when
// there is no systemd user session to talk to.
func runShown(env *Env, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	var errb bytes.Buffer
	cmd.Stdout = env.Stdout
	cmd.Stderr = io.MultiWriter(env.Stderr, &errb)
	// Done when the command is, even if something it started holds its
	// stderr open (under wine, schtasks' console host sometimes does).
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		e := &client.Error{Message: fmt.Sprintf("%s %s: %v", name, strings.Join(args, " "), err), Err: err}
		if strings.Contains(errb.String(), "Failed to connect to bus") || strings.Contains(errb.String(), "No medium found") {
			e.Hint = "there is no systemd user session here (no user bus, as in a container or an ssh session without one): run the daemon yourself (opx daemon, or let any opx command start it), or enable one with: loginctl enable-linger $USER"
		}
		if errors.Is(err, exec.ErrNotFound) {
			e.Hint = name + " is not installed: run the daemon yourself (opx daemon, or let any opx command start it)"
		}
		return e
	}
	return nil
}
