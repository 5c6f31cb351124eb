//go:build !race

package harness

// RaceEnabled reports whether this binary is built with the race detector.
const RaceEnabled = false
