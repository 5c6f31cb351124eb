package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/opxhq/opx/client"
)

// stopWait bounds how long opx stop waits for the daemon to finish its
// requests in flight and go.
const stopWait = 2 * time.Minute

// StopCmd is `opx stop`.
type StopCmd struct{}

// Run asks the daemon to stop once its requests in flight have finished,
// and waits until it is gone. No daemon is not an error.
func (StopCmd) Run(env *Env) error {
	pid, err := stopDaemon(env)
	if err != nil {
		return err
	}
	if pid == 0 {
		fmt.Fprintln(env.Stdout, "no opx daemon is running")
		return nil
	}
	fmt.Fprintf(env.Stdout, "stopped the opx daemon (pid %d)\n", pid)
	return nil
}

// RestartCmd is `opx restart [-- DAEMON FLAGS...]`.
type RestartCmd struct {
	Flags []string `arg:"" optional:"" passthrough:"" name:"daemon-flags" help:"Flags for the new daemon, after -- (as opx daemon takes them)."`
}

// Run stops the running daemon (if any) as opx stop does, then starts a
// new one as autostart would (this command's environment and config.json,
// and the flags given), and waits until it answers.
func (c *RestartCmd) Run(env *Env) error {
	flags := c.Flags
	if len(flags) > 0 && flags[0] == "--" {
		flags = flags[1:]
	}
	if st, err := env.NoStart.Status(context.Background()); err == nil && st.Settings.Service != "" {
		// A service manager runs it: it restarts it, with the service's
		// settings, and keeps managing it.
		if len(flags) > 0 {
			return &client.Error{Message: "the daemon runs as a " + st.Settings.Service + " service: its flags are the service's",
				Hint: "change them with: opx service install -- FLAGS"}
		}
		if err := restartService(env, st.Settings.Service); err != nil {
			return err
		}
		env.NoStart.Close()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			opts := env.Options
			opts.Autostart, opts.Expect = false, nil
			fresh := client.New(opts) // reads the credentials of the new daemon
			now, err := fresh.Status(context.Background())
			fresh.Close()
			if err == nil && now.PID != st.PID {
				fmt.Fprintf(env.Stdout, "restarted the opx daemon through %s (pid %d, was %d)\n", st.Settings.Service, now.PID, st.PID)
				return nil
			}
			if time.Now().After(deadline) {
				return &client.Error{Message: "the service did not come back within 20 s", Hint: "see: opx service status"}
			}
		}
	}
	old, err := stopDaemon(env)
	if err != nil {
		return err
	}
	fresh := env.Starting(flags)
	defer fresh.Close()
	st, err := fresh.Status(context.Background())
	if err != nil {
		return err
	}
	if old != 0 {
		fmt.Fprintf(env.Stdout, "restarted the opx daemon (pid %d, was %d)\n", st.PID, old)
	} else {
		fmt.Fprintf(env.Stdout, "started the opx daemon (pid %d)\n", st.PID)
	}
	return nil
}

// stopDaemon stops the running daemon and waits until its socket is gone;
// it returns the daemon's pid, or 0 when none was running.
func stopDaemon(env *Env) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := env.NoStart.Stop(ctx)
	if isNotRunning(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	env.NoStart.Close()
	// The socket refuses connections as soon as the daemon stops taking
	// them, while it still answers the requests in flight and holds its
	// lock: wait until the lock is free (the process has ended, or is a
	// zombie its parent has yet to reap).
	deadline := time.Now().Add(stopWait)
	for {
		if lockFree(env.Paths.LockFile) {
			return res.PID, nil
		}
		if processGone(res.PID) {
			return res.PID, nil
		}
		if time.Now().After(deadline) {
			return 0, &client.Error{Message: fmt.Sprintf("the daemon (pid %d) has not stopped within %s", res.PID, stopWait),
				Hint: fmt.Sprintf("it may be finishing a slow backend call; or stop it with: kill %d", res.PID)}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
