package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The client knows the wire, not the daemon: package client, and everything
// it imports, never imports package daemon (docs/architecture.md). The
// backend package is still imported, for opx login vault alone.
func TestClientDoesNotImportTheDaemon(t *testing.T) {
	for _, goos := range []string{"linux", "darwin"} {
		cmd := exec.Command("go", "list", "-deps", "./client")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, pkg := range strings.Fields(string(out)) {
			if pkg == "github.com/opxhq/opx/daemon" {
				t.Errorf("GOOS=%s: package client depends on package daemon", goos)
			}
		}
	}
}
