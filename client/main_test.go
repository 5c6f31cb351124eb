//go:build unix

// Against the real daemon, which has no Windows port on this branch yet
// (issue 23): the Windows tests of the library are dial_windows_test.go.

package client_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// opxDir holds the opx built for these tests; TestMain puts it first on
// PATH, where a client with Autostart and no DaemonPath finds it.
var opxDir string

// TestMain builds opx and runs the tests and examples as a program that
// links the library would: in a HOME of its own, with the fake backend,
// against the real daemon.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Short paths: a Unix socket path holds about 100 bytes.
	root, err := os.MkdirTemp("", "opxc")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(root)
	opxDir = filepath.Join(root, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(opxDir, "opx"), "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build opx: %v\n%s", err, out)
		return 1
	}
	home := filepath.Join(root, "h")
	for k, v := range map[string]string{
		"HOME":             home,
		"XDG_DATA_HOME":    filepath.Join(home, "d"),
		"XDG_CONFIG_HOME":  filepath.Join(home, "c"),
		"XDG_RUNTIME_DIR":  filepath.Join(root, "r"),
		"OP_AUTHD_BACKEND": "fake",
		"PATH":             opxDir + string(os.PathListSeparator) + os.Getenv("PATH"),
	} {
		os.Setenv(k, v)
	}
	for _, k := range []string{"OPX_SOCKET_PATH", "OPX_AUTHD_PATH", "OPX_AUTOSTART", "OP_ACCOUNT", "OPX_ACCOUNT"} {
		os.Unsetenv(k)
	}
	if err := os.MkdirAll(filepath.Join(root, "r"), 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	stop := exec.Command(filepath.Join(opxDir, "opx"), "stop")
	stop.Run()
	return code
}
