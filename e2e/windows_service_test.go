//go:build linux

package e2e

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// opx service on Windows under wine (issue 23): install registers the
// logon task through schtasks and stops the daemon opx had started, status
// shows the task and the daemon, uninstall stops the task's daemon and
// deletes the task. Every opx.exe is run by the peerhelper, as in
// windows_test.go.
//
// Wine's schtasks keeps a task's settings but drops its trigger, principal
// and command, and runs nothing: the logon start is held by the unit tests
// of the definition (cli/service_task_test.go), not here. The task's name
// is the one users see, opx-authd, in the prefix every wine test shares:
// this is the only test that registers a task there.
func TestWindowsServiceInstallStatusUninstall(t *testing.T) {
	t.Parallel()
	w, e := winFakeEnv(t)
	ph := w.PeerHelper
	const ref = "op://a/b/c"
	taskFile := filepath.Join(w.Prefix, "drive_c", "windows", "system32", "tasks", "opx-authd")
	t.Cleanup(func() {
		if _, err := os.Stat(taskFile); err == nil {
			e.Run("schtasks", nil, "/Delete", "/TN", "opx-authd", "/F")
		}
	})
	pipeFile := filepath.Join(e.DataDir, "pipe")

	// --print: the definition, naming this opx.exe and this user.
	r := e.Run(ph, nil, "opx", "service", "install", "--print", "--", "--ttl=60s")
	for _, want := range []string{"<Command>" + w.WinPath(w.Opx) + "</Command>", "<Arguments>daemon --service=schtasks --ttl=60s</Arguments>",
		"<LogonTrigger>", "<UserId>S-1-5-21-", "<LogonType>InteractiveToken</LogonType>"} {
		if r.Code != 0 || !strings.Contains(r.Stdout, want) {
			t.Fatalf("opx.exe service install --print = %+v; want exit 0 and %q", r, want)
		}
	}
	if r := e.Run(ph, nil, "opx", "service", "install", "--env-file", `C:\opx.env`); r.Code != 1 ||
		!strings.Contains(r.Stderr, "a scheduled task has no environment") || !strings.Contains(r.Stderr, "config.json") {
		t.Errorf("opx.exe service install --env-file = %+v; want exit 1, why, and where the settings go", r)
	}

	// install: the task is registered, and the daemon opx had started is
	// stopped so that the task's can take the pipe.
	if r := e.Run(ph, nil, "opx", "read", ref); r.Code != 0 {
		t.Fatalf("opx.exe read (autostart) = %+v", r)
	}
	r = e.Run(ph, nil, "opx", "service", "install", "--", "--ttl=60s")
	if r.Code != 0 || !strings.Contains(r.Stdout, "registered and started the scheduled task opx-authd") {
		t.Fatalf("opx.exe service install = %+v", r)
	}
	stored, err := os.ReadFile(taskFile)
	if err != nil {
		t.Fatalf("no task in wine's store after install: %v", err)
	}
	// What wine keeps of the definition shows that schtasks read the file.
	for _, want := range []string{"opx secrets broker daemon", "<DisallowStartIfOnBatteries>false", "<StopIfGoingOnBatteries>false",
		"<ExecutionTimeLimit>PT0S", "<Priority>5", "<MultipleInstancesPolicy>IgnoreNew"} {
		if !strings.Contains(string(stored), want) {
			t.Errorf("wine's stored task lacks %q:\n%s", want, stored)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(e.DataDir, "*.xml")); len(left) > 0 {
		t.Errorf("the definition given to schtasks was left behind: %v", left)
	}
	if _, err := os.Stat(pipeFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the daemon opx started still runs after install (pipe name file: %v)", err)
	}

	r = e.Run(ph, nil, "opx", "service", "status")
	if r.Code != 0 || !strings.Contains(r.Stdout, "daemon: not running") || !strings.Contains(r.Stdout, "log: "+w.WinPath(filepath.Join(e.DataDir, "opx-authd.log"))) {
		t.Errorf("opx.exe service status = %+v; want exit 0, the daemon not running, and its log", r)
	}

	// A daemon the task started (as its --service says; OPX_SERVICE here,
	// wine's task running nothing) is the task's: status says so, and
	// uninstall stops it.
	if r := e.Run(ph, []string{"OPX_SERVICE=schtasks"}, "opx", "read", ref); r.Code != 0 {
		t.Fatalf("opx.exe read (autostart as the task's) = %+v", r)
	}
	if st := winStatus(t, e); st.Settings.Service != "schtasks" {
		t.Errorf("status settings.service = %q, want schtasks", st.Settings.Service)
	}
	if r := e.Run(ph, nil, "opx", "service", "status"); r.Code != 0 || !strings.Contains(r.Stdout, "daemon: running, started by the task") {
		t.Errorf("opx.exe service status with the task's daemon = %+v", r)
	}
	r = e.Run(ph, nil, "opx", "service", "uninstall")
	if r.Code != 0 || !strings.Contains(r.Stdout, "removed the scheduled task opx-authd") {
		t.Fatalf("opx.exe service uninstall = %+v", r)
	}
	if _, err := os.Stat(taskFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the task is still in wine's store after uninstall: %v", err)
	}
	if _, err := os.Stat(pipeFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the task's daemon still runs after uninstall (pipe name file: %v)", err)
	}
}
