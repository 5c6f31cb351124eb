//go:build bench

package vaultit

import (
	"testing"

	"github.com/opxhq/opx/integration/harness"
)

// TestBenchReport is the Vault part of `make bench`.
func TestBenchReport(t *testing.T) {
	quiet = true
	harness.Report(t, "vault", "Vault 1.14.1", bins, newServer)
}
