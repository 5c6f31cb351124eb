package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
)

// exeHashes computes the SHA-256 of executables for exe_sha256 rules,
// reading each through the running process (/proc/PID/exe on Linux; the
// image path on macOS and Windows), and remembers the result by device,
// inode (on Windows volume serial and file index), size and change and
// modification times: any write to the file changes its change time, so a
// remembered hash is never served for other content.
type exeHashes struct {
	mu   sync.Mutex
	sums map[exeKey]string
}

type exeKey struct {
	dev, ino     uint64
	size         int64
	ctime, mtime int64 // nanoseconds
}

// maxRememberedExes bounds the memory of exeHashes.
const maxRememberedExes = 512

// of returns the hex SHA-256 of the executable process pid runs.
func (h *exeHashes) of(pid int) (string, error) {
	f, err := openExe(pid)
	if err != nil {
		return "", fmt.Errorf("open the executable of process %d: %w", pid, err)
	}
	defer f.Close()
	key, err := keyOf(f)
	if err != nil {
		return "", err
	}
	h.mu.Lock()
	sum, ok := h.sums[key]
	h.mu.Unlock()
	if ok {
		return sum, nil
	}
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return "", fmt.Errorf("read the executable of process %d: %w", pid, err)
	}
	// The file must not have changed while it was read.
	if again, err := keyOf(f); err != nil || again != key {
		return "", fmt.Errorf("the executable of process %d changed while it was hashed", pid)
	}
	sum = hex.EncodeToString(d.Sum(nil))
	h.mu.Lock()
	if h.sums == nil || len(h.sums) >= maxRememberedExes {
		h.sums = make(map[exeKey]string)
	}
	h.sums[key] = sum
	h.mu.Unlock()
	return sum, nil
}

// keyOf is what identifies the content of the open file f (fileKey, per
// OS).
func keyOf(f *os.File) (exeKey, error) {
	fi, err := f.Stat()
	if err != nil {
		return exeKey{}, err
	}
	return fileKey(f, fi)
}
