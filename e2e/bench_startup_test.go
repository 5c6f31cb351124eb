//go:build bench && unix

package e2e

// TestBenchStartup is the first table of `make bench`: what one opx process
// costs next to the cheapest process this machine can start. Every subject
// runs once per round, in a rotating order, so that a slow moment of the
// machine falls on all of them alike; the table gives medians, ratios to the
// floor (a static Go hello-world built here) and page faults from the child's
// rusage. It asserts nothing about speed.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opxhq/opx/e2e/harness"
)

// sample is one run of a process: its wall time and its page faults.
type sample struct {
	wall   time.Duration
	faults int64
}

// runOnce starts argv with env, waits, and returns what it cost.
func runOnce(t *testing.T, env []string, argv ...string) sample {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	start := time.Now()
	out, err := cmd.Output()
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return sample{wall, ru.Minflt + ru.Majflt}
}

func medianOf[T int64 | time.Duration](v []T) T {
	s := append([]T(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// burst runs argv 200 times from 20 concurrent goroutines and returns the
// wall time of the whole.
func burst(t *testing.T, env []string, argv ...string) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 10 {
				runOnce(t, env, argv...)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// shippedOpx is bin/opx as `make build` makes it (stripped, trimmed), which
// `make bench` builds first; the test binary's own build stands in when the
// bench runs on its own.
func shippedOpx(t *testing.T) string {
	if p, err := filepath.Abs(repoFile("bin/opx")); err == nil {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	t.Logf("bin/opx not built; measuring the test build %s", harness.Bins().Opx)
	return harness.Bins().Opx
}

func TestBenchStartup(t *testing.T) {
	if harness.RaceEnabled {
		t.Skip("the report measures a normal build; run it without -race")
	}
	const rounds = 101
	opx := shippedOpx(t)
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	refs := make([]string, 20)
	for i := range refs {
		refs[i] = fmt.Sprintf("op://bench/item%02d/field", i)
	}
	env := e.Environ()
	e.MustOpx(append([]string{"read"}, refs...)...) // every read below is cached

	type subject struct {
		what string
		argv []string
		runs []sample
	}
	minclient := harness.Tool(t, "./testdata/minclient")
	env = append(env, "OPX_SOCKET_PATH="+e.Sock, "OPX_TOKEN_FILE="+filepath.Join(e.DataDir, "token"),
		"OPX_CERT_FILE="+filepath.Join(e.DataDir, "tls.crt"))
	subjects := []*subject{
		{what: "static Go hello-world (the floor)", argv: []string{helloWorld(t)}},
		{what: "minimal client, testdata/minclient: the same TLS handshake and request only (the limit with TLS kept)", argv: []string{minclient, refs[0]}},
		{what: "`opx version`", argv: []string{opx, "version"}},
		{what: "cached `opx read` of 1 ref", argv: []string{opx, "read", refs[0]}},
		{what: "cached `opx read` of 20 refs", argv: append([]string{opx, "read"}, refs...)},
	}
	for _, s := range subjects { // warm the page cache
		runOnce(t, env, s.argv...)
	}
	for r := range rounds {
		for i := range subjects {
			s := subjects[(r+i)%len(subjects)]
			s.runs = append(s.runs, runOnce(t, env, s.argv...))
		}
	}
	walls := func(s *subject) []time.Duration {
		var d []time.Duration
		for _, r := range s.runs {
			d = append(d, r.wall)
		}
		return d
	}
	faults := func(s *subject) []int64 {
		var f []int64
		for _, r := range s.runs {
			f = append(f, r.faults)
		}
		return f
	}
	floor := medianOf(walls(subjects[0]))
	floorFaults := medianOf(faults(subjects[0]))

	var b strings.Builder
	fmt.Fprintf(&b, "\nOne process, %d interleaved rounds. Machine: %s\n\n", rounds, machine())
	fmt.Fprintf(&b, "| process | median | over the floor | × floor | page faults (median) | × floor's faults |\n|---|---|---|---|---|---|\n")
	for _, s := range subjects {
		m, f := medianOf(walls(s)), medianOf(faults(s))
		fmt.Fprintf(&b, "| %s | %.2f ms | %+.2f ms | %.2f× | %d | %.2f× |\n", s.what,
			ms(m), ms(m-floor), float64(m)/float64(floor), f, float64(f)/float64(floorFaults))
	}

	// 200 processes from 20 at a time, interleaved the same way.
	const bursts = 7
	burstOf := []*subject{subjects[0], subjects[1], subjects[3]}
	walls200 := make([][]time.Duration, len(burstOf))
	for r := range bursts {
		for i := range burstOf {
			k := (r + i) % len(burstOf)
			walls200[k] = append(walls200[k], burst(t, env, burstOf[k].argv...))
		}
	}
	floor200 := medianOf(walls200[0])
	fmt.Fprintf(&b, "\n200 processes from 20 at a time, median of %d interleaved bursts\n\n| processes | wall | × floor |\n|---|---|---|\n", bursts)
	for i, s := range burstOf {
		m := medianOf(walls200[i])
		fmt.Fprintf(&b, "| 200 × %s | %.0f ms | %.2f× |\n", s.what, ms(m), float64(m)/float64(floor200))
	}
	fmt.Print(b.String())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
