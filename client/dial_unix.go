//go:build unix

package client

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
)

// dial connects to the daemon's Unix socket at sock.
func dial(ctx context.Context, sock string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

// daemonAbsent reports whether a dial error means nobody listens: no
// socket file, or one nobody accepts on.
func daemonAbsent(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// connReset reports whether err is the daemon closing the connection under
// the client.
func connReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// detached is how the autostarted daemon runs: in a session of its own,
// away from this process's terminal and its signals.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// connFD is conn's file descriptor number, for api.ConnFDHeader, or "" when
// it has none.
func connFD(conn net.Conn) string {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return ""
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return ""
	}
	fd := ""
	raw.Control(func(f uintptr) { fd = strconv.FormatUint(uint64(f), 10) })
	return fd
}
