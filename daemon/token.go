package daemon

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/opxhq/opx/xdg"
)

// tokenBytes is the size of the bearer token before hex encoding.
const tokenBytes = 32

// loadOrCreateToken returns the bearer token in path, making a new one when
// the file is missing or does not hold a well-formed token.
func loadOrCreateToken(path string) ([]byte, error) {
	b, err := xdg.ReadPrivateFile(path)
	switch {
	case err == nil:
		tok := []byte(strings.TrimSpace(string(b)))
		clear(b)
		if validToken(tok) {
			return tok, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read token: %w", err)
	}
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate token: %w", err)
	}
	tok := []byte(hex.EncodeToString(raw))
	clear(raw)
	if err := xdg.WriteFileAtomic(path, tok, 0o600); err != nil {
		return nil, fmt.Errorf("write token: %w", err)
	}
	return tok, nil
}

func validToken(tok []byte) bool {
	if len(tok) != hex.EncodedLen(tokenBytes) {
		return false
	}
	_, err := hex.DecodeString(string(tok))
	return err == nil
}

// tokenMatches reports whether the Authorization header carries token,
// comparing in constant time.
func tokenMatches(header string, token []byte) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), token) == 1
}

// tokenKeeper puts the token file back when it is gone (a cleaner, a user
// who removed the data dir's files): without it no client could talk to
// this daemon, nor stop it. A file that is there is left as it is.
type tokenKeeper struct {
	path  string
	token []byte
	mu    sync.Mutex
	log   func(msg string)
}

func (k *tokenKeeper) check() {
	if _, err := os.Lstat(k.path); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := os.Lstat(k.path); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err := xdg.WriteFileAtomic(k.path, k.token, 0o600); err != nil {
		k.log("the token file is gone and could not be written again: " + err.Error())
		return
	}
	k.log("the token file was gone; written again")
}
