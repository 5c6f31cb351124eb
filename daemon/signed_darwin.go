package daemon

import (
	"context"
	"os/exec"
	"time"
)

// signedCheck verifies an executable's code signature with codesign.
func signedCheck() func(path string) bool {
	return func(path string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, "/usr/bin/codesign", "--verify", "--strict", "--", path).Run() == nil
	}
}
