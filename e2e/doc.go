// Package e2e holds opx's end-to-end tests: each runs the real opx binary
// as a user would, with a HOME, XDG tree and socket of its own (see
// e2e/harness), so that the tests run in parallel. A test that must run
// alone says why where it does not call t.Parallel.
//
// The suite drives opx over Unix sockets and runs on Linux and macOS: its
// files are built for unix only, and this one keeps the package (and go vet)
// whole on Windows.
package e2e
