//go:build bench

package baoit

import (
	"testing"

	"github.com/opxhq/opx/integration/harness"
)

// TestBenchReport is the OpenBao part of `make bench`.
func TestBenchReport(t *testing.T) {
	quiet = true
	harness.Report(t, "bao", "OpenBao 2.4.0", bins, newServer)
}
