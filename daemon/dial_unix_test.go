//go:build unix

package daemon

import (
	"context"
	"net"
	"testing"
)

// dialTestDaemon connects to the daemon listening at the socket path sock.
func dialTestDaemon(ctx context.Context, sock string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

// testTempDir is t.TempDir (on Windows, one wine can clean up).
func testTempDir(t testing.TB) string { return t.TempDir() }

// parentless reports whether this process has no parent it can name: never
// on Unix.
func parentless() bool { return false }
