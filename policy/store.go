package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sync"
)

// Policy states, as `opx status` shows them.
const (
	// StateNone: no policy file has been seen; every program may read
	// everything.
	StateNone = "none"
	// StateLoaded: a policy file is in force.
	StateLoaded = "loaded"
	// StateFailedClosed: a policy was loaded (or a file exists) but the
	// file is now missing, unreadable, not the user's, writable by others
	// (or behind a link or directory that is: CheckFile) or broken; every
	// decision is a denial until a good file returns.
	StateFailedClosed = "failed_closed"
)

// maxFileSize bounds policy.json.
const maxFileSize = 1 << 20

// Snapshot is the policy in force at one moment. Its zero value is not
// useful; a Store hands them out.
type Snapshot struct {
	Path   string
	State  string  // StateNone, StateLoaded or StateFailedClosed
	Policy *Policy // the rules in force when State is StateLoaded
	// Hash is the hex SHA-256 of the content in force ("" when none).
	Hash string
	// Reason says why the state is failed_closed, or, when loaded, why the
	// file's current content is not the one in force (it does not parse).
	Reason string
}

// Decide returns whether r may read q.Ref under this snapshot.
func (s *Snapshot) Decide(r Requester, q Read, env Env) Decision {
	switch s.State {
	case StateLoaded:
		return s.Policy.Decide(r, q, env)
	case StateFailedClosed:
		return Decision{Rule: -1, Reason: "the policy file failed closed (" + s.Reason + "): every read is denied until it is fixed"}
	}
	return (*Policy)(nil).Decide(r, q, env)
}

// AllowsAny reports whether r may read at least one ref under this
// snapshot.
func (s *Snapshot) AllowsAny(r Requester, env Env) bool {
	switch s.State {
	case StateLoaded:
		return s.Policy.AllowsAny(r, env)
	case StateFailedClosed:
		return false
	}
	return true
}

// Store holds the policy of one file and follows its changes. Every
// Current call reads the file (through links, each judged on the way: see
// CheckFile) and compares its content with the content in force, so an
// edit that keeps the size and the modification time (a Nix store link has
// mtime 1) is seen on the next decision.
//
// Once a policy has been loaded, a file that is missing, unreadable, or
// fails CheckFile (a file, link or directory on the way that another user
// could change; root is allowed: the Nix store) puts the store in
// StateFailedClosed until a good file returns. A file whose new content does
// not parse keeps the last good policy (and says so in Reason); with no
// good policy before it, it fails closed.
type Store struct {
	path     string
	onChange func(old, cur *Snapshot)

	mu      sync.Mutex
	cur     *Snapshot
	content []byte // of the file as last read ("" when none)
	missing bool   // the file was absent when last read
}

// Load reads the policy at path. A missing file is no policy (everything
// allowed), but a link to a missing file fails closed; one that does not
// parse, or that fails the checks above, is an error naming the file (a
// *FileError names the file, link or directory at fault and the fix).
// onChange, if set, is told of every later change of the snapshot in force
// (state, content or reason), in order, under the store's lock: it must not
// call the store.
func Load(path string, onChange func(old, cur *Snapshot)) (*Store, error) {
	s := &Store{path: path, onChange: onChange}
	b, err := readPolicyFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.missing = true
		s.cur = &Snapshot{Path: path, State: StateNone}
		if reason := danglingReason(err); reason != "" {
			s.cur = &Snapshot{Path: path, State: StateFailedClosed, Reason: reason}
		}
		return s, nil
	case err != nil:
		return nil, err
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	s.cur = &Snapshot{Path: path, State: StateLoaded, Policy: p, Hash: hashOf(b)}
	s.content = b
	return s, nil
}

// Path is the policy file's path.
func (s *Store) Path() string { return s.path }

// Current returns the snapshot in force, after reading the file again.
// onChange runs under the store's lock, so that changes are told in the
// order they happened.
func (s *Store) Current() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur
	b, err := readPolicyFile(s.path)
	s.cur = s.next(b, err)
	if s.cur != old && s.onChange != nil {
		s.onChange(old, s.cur)
	}
	return s.cur
}

// next computes the snapshot for what reading the file gave; it returns
// s.cur itself when nothing changed. s.mu is held.
func (s *Store) next(b []byte, err error) *Snapshot {
	cur := s.cur
	if errors.Is(err, fs.ErrNotExist) && cur.State == StateNone {
		reason := danglingReason(err)
		if reason == "" {
			return cur
		}
		s.missing, s.content = true, nil
		return &Snapshot{Path: s.path, State: StateFailedClosed, Reason: reason}
	}
	if err == nil && !s.missing && bytes.Equal(b, s.content) {
		return cur // the common case: nothing changed
	}
	s.missing = errors.Is(err, fs.ErrNotExist)
	if err != nil {
		s.content = nil
		reason := err.Error()
		if s.missing {
			reason = "the file " + s.path + " was removed"
			if r := danglingReason(err); r != "" {
				reason = r
			}
		}
		if cur.State == StateFailedClosed && cur.Reason == reason {
			return cur
		}
		return &Snapshot{Path: s.path, State: StateFailedClosed, Reason: reason}
	}
	s.content = b
	p, perr := Parse(b)
	if perr != nil {
		reason := fmt.Sprintf("policy %s does not parse: %v", s.path, perr)
		if cur.State == StateLoaded {
			// Keep the last good policy, and say why the file is not it.
			return &Snapshot{Path: s.path, State: StateLoaded, Policy: cur.Policy, Hash: cur.Hash, Reason: reason}
		}
		return &Snapshot{Path: s.path, State: StateFailedClosed, Reason: reason}
	}
	h := hashOf(b)
	if cur.State == StateLoaded && cur.Hash == h && cur.Reason == "" {
		return cur
	}
	return &Snapshot{Path: s.path, State: StateLoaded, Policy: p, Hash: h}
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
