package winpipe

import (
	"crypto/rand"
	"encoding/hex"
)

// NamePrefix begins every name NewName makes.
const NamePrefix = "opx-authd-"

// NewName returns a fresh, unguessable pipe name, NamePrefix and 32 hex
// digits (128 random bits), for one start of the daemon. A name nobody can
// guess is one nobody can create first to wait for opx's clients, and a
// daemon that finds its name taken all the same (Listen fails with
// ErrPipeTaken) can start again under another.
func NewName() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return NamePrefix + hex.EncodeToString(b[:])
}
