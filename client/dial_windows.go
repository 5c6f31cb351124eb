package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/windows"

	"github.com/opxhq/opx/winpipe"
)

// maxNameFile bounds what dial reads of the name file: one pipe name.
const maxNameFile = 256

// dial connects to the daemon's named pipe. On Windows the socket path is a
// file in the data directory that holds the pipe's name, one line, which
// the daemon writes once it listens (a fresh, unguessable name each start:
// winpipe.NewName). A missing file, or a name whose pipe is gone (a daemon
// that stopped), is an error matching fs.ErrNotExist: no daemon.
func dial(ctx context.Context, nameFile string) (net.Conn, error) {
	b, err := os.ReadFile(nameFile)
	if err != nil {
		return nil, err
	}
	if len(b) > maxNameFile {
		return nil, fmt.Errorf("the pipe name file %s is %d bytes: not a pipe name", nameFile, len(b))
	}
	name := strings.TrimSpace(string(b))
	if name == "" {
		// Being written by a daemon that just started: as good as none yet.
		return nil, fmt.Errorf("the pipe name file %s is empty: %w", nameFile, fs.ErrNotExist)
	}
	if !strings.HasPrefix(name, winpipe.NamePrefix) {
		return nil, fmt.Errorf("the pipe name file %s holds %q, not an opx pipe name (%s...)", nameFile, name, winpipe.NamePrefix)
	}
	return winpipe.Dial(ctx, name)
}

// daemonAbsent reports whether a dial error means nobody listens: no name
// file, or no pipe of that name.
func daemonAbsent(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// connReset reports whether err is the daemon closing the pipe under the
// client: a read finds it broken, a write finds it closing or gone.
func connReset(err error) bool {
	return errors.Is(err, windows.ERROR_BROKEN_PIPE) || errors.Is(err, windows.ERROR_NO_DATA) ||
		errors.Is(err, windows.ERROR_PIPE_NOT_CONNECTED)
}

// detachedFlags are the creation flags of the autostarted daemon: a console
// of its own that no window shows (CREATE_NO_WINDOW; the op processes it
// runs share it instead of each opening one) and a process group of its own,
// so that Ctrl-C and Ctrl-Break in the user's console never reach it.
// os/exec lets it inherit only the handles named as its streams (here its
// log file; stdin is NUL).
const detachedFlags = windows.CREATE_NO_WINDOW | windows.CREATE_NEW_PROCESS_GROUP

// detached is how the autostarted daemon runs: detachedFlags.
func detached() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: detachedFlags, HideWindow: true}
}

// connFD is "": the daemon on Windows identifies a client by the pipe's
// client process at accept and takes no handle number (api.ConnFDHeader
// is not sent).
func connFD(net.Conn) string { return "" }
