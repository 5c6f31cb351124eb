package main

import (
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// The client side knows only the wire: the library (client), the commands
// (cli), the shims and what they use depend on neither the daemon nor the
// backends nor a Vault client (docs/architecture.md). Checked with go list
// -deps for linux, darwin and windows.
func TestClientKnowsOnlyTheWire(t *testing.T) {
	forbidden := []string{"github.com/opxhq/opx/daemon", "github.com/opxhq/opx/backend", "github.com/hashicorp/"}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		for _, pkg := range []string{"./client", "./cli", "./shim", "./masked", "./template", "./envfile"} {
			for _, dep := range deps(t, goos, pkg) {
				for _, f := range forbidden {
					if dep == f || strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f) {
						t.Errorf("GOOS=%s: package %s depends on %s", goos, pkg, dep)
					}
				}
			}
		}
	}
}

// The library is small enough to link into any Go program: package client
// uses only the wire types (api), the paths (xdg), self, on Windows the
// pipe transport (winpipe) and the standard library (with golang.org/x/sys),
// never the command line.
func TestClientLibraryIsLean(t *testing.T) {
	allowed := map[string]bool{
		"github.com/opxhq/opx/client":  true,
		"github.com/opxhq/opx/api":     true,
		"github.com/opxhq/opx/xdg":     true,
		"github.com/opxhq/opx/self":    true,
		"github.com/opxhq/opx/winpipe": true,
	}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		for _, dep := range deps(t, goos, "./client") {
			std := !strings.Contains(strings.Split(dep, "/")[0], ".")
			if !std && !allowed[dep] && !strings.HasPrefix(dep, "golang.org/x/sys/") {
				t.Errorf("GOOS=%s: package client depends on %s", goos, dep)
			}
		}
	}
}

// deps is every package pkg depends on, for goos. It skips the test on
// Windows, where the tests run under wine with no go command: the imports
// are a property of the source tree, checked for every GOOS (windows
// included) where the Linux build runs these tests.
func deps(t *testing.T, goos, pkg string) []string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("go list is not there under wine; the Linux build checks the windows imports (GOOS=windows go list -deps)")
	}
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Env = append(cmd.Environ(), "GOOS="+goos)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}
