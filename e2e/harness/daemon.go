package harness

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StartDaemon runs `opx daemon ARGS` (or prog ARGS, an opx-authd link, when
// prog is not "") and waits until it accepts connections. The settings
// among args go in the clients' environment too, as a user who starts a
// daemon with them would set them (a client warns when the running
// daemon's settings differ from its own).
func (e *Env) StartDaemon(prog string, args ...string) *exec.Cmd {
	e.T.Helper()
	for k, v := range SettingsEnv(args) {
		e.Vars[k] = v
	}
	if prog == "" {
		prog = e.Daemon
		args = append([]string{"daemon"}, args...)
	}
	return e.StartDaemonWith(e.Environ(), prog, args...)
}

// StartDaemonByHand runs `opx daemon ARGS` as a user who types it does:
// the clients' environment does not get the settings among args.
func (e *Env) StartDaemonByHand(args ...string) *exec.Cmd {
	e.T.Helper()
	return e.StartDaemonWith(e.Environ(), e.Daemon, append([]string{"daemon"}, args...)...)
}

// StartDaemonWith runs prog ARGS with exactly the environment env (a
// daemon started by hand, or by a service manager, whose settings the
// clients' environment does not share) and waits until it accepts
// connections. The daemon is stopped when the test ends.
func (e *Env) StartDaemonWith(env []string, prog string, args ...string) *exec.Cmd {
	e.T.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = env
	logb := &SyncBuf{}
	e.out = logb
	cmd.Stdout, cmd.Stderr = logb, logb
	if err := cmd.Start(); err != nil {
		e.T.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", e.Sock); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			e.T.Fatalf("daemon exited at start: %s", logb.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("daemon did not listen: %s", logb.String())
		}
	}
	e.T.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
	})
	return cmd
}

// SettingsEnv maps the daemon flags among args that a client compares
// (--backend, --ttl, --op-path) to their environment variables.
func SettingsEnv(args []string) map[string]string {
	env := map[string]string{}
	for _, a := range args {
		for flag, name := range map[string]string{"--backend=": "OP_AUTHD_BACKEND", "--ttl=": "OP_AUTHD_TTL", "--op-path=": "OPX_OP_PATH"} {
			if v, ok := strings.CutPrefix(a, flag); ok {
				env[name] = v
			}
		}
	}
	return env
}

// DaemonLog is what the daemon StartDaemon ran last has printed so far.
func (e *Env) DaemonLog() string {
	if e.out == nil {
		return ""
	}
	return e.out.String()
}

// DaemonPID returns the pid recorded in the socket's lock file, or 0.
func (e *Env) DaemonPID() int {
	b, err := os.ReadFile(e.Sock + ".lock")
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// StopDaemon ends the daemon named in the lock file (started or
// autostarted), if any, and waits for it to go.
func (e *Env) StopDaemon() {
	pid := e.DaemonPID()
	if pid <= 0 || !Alive(pid) {
		return
	}
	terminate(pid)
	for i := 0; i < 400 && Alive(pid); i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if Alive(pid) {
		kill(pid)
	}
}

// Alive reports whether pid is a running (not zombie) process.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// DaemonsExact reports whether Daemons tells one Env's daemons from
// another's. The daemon makes itself non-dumpable, so only a process
// with CAP_SYS_PTRACE (root, here) may read its environment and
// executable; without them Daemons counts every daemon of this test
// binary, and a test that counts must run alone (no t.Parallel).
func DaemonsExact() bool { return os.Geteuid() == 0 }

// Daemons returns the live daemon processes of this Env: those of this
// test binary's opx (opx daemon, or the opx-authd link) whose HOME is the
// Env's. See DaemonsExact for when it cannot tell Envs apart.
func (e *Env) Daemons() []int {
	b := Bins()
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || !Alive(pid) {
			continue
		}
		// The program is the test's opx (by its executable: an autostarted
		// daemon is named opx in its argv), run as the daemon.
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		ours := exe == b.Opx || exe == b.Daemon
		if err != nil { // not dumpable, and we are not root: go by the name
			ours = strings.HasPrefix(args[0], b.Dir) || args[0] == "opx"
		}
		if !ours || (len(args) < 2 || args[1] != "daemon") && !strings.HasSuffix(args[0], "opx-authd") {
			continue
		}
		if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil && !bytes.Contains(env, []byte("HOME="+e.Vars["HOME"]+"\x00")) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}
