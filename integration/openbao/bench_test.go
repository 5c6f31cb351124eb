//go:build bench

package baoit

import (
	"testing"

	"github.com/opxhq/opx/integration/suite"
)

// TestBenchReport is the OpenBao part of `make bench`.
func TestBenchReport(t *testing.T) {
	quiet = true
	suite.Report(t, "bao", "OpenBao 2.4.0", newServer)
}
