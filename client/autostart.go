package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/xdg"
)

// exitAlreadyRunning is the daemon's exit status when another daemon owns
// the socket (daemon.ExitAlreadyRunning).
const exitAlreadyRunning = 75

// ErrNotRunning is returned (wrapped in an *Error) when no daemon listens on
// the socket and the client may not start one.
var ErrNotRunning = errors.New("no opx daemon is running")

// dialOrStart connects to the socket, starting the daemon first when nothing
// listens there and autostart is on.
func (c *Client) dialOrStart(ctx context.Context) (net.Conn, error) {
	sock := c.opts.Paths.SocketPath
	conn, err := dial(ctx, sock)
	if err == nil {
		return conn, nil
	}
	if !daemonAbsent(err) {
		return nil, &Error{Message: fmt.Sprintf("cannot connect to the opx daemon at %s: %v", sock, err), Err: err}
	}
	if !c.opts.Autostart {
		return nil, &Error{Message: fmt.Sprintf("no opx daemon is running at %s", sock), Err: ErrNotRunning,
			Hint: "start one with: opx daemon (autostart is off because OPX_AUTOSTART=0)"}
	}
	return c.start(ctx)
}

// start runs the daemon in the background, detached from this process and
// its terminal (detached), and waits until it accepts connections.
func (c *Client) start(ctx context.Context) (net.Conn, error) {
	p := c.opts.Paths
	prog, args, err := daemonCommand(c.opts.DaemonPath)
	if err != nil {
		return nil, err
	}
	args = append(args, c.opts.DaemonArgs...)
	if err := xdg.EnsureDir(p.DataDir); err != nil {
		return nil, &Error{Message: err.Error(), Err: err}
	}
	logf, err := os.OpenFile(p.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("open daemon log: %v", err), Err: err}
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, 2)

	cmd := exec.Command(prog, args[1:]...)
	cmd.Args = args
	// Not the caller's 1Password service account or Connect token: each
	// request brings its own, and a daemon that kept the first caller's
	// would read as it for callers that name none.
	cmd.Env = append(withoutOPIdentity(os.Environ()), "OPX_SOCKET_PATH="+p.SocketPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		return nil, &Error{Message: fmt.Sprintf("start the daemon (%s): %v", prog, err), Err: err,
			Hint: "set OPX_AUTHD_PATH to the daemon program, or start it yourself with: opx daemon"}
	}
	exited := make(chan int, 1)
	go func() {
		_ = cmd.Wait()
		exited <- cmd.ProcessState.ExitCode()
	}()

	deadline := time.Now().Add(c.opts.StartTimeout)
	var retry time.Time // when to start a daemon again after a 75
	wait := 2 * time.Millisecond
	for {
		conn, err := dial(ctx, p.SocketPath)
		if err == nil {
			return conn, nil
		}
		select {
		case code := <-exited:
			if code != exitAlreadyRunning {
				why := logTail(p.LogFile, logStart)
				if why == "" {
					// It could not even write its log: say why if the
					// data dir is the trouble (full, read-only).
					why = "it wrote nothing"
					if err := probeWrite(p.DataDir); err != nil {
						why += "; " + err.Error()
					}
				}
				return nil, &Error{
					Message: fmt.Sprintf("the daemon exited at start (status %d): %s", code, why),
					Hint:    "see " + p.LogFile + "; fix the problem, or start the daemon yourself with: opx daemon",
				}
			}
			// Another daemon holds the lock: one that another client
			// started (it will listen soon), or one that is stopping (it
			// will let go). Try again shortly.
			exited = nil
			retry = time.Now().Add(100 * time.Millisecond)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		if !retry.IsZero() && time.Now().After(retry) {
			retry = time.Time{}
			again := exec.Command(prog, args[1:]...)
			again.Args = args
			again.Env = cmd.Env
			again.Stdout, again.Stderr = logf, logf
			again.SysProcAttr = detached()
			if err := again.Start(); err == nil {
				ch := make(chan int, 1)
				go func() { _ = again.Wait(); ch <- again.ProcessState.ExitCode() }()
				exited = ch
			}
		}
		if time.Now().After(deadline) {
			return nil, &Error{Message: fmt.Sprintf("the daemon did not start listening on %s within %s", p.SocketPath, c.opts.StartTimeout),
				Hint: "see " + p.LogFile}
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}

// daemonCommand returns the program and the argument list (argv[0]
// first) that run the daemon: an opx-authd link runs the daemon by its
// name; any other program, opx, gets the daemon subcommand and is named
// opx (run as op, the shim, opx's path may be the op link on macOS, which
// would start op, not the daemon). An empty path is the opx on PATH.
func daemonCommand(path string) (string, []string, error) {
	if path == "" {
		p, err := exec.LookPath("opx")
		if err != nil {
			return "", nil, &Error{Message: fmt.Sprintf("find opx to start the daemon: %v", err), Err: err,
				Hint: "install opx on PATH, or name it in Options.DaemonPath"}
		}
		path = p
	}
	if strings.HasPrefix(filepath.Base(path), "opx-authd") {
		return path, []string{path}, nil
	}
	return path, []string{"opx", "daemon"}, nil
}

// logTail returns the last lines the daemon wrote to its log since offset,
// or "" when it wrote none.
func logTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	b = bytes.TrimSpace(b[offset:])
	lines := strings.Split(string(b), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}

// probeWrite checks that dir takes a small file.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".opx-probe-*")
	if err != nil {
		return fmt.Errorf("the data dir %s takes no new file: %w", dir, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		return fmt.Errorf("the data dir %s takes no data: %w", dir, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("the data dir %s takes no data: %w", dir, err)
	}
	return nil
}

// withoutOPIdentity is environ without the variables that give op an
// identity (api.OPIdentityEnvVars).
func withoutOPIdentity(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(api.OPIdentityEnvVars, func(v string) bool { return strings.EqualFold(v, name) }) {
			out = append(out, kv)
		}
	}
	return out
}
