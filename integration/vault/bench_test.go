//go:build bench

package vaultit

import (
	"testing"

	"github.com/opxhq/opx/integration/suite"
)

// TestBenchReport is the Vault part of `make bench`.
func TestBenchReport(t *testing.T) {
	quiet = true
	suite.Report(t, "vault", "Vault 1.14.1", newServer)
}
