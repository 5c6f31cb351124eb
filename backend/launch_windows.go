package backend

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// execOP runs op and waits for it: Windows has no exec. op gets the rest
// of standard input and the same output; the daemon's job object holds
// both processes, so a timeout ends op too.
func execOP(path string, argv, env []string) int {
	cmd := exec.Command(path, argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "opx: run %s: %v\n", path, err)
	return 127
}

// selfExecutable is the program the daemon starts as the launcher.
func selfExecutable() (string, error) { return os.Executable() }
