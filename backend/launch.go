package backend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/opxhq/opx/api"
)

// LauncherName is the name (argv[0]) opx runs under to start op for a
// service account or Connect server: the daemon runs itself so, with the
// identity's variables on standard input ahead of op's own input, and the
// launcher puts them in its environment and becomes op (on Windows: starts
// op and waits for it). So the token never passes through the daemon's
// os/exec and syscall copies of an environment, which it could not wipe:
// the daemon writes it into the pipe from memory it wipes.
const LauncherName = "opx-op-launcher"

// maxLaunchHeader bounds the variables the launcher takes.
const maxLaunchHeader = 4 * (api.MaxTokenLen + api.MaxRefLen)

// launchHeader is the identity's variables as the launcher reads them: a
// 4-byte big-endian length, then NAME=VALUE entries each ended by a NUL.
// It is the caller's to wipe.
func (id OPIdentity) launchHeader() []byte {
	var vars [][]byte
	switch id.Kind {
	case api.IdentityServiceAccount:
		vars = [][]byte{[]byte(api.EnvServiceAccountToken + "="), id.token}
	case api.IdentityConnect:
		vars = [][]byte{[]byte(api.EnvConnectHost + "=" + id.host + "\x00" + api.EnvConnectToken + "="), id.token}
	}
	n := 0
	for _, v := range vars {
		n += len(v)
	}
	b := make([]byte, 4, 4+n+1)
	for _, v := range vars {
		b = append(b, v...)
	}
	b = append(b, 0)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// launchCommand makes cmd, which runs op at path, run through the launcher
// at exe with id's variables: its standard input becomes a pipe that gets
// the header and then stdin. The returned function, called after cmd has
// run, closes the pipe, waits for the writes and wipes the header.
func launchCommand(cmd *exec.Cmd, exe string, id OPIdentity, stdin []byte) (done func(), err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Args = append([]string{LauncherName, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = exe
	cmd.Stdin = r
	header := id.launchHeader()
	var wg sync.WaitGroup
	wg.Go(func() {
		// Straight from our memory into the pipe: no copy on the way.
		if _, err := w.Write(header); err == nil && len(stdin) > 0 {
			w.Write(stdin)
		}
		w.Close()
	})
	return func() {
		r.Close() // a launcher that never read: the writes fail now
		wg.Wait()
		clear(header)
	}, nil
}

// RunLauncher is opx run as LauncherName: argv is [LauncherName, OP,
// ARGS...]. It reads the variables from standard input, adds them to its
// environment and runs op with ARGS and the rest of standard input; it
// returns op's exit status, or 127 when op cannot run.
func RunLauncher(argv []string) int {
	if len(argv) < 2 {
		fmt.Fprintln(os.Stderr, "opx: "+LauncherName+" is started by the opx daemon, with op's path")
		return 2
	}
	vars, err := readLaunchHeader(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opx: "+LauncherName+": "+err.Error())
		return 2
	}
	env := WithoutIdentityEnv(os.Environ())
	for _, v := range vars {
		env = append(env, v)
	}
	return execOP(argv[1], argv[1:], env)
}

// readLaunchHeader reads the variables the daemon wrote, and not a byte of
// what follows them (op's own input).
func readLaunchHeader(r io.Reader) ([]string, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, fmt.Errorf("read the variables: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > maxLaunchHeader {
		return nil, fmt.Errorf("the variables are %d bytes", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read the variables: %w", err)
	}
	if b[len(b)-1] != 0 {
		return nil, errors.New("the variables do not end with a NUL")
	}
	var vars []string
	for _, kv := range strings.Split(string(b[:len(b)-1]), "\x00") {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !isIdentityVar(name) {
			return nil, fmt.Errorf("%q is not a variable op takes an identity from", name)
		}
		vars = append(vars, kv)
	}
	return vars, nil
}
