//go:build unix

package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/opxhq/opx/e2e/harness"
)

// opx's own packages build almost nothing when a process starts: every opx
// command (a cached read above all) pays for it. Measured with
// GODEBUG=inittrace=1 on 2026-11-29: 568 bytes in 5 allocations, all in
// package daemon (its sentinel errors); the limits leave room for a few
// more of those, not for a regexp, a map or a table (a regexp alone is
// kilobytes). vault/api's own init (about 316 KB) is not opx's and is not
// counted.
const (
	maxOwnInitBytes  = 4 << 10
	maxOwnInitAllocs = 40
)

// The client path of a cached `opx read`, from main to the moment the
// request is written: the read command's grammar (without help texts),
// parsing, the token and certificate, the connection and the TLS handshake.
// Measured with OPX_STARTUP_TRACE=1 on 2026-11-29: 1,163 allocations and
// 130 KB; then 1,660 to 1,800 and 166 to 171 KB once read had its ten
// flags (--json, -o, --file-mode, --force, --max-age, --no-cache): kong's
// cost grows with each flag's tags, and the TLS handshake is about 550.
// Building every command's grammar, as opx did before, adds about 6,000
// allocations and 500 KB.
const (
	maxClientPathBytes  = 224 << 10
	maxClientPathAllocs = 2200
)

// ownInit sums the GODEBUG=inittrace=1 lines of opx's own packages.
func ownInit(t *testing.T, stderr string) (bytes, allocs int, lines []string) {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		// init PKG @T ms, T ms clock, N bytes, M allocs
		f := strings.Fields(line)
		if len(f) < 10 || f[0] != "init" || !strings.HasPrefix(f[1], "github.com/opxhq/opx") {
			continue
		}
		var b, a int
		if _, err := fmt.Sscan(f[7]+" "+f[9], &b, &a); err != nil {
			t.Fatalf("cannot read the inittrace line %q", line)
		}
		bytes += b
		allocs += a
		lines = append(lines, line)
	}
	return bytes, allocs, lines
}

func checkOwnInit(t *testing.T, stderr string) {
	t.Helper()
	bytes, allocs, lines := ownInit(t, stderr)
	if bytes > maxOwnInitBytes || allocs > maxOwnInitAllocs {
		t.Errorf("opx's own package init: %d bytes in %d allocations, over the budget of %d bytes and %d allocations:\n%s",
			bytes, allocs, maxOwnInitBytes, maxOwnInitAllocs, strings.Join(lines, "\n"))
	}
	t.Logf("opx's own package init: %d bytes in %d allocations", bytes, allocs)
}

func TestOwnPackageInitStaysSmall(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(harness.Bins().Opx, "version")
	cmd.Env = append(cmd.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("opx version: %v\n%s", err, out)
	}
	checkOwnInit(t, string(out))
}

func TestCachedReadStaysWithinItsStartupBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	e.MustOpx("read", "op://v/i/f")

	cmd := exec.Command(harness.Bins().Opx, "read", "op://v/i/f")
	cmd.Env = e.Environ("GODEBUG=inittrace=1", "OPX_STARTUP_TRACE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("opx read: %v\n%s", err, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "fake_") {
		t.Fatalf("opx read printed %q", stdout.String())
	}
	checkOwnInit(t, stderr.String())

	// opx startup: before main: A allocs, B bytes; main to first request: C allocs, D bytes, E ms
	_, line, ok := strings.Cut(stderr.String(), "main to first request: ")
	var allocs, bytes int
	if ok {
		_, err := fmt.Sscanf(line, "%d allocs, %d bytes", &allocs, &bytes)
		ok = err == nil
	}
	if !ok {
		t.Fatalf("no start-up trace on stderr:\n%s", stderr.String())
	}
	if allocs > maxClientPathAllocs || bytes > maxClientPathBytes {
		t.Errorf("a cached read allocated %d times, %d bytes, before its request: over the budget of %d and %d", allocs, bytes, maxClientPathAllocs, maxClientPathBytes)
	}
	t.Logf("client path before the request: %d allocations, %d bytes", allocs, bytes)
}
