package main

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
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

func TestOwnPackageInitStaysSmall(t *testing.T) {
	cmd := exec.Command(plainOpx(t), "version")
	cmd.Env = append(cmd.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("opx version: %v\n%s", err, out)
	}
	var bytes, allocs int
	var seen []string
	for _, line := range strings.Split(string(out), "\n") {
		// init PKG @T ms, T ms clock, N bytes, M allocs
		f := strings.Fields(line)
		if len(f) < 10 || f[0] != "init" || !strings.HasPrefix(f[1], "github.com/opxhq/opx") {
			continue
		}
		b, err1 := strconv.Atoi(f[7])
		a, err2 := strconv.Atoi(f[9])
		if err1 != nil || err2 != nil {
			t.Fatalf("cannot read the inittrace line %q", line)
		}
		bytes += b
		allocs += a
		seen = append(seen, line)
	}
	if bytes > maxOwnInitBytes || allocs > maxOwnInitAllocs {
		t.Errorf("opx's own package init: %d bytes in %d allocations, over the budget of %d bytes and %d allocations:\n%s",
			bytes, allocs, maxOwnInitBytes, maxOwnInitAllocs, strings.Join(seen, "\n"))
	}
	t.Logf("opx's own package init: %d bytes in %d allocations", bytes, allocs)
}
