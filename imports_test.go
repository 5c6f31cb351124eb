package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The client knows only the wire: package client, and everything it
// imports, uses neither the daemon nor the backends nor a Vault client
// (docs/architecture.md). Checked with go list -deps for linux and darwin.
func TestClientKnowsOnlyTheWire(t *testing.T) {
	forbidden := []string{"github.com/opxhq/opx/daemon", "github.com/opxhq/opx/backend", "github.com/hashicorp/"}
	for _, goos := range []string{"linux", "darwin"} {
		cmd := exec.Command("go", "list", "-deps", "./client")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, pkg := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if pkg == f || strings.HasSuffix(f, "/") && strings.HasPrefix(pkg, f) {
					t.Errorf("GOOS=%s: package client depends on %s", goos, pkg)
				}
			}
		}
	}
}
