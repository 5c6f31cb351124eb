package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/xdg"
)

// opx service on Windows: the daemon as a scheduled task that starts at the
// user's logon (ScheduledTask), registered, run, queried and deleted with
// schtasks.

// installTask registers the task that runs exe as the daemon with args,
// stops a daemon already running (so that the task's, with these flags,
// takes the pipe) and starts the task now, as systemctl enable --now does.
func (c *ServiceInstallCmd) installTask(env *Env, exe string, args []string) error {
	if c.EnvFile != "" {
		return &client.Error{Message: "--env-file: a scheduled task has no environment, so nothing can read the file into the daemon's",
			Hint: "put the daemon's settings in " + env.Paths.ConfigFile + " (every daemon flag is a key there, and vault and bao hold the servers'), or give them as daemon flags: opx service install -- --backend=multi"}
	}
	// The unit and the agent read the config dir's opx.env when it is
	// there; the task cannot, and says so rather than leave it unread.
	defaultEnv := filepath.Join(filepath.Dir(env.Paths.ConfigFile), "opx.env")
	if _, err := os.Stat(defaultEnv); err == nil && !c.Print {
		fmt.Fprintf(env.Stderr, "opx: warning: the task's daemon does not read %s (a task has no environment): put its settings in %s or in daemon flags\n", defaultEnv, env.Paths.ConfigFile)
	}
	// What the unit's PATH does for an op that OPX_OP_PATH names: the task
	// runs with the user's environment as Windows keeps it, not this
	// shell's.
	if op := os.Getenv("OPX_OP_PATH"); op != "" && !slices.ContainsFunc(args, func(a string) bool {
		return a == "--op-path" || strings.HasPrefix(a, "--op-path=")
	}) {
		if abs, err := filepath.Abs(op); err == nil {
			op = abs
		}
		args = append(slices.Clone(args), "--op-path="+op)
	}
	sid, account, err := currentUser()
	if err != nil {
		return err
	}
	def, err := ScheduledTask(exe, sid, args)
	if err != nil {
		return &client.Error{Message: "cannot write the scheduled task: " + err.Error(),
			Hint: "give that value another way (config.json, or a path without %)"}
	}
	if c.Print {
		_, err := fmt.Fprint(env.Stdout, taskText(def))
		return err
	}
	if err := registerTask(env, def); err != nil {
		return err
	}
	// Any daemon that runs now serves the pipe the task's would take:
	// one opx started, or the task's own with the flags it had.
	if _, err := stopDaemon(env); err != nil {
		return &client.Error{Message: "the task is registered, but the running daemon did not stop: " + err.Error(), Err: err,
			Hint: "the task starts at your next logon; to start it now, stop the daemon (opx stop) and run: schtasks /Run /TN " + taskName}
	}
	if err := runSchtasks(env, "the task is registered and starts at your next logon; see: opx service status", "/Run", "/TN", taskName); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "registered and started the scheduled task %s (at each logon of %s)\n", taskName, account)
	return nil
}

// registerTask has schtasks create (or replace) the task from def, given
// as a file in the user's private data dir, removed again afterwards.
func registerTask(env *Env, def string) error {
	if err := xdg.EnsureDir(env.Paths.DataDir); err != nil {
		return err
	}
	f, err := os.CreateTemp(env.Paths.DataDir, "opx-authd-task-*.xml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(taskFile(def))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the task for schtasks: %w", err)
	}
	return runSchtasks(env, "nothing was changed; see the task with: opx service install --print",
		"/Create", "/TN", taskName, "/XML", f.Name(), "/F")
}

// uninstallTask stops the task's daemon, as systemctl disable --now does
// (through the daemon, which then finishes its requests and cleans up,
// where schtasks /End would kill it), and deletes the task.
func uninstallTask(env *Env) error {
	if err := schtasksQuiet("/Query", "/TN", taskName); err != nil {
		fmt.Fprintf(env.Stdout, "there is no scheduled task %s\n", taskName)
		return nil
	}
	if st, err := env.NoStart.Status(context.Background()); err == nil && strings.HasPrefix(st.Settings.Service, "schtasks") {
		if _, err := stopDaemon(env); err != nil {
			return err
		}
	}
	if err := runSchtasks(env, "remove it in Task Scheduler (taskschd.msc)", "/Delete", "/TN", taskName, "/F"); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "removed the scheduled task %s\n", taskName)
	return nil
}

// taskStatus shows what schtasks says of the task, then whether the daemon
// runs and who started it, and where it logs (what systemctl status shows
// from the journal).
func taskStatus(env *Env) error {
	err := runSchtasks(env, "install it with: opx service install", "/Query", "/TN", taskName, "/V", "/FO", "LIST")
	st, derr := env.NoStart.Status(context.Background())
	switch {
	case derr == nil && strings.HasPrefix(st.Settings.Service, "schtasks"):
		fmt.Fprintf(env.Stdout, "daemon: running, started by the task (pid %d)\n", st.PID)
	case derr == nil:
		fmt.Fprintf(env.Stdout, "daemon: running, started by opx, not by the task (pid %d); opx service install replaces it\n", st.PID)
	case isNotRunning(derr):
		fmt.Fprintln(env.Stdout, "daemon: not running")
	default:
		fmt.Fprintf(env.Stdout, "daemon: %v\n", derr)
	}
	fmt.Fprintf(env.Stdout, "log: %s\n", env.Paths.LogFile)
	return err
}

// runSchtasks is runShown for schtasks, with hint for when it fails and
// says why only in its own output (shown above the error).
func runSchtasks(env *Env, hint string, args ...string) error {
	err := runShown(env, "schtasks", args...)
	if ce := (*client.Error)(nil); errors.As(err, &ce) && ce.Hint == "" {
		ce.Hint = "schtasks says why above; " + hint
	}
	return err
}

// schtasksQuiet runs schtasks with its output dropped: for a question its
// exit status answers.
func schtasksQuiet(args ...string) error {
	return exec.Command("schtasks", args...).Run()
}
