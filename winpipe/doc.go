// Package winpipe owns opx's transport on Windows: a per-user named pipe,
// \\.\pipe\NAME, that the daemon listens on (Listen) and the client dials
// (Dial). Its conns are net.Conns for TLS and HTTP to run over, as they run
// over the Unix socket elsewhere.
//
// The pipe is the first guard, not the only one: its DACL grants the current
// user alone and it refuses remote clients; TLS with the pinned certificate,
// the bearer token and the per-program policy go on top. For the daemon's
// identification of a peer, ClientPID gives the process at the other end of
// an accepted conn. See docs/architecture.md.
//
// Everything but NewName is Windows-only; this file has no build tags so
// that the package exists, and builds and vets, on every platform.
package winpipe
