package daemon

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/opxhq/opx/winpipe"
	"github.com/opxhq/opx/xdg"
)

// stopSignals end the daemon cleanly: Ctrl-C and Ctrl-Break
// (os.Interrupt), and the console's close, the user's logoff and the
// system's shutdown, which Go delivers as syscall.SIGTERM. (Windows has no
// SIGHUP or SIGPIPE to ignore.)
var stopSignals = []os.Signal{os.Interrupt, sigterm}

func ignoreSignals() {}

// homeDir is the home directory ~\ rules are under: %USERPROFILE% (HOME is
// rarely set on Windows, and then often by a Unix-like shell, to the same
// directory or one of its own).
func homeDir() string {
	home, _ := os.UserHomeDir()
	return home
}

// checkSocketPath: on Windows the socket path is a file that names the
// pipe, as long as the file system allows.
func checkSocketPath(string) error { return nil }

// The pipe's name file, at the socket path (in the data dir on Windows),
// is how clients find the daemon: one line, the pipe's name as
// winpipe.Dial takes it ("opx-authd-" and 32 hex digits, winpipe.NewName),
// then "\n". The daemon writes it once it listens, atomically and private
// to the user (xdg.WriteFileAtomic), and removes it at shutdown if it
// still names its pipe. A reader takes the first line, trimmed of space,
// and refuses a name without winpipe.NamePrefix.

// maxPipeNameFile bounds what readPipeName reads.
const maxPipeNameFile = 256

// listen creates the daemon's named pipe under a fresh name, owner-only
// (winpipe.Listen), and records the name in the file at path. A name
// another process created first (winpipe.ErrPipeTaken: it would have to
// have guessed 128 random bits) is given up for another.
func listen(path string) (net.Listener, error) {
	var ln *winpipe.Listener
	var name string
	var err error
	for range 3 {
		name = winpipe.NewName()
		if ln, err = winpipe.Listen(name); !errors.Is(err, winpipe.ErrPipeTaken) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listen on a named pipe: %w", err)
	}
	if err := xdg.WriteFileAtomic(path, []byte(name+"\n"), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("record the pipe's name: %w", err)
	}
	return &pipeListener{Listener: ln, name: name}, nil
}

// pipeListener is the daemon's pipe with the name it recorded.
type pipeListener struct {
	net.Listener
	name string
}

// removeOwnSocket removes the pipe's name file at path at shutdown if it
// still names ln's pipe (not another daemon's, which cannot be while this
// one holds the lock, nor anything else put there since).
func removeOwnSocket(path string, ln net.Listener) {
	pl, ok := ln.(*pipeListener)
	if !ok {
		return
	}
	if name, err := readPipeName(path); err == nil && name == pl.name {
		os.Remove(path)
	}
}

// readPipeName reads the pipe's name from the file at path (see above).
func readPipeName(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPipeNameFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxPipeNameFile {
		return "", fmt.Errorf("%s is %d bytes or more: not a pipe name", path, len(b))
	}
	line, _, _ := strings.Cut(string(b), "\n")
	name := strings.TrimSpace(line)
	if !strings.HasPrefix(name, winpipe.NamePrefix) {
		return "", fmt.Errorf("%s holds %q, not an opx pipe name", path, name)
	}
	return name, nil
}
