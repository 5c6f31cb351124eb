package cli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// Exec runs the program at path in place of opx, with the argument list
// argv (its name first) and the environment env. Windows cannot replace a
// process: Exec runs the program as a child with opx's standard streams,
// in opx's console and process group, so that the console gives it Ctrl-C
// and Ctrl-Break itself, which opx only outlives, and returns its exit
// status; err is the error that kept it from starting.
func Exec(path string, argv, env []string) (code int, err error) {
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err == nil || errors.As(err, &ee) {
		return cmd.ProcessState.ExitCode(), nil
	}
	return 1, nil // Wait failed after the program ran: its status is lost
}

// signalStop asks the daemon to stop through its API, as opx stop does:
// Windows has no SIGTERM, and terminating the process would leave its pipe
// name file behind.
func signalStop(env *Env, _ int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := env.NoStart.Stop(ctx)
	return err
}
