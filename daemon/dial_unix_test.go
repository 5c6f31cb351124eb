//go:build unix

package daemon

import (
	"context"
	"net"
)

// dialTestDaemon connects to the daemon listening at the socket path sock.
func dialTestDaemon(ctx context.Context, sock string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

// parentless reports whether this process has no parent it can name: never
// on Unix.
func parentless() bool { return false }
