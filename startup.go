package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// startupTrace is OPX_STARTUP_TRACE=1: a command prints on stderr what it
// cost before its first request to the daemon, as two parts: everything up
// to main (the runtime and every linked package's init; GODEBUG=inittrace=1
// itemises it) and opx's own client path from main to the request. The
// startup-budget test reads it; users can read it when opx feels slow.
type startupTrace struct {
	start         time.Time
	allocs, bytes uint64
}

// newStartupTrace returns nil unless OPX_STARTUP_TRACE=1.
func newStartupTrace() *startupTrace {
	if os.Getenv("OPX_STARTUP_TRACE") != "1" {
		return nil
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return &startupTrace{start: time.Now(), allocs: m.Mallocs, bytes: m.TotalAlloc}
}

// beforeRequest prints the trace line; the client calls it once, just before
// it writes its first request.
func (t *startupTrace) beforeRequest() {
	elapsed := time.Since(t.start)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(os.Stderr, "opx startup: before main: %d allocs, %d bytes; main to first request: %d allocs, %d bytes, %.3f ms\n",
		t.allocs, t.bytes, m.Mallocs-t.allocs, m.TotalAlloc-t.bytes, float64(elapsed)/float64(time.Millisecond))
}
