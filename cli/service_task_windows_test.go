package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
)

// A Go program (opx.exe) started with the task's command line gets the
// daemon's arguments back as they were: the test binary is started again
// with exactly that command line and prints its os.Args.
func TestServiceTaskArgumentsReachTheDaemon(t *testing.T) {
	if os.Getenv("OPX_TEST_PRINT_ARGS") == "1" {
		json.NewEncoder(os.Stdout).Encode(os.Args[2:])
		os.Exit(0)
	}
	args := []string{"--ttl=60s", `--op-path=C:\Program Files\1Password CLI\op.exe`, `C:\trailing\ `, `C:\a dir\\`,
		`say "hi"`, `a\"b`, "", `\\server\share`, "--x=<&>"}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	def, err := ScheduledTask(exe, testSID, args)
	if err != nil {
		t.Fatal(err)
	}
	p := parseTask(t, taskText(def))
	// Task Scheduler starts Command with Arguments; the test binary
	// takes the place of opx.exe and a -test.run flag goes first.
	cmd := exec.Command(exe)
	cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: fmt.Sprintf(`%s -test.run=^TestServiceTaskArgumentsReachTheDaemon$ %s`,
		windowsArg(p.Actions.Execs[0]), p.Actions.Args[0])}
	cmd.Env = append(os.Environ(), "OPX_TEST_PRINT_ARGS=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", cmd.SysProcAttr.CmdLine, err)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	want := append([]string{"daemon", "--service=schtasks"}, args...)
	if !slices.Equal(got, want) {
		t.Errorf("the daemon would get %q from %s\nwant %q", got, p.Actions.Args[0], want)
	}
}
