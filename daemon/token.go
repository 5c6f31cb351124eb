package daemon

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// tokenKeeper puts the token and certificate files back when they are gone
// (a cleaner, a user who removed the data dir's files): without them no
// client could talk to this daemon, nor stop it. A file that is there is
// left as it is, and nothing is written unless the data dir is still a
// private directory of this user's.
type tokenKeeper struct {
	dir   string
	files []keptFile
	mu    sync.Mutex
	log   func(msg string)
}

// keptFile is a file the keeper puts back, with what it holds.
type keptFile struct {
	path    string
	content func() []byte
}

func (k *tokenKeeper) check() {
	for _, f := range k.files {
		if _, err := os.Lstat(f.path); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		k.put(f)
	}
}

func (k *tokenKeeper) put(f keptFile) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := os.Lstat(f.path); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err := xdg.CheckPrivateDir(k.dir); err != nil {
		k.log(filepath.Base(f.path) + " is gone and is not written again: " + err.Error())
		return
	}
	if err := xdg.WriteFileAtomic(f.path, f.content(), 0o600); err != nil {
		k.log(filepath.Base(f.path) + " is gone and could not be written again: " + err.Error())
		return
	}
	k.log(filepath.Base(f.path) + " was gone; written again")
}
