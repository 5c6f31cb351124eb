//go:build !darwin

package daemon

// signedCheck is nil where executables carry no code signatures: a
// require_signed rule cannot be satisfied there.
func signedCheck() func(path string) bool { return nil }
