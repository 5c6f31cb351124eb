package console

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/opxhq/opx/internal/testdir"
)

// report is what a helper process saw of its console, and what Detach did.
type report struct {
	Processes, After int
	Window, Detached bool
	Err              string
}

// The test binary, started again with a console as the daemon may get one,
// says what Detach made of it: a console without a window (autostart's) or
// shared with another process (a shell's) is kept; one of its own with a
// window is left, and stderr goes to the log. Under wine a console has no
// window, so there only the first two are seen; "as-task" goes on as if
// its console had one, to see it left and stderr written to the log.
func TestDetachLeavesOnlyAConsoleMadeForIt(t *testing.T) {
	if out := os.Getenv("OPX_CONSOLE_REPORT"); out != "" {
		helper(out)
		os.Exit(0)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := testdir.New(t)
	for _, tc := range []struct {
		name  string
		flags uint32
		share bool
	}{
		{"no-window", windows.CREATE_NO_WINDOW, false},
		{"own", windows.CREATE_NEW_CONSOLE, false},
		{"shared", windows.CREATE_NEW_CONSOLE, true},
		{"as-task", windows.CREATE_NEW_CONSOLE, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".json")
			cmd := exec.Command(exe, "-test.run=^TestDetachLeavesOnlyAConsoleMadeForIt$")
			cmd.Env = append(os.Environ(), "OPX_CONSOLE_REPORT="+out)
			if tc.share {
				cmd.Env = append(cmd.Env, "OPX_CONSOLE_SHARE=1")
			}
			if tc.name == "as-task" {
				cmd.Env = append(cmd.Env, "OPX_CONSOLE_WINDOW=1")
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: tc.flags}
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var r report
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", r)
			if r.Err != "" {
				t.Fatalf("Detach: %s", r.Err)
			}
			switch tc.name {
			case "no-window":
				if r.Detached {
					t.Errorf("a console with no window was left: op would get a window each")
				}
			case "own":
				if r.Processes != 1 || r.Detached != r.Window {
					t.Errorf("a console of its own: %d processes, window %v, left %v; want 1, and left when it has a window", r.Processes, r.Window, r.Detached)
				}
				if r.Detached {
					log, _ := os.ReadFile(out + ".log")
					if r.After != 0 || !strings.Contains(string(log), "said after Detach") {
						t.Errorf("after Detach: %d processes on its console, log %q; want none, and stderr in the log", r.After, log)
					}
				}
			case "as-task":
				log, _ := os.ReadFile(out + ".log")
				if !r.Detached || r.After != 0 || string(log) != "said after Detach\n" {
					t.Errorf("a console of its own with a window: left %v, %d processes on it after, log %q; want left, none, stderr in the log", r.Detached, r.After, log)
				}
			case "shared":
				if r.Processes != 2 || r.Detached {
					t.Errorf("a console shared with its parent: %d processes, left %v; want 2, kept", r.Processes, r.Detached)
				}
			}
		})
	}
}

// helper is the test binary as the daemon: with OPX_CONSOLE_SHARE it
// starts itself again on its own console and waits (a shell running the
// daemon); else it calls Detach and reports.
func helper(out string) {
	if os.Getenv("OPX_CONSOLE_SHARE") != "" {
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Env = append(os.Environ(), "OPX_CONSOLE_SHARE=")
		cmd.Run()
		return
	}
	window, _, _ := getConsoleWindow.Call()
	r := report{Processes: processes(), Window: window != 0}
	var err error
	if os.Getenv("OPX_CONSOLE_WINDOW") != "" {
		// stderr is NUL (os/exec's default), which is left as the
		// console is: to the log.
		r.Window = true
		r.Detached, err = detach(out+".log", true)
	} else {
		r.Detached, err = Detach(out + ".log")
	}
	if err != nil {
		r.Err = err.Error()
	}
	r.After = processes()
	os.Stderr.WriteString("said after Detach\n")
	b, _ := json.Marshal(r)
	os.WriteFile(out, b, 0o600)
}

// A process with no console starts op without a window; one with a
// console lets op share it.
func TestHideChild(t *testing.T) {
	cmd := exec.Command("op.exe")
	HideChild(cmd)
	hidden := cmd.SysProcAttr != nil && cmd.SysProcAttr.CreationFlags&windows.CREATE_NO_WINDOW != 0
	if n := processes(); hidden != (n == 0) {
		t.Errorf("with %d processes on this console, HideChild set CREATE_NO_WINDOW: %v", n, hidden)
	}
}
