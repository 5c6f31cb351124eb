//go:build unix

package daemon

// sameExecutable reports whether path, a process's executable as
// policy.ReadProcess gives it, is self (this program's resolved path).
func sameExecutable(path, self string) bool { return path == self }

// currentSID is the daemon's user SID on Windows; Unix peers are told
// apart by uid, and their Peer.SID is "" as this is.
func currentSID() (string, error) { return "", nil }
