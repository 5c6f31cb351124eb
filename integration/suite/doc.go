// Package suite is opx's Vault and OpenBao integration suite: the real opx
// daemon, built from this repository by e2e/harness, against a real server
// that the calling test module starts in-process (Vault and OpenBao cannot
// share one module). The server side is behind Server; the tests are here,
// so both servers pass the same ones.
//
// It runs on Linux and macOS (its daemons listen on Unix sockets, its
// PostgreSQL runs as Debian packages it): its files are built for unix
// only, and this one keeps the package whole on Windows.
package suite
