// Package notifytest runs, for tests, a private D-Bus session bus
// (Debian's dbus-daemon) and the test notification server
// (internal/notify/testdata/notifyserver, whose package comment lists its
// NOTIFY_* settings).
package notifytest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// busConfig is a session bus with no service directories: the tests' own
// server is the only notification server, and a "no server" test cannot
// start one installed on the machine. dbus-daemon refuses a config
// without a listen address, so the socket is named here.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// Bus is a running dbus-daemon.
type Bus struct {
	Dir  string // its directory; the socket is Dir/bus
	Addr string // its address, as it printed it
}

// StartBus starts a session bus for t alone, stopped when t ends. It
// skips t, saying why, where dbus-daemon is not installed.
func StartBus(t testing.TB) *Bus {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("dbus-daemon is not installed (Debian package dbus-daemon): the notification tests need a real session bus")
	}
	// Short: a Unix socket path holds about 100 bytes.
	dir, err := os.MkdirTemp("", "opxbus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	config := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(config, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+config, "--nofork", "--print-address")
	cmd.Stderr = os.Stderr
	return &Bus{Dir: dir, Addr: startLine(t, cmd)}
}

var build struct {
	once sync.Once
	bin  string
	err  error
}

// server builds the test notification server once per test binary.
func server() (string, error) {
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "opxnotify")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "notifyserver")
		cmd := exec.Command("go", "build", "-o", build.bin, "github.com/opxhq/opx/internal/notify/testdata/notifyserver")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("build the test notification server: %v\n%s", err, out)
		}
	})
	return build.bin, build.err
}

// StartServer starts the test notification server on b with env (NOTIFY_*
// settings), waits until it owns its name, and returns the path of its
// log.
func StartServer(t testing.TB, b *Bus, env ...string) string {
	t.Helper()
	bin, err := server()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(b.Dir, "notify.log")
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"DBUS_SESSION_BUS_ADDRESS=" + b.Addr, "NOTIFY_LOG=" + log}, env...)
	cmd.Stderr = os.Stderr
	if line := startLine(t, cmd); line != "ready" {
		t.Fatalf("notifyserver printed %q, want ready", line)
	}
	return log
}

// startLine starts cmd, stopped when t ends, and returns the first line it
// prints.
func startLine(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("%s printed no line: %v", cmd.Path, err)
	}
	return strings.TrimSuffix(line, "\n")
}
