package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/opxhq/opx/client"
)

// UnlockCmd is `opx unlock`.
type UnlockCmd struct{}

// Run asks the daemon to validate the backend and unlock the session.
func (UnlockCmd) Run(env *Env) error {
	res, err := env.NoStart.Unlock(context.Background())
	if err != nil {
		if isNotRunning(err) {
			fmt.Fprintln(env.Stdout, "no opx daemon is running; a new one starts unlocked")
			return nil
		}
		return err
	}
	fmt.Fprintln(env.Stdout, res.Message)
	return nil
}

// LockCmd is `opx lock`.
type LockCmd struct{}

// Run locks the session now and wipes the daemon's cache.
func (LockCmd) Run(env *Env) error {
	res, err := env.NoStart.Lock(context.Background())
	if err != nil {
		if isNotRunning(err) {
			fmt.Fprintln(env.Stdout, "no opx daemon is running; nothing is cached")
			return nil
		}
		return err
	}
	fmt.Fprintln(env.Stdout, res.Message)
	return nil
}

func isNotRunning(err error) bool { return errors.Is(err, client.ErrNotRunning) }
