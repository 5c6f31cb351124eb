// Package policy decides which program may read which secret reference. A
// policy file (policy.json) lists allow rules, each naming a program (by
// executable path, SHA-256 of that path, or pid) and the refs it may read;
// default_deny says what happens to everything no rule allows. No file means
// every program of the user may read everything.
package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Rule allows the programs it names to read the refs it lists. Empty
// identity fields match any program; a rule with none matches every program.
type Rule struct {
	Path          string   `json:"path,omitempty"`        // absolute executable path, exact
	PathSHA256    string   `json:"path_sha256,omitempty"` // hex SHA-256 of the path string
	PID           int      `json:"pid,omitempty"`
	Refs          []string `json:"refs"`                     // "*", a prefix "op://Vault/*", or exact refs
	RequireSigned bool     `json:"require_signed,omitempty"` // macOS: the executable must pass code-signature checks
}

// Policy is a parsed policy.json.
type Policy struct {
	Allow       []Rule `json:"allow"`
	DefaultDeny bool   `json:"default_deny"`
}

// Requester is the program a decision is about.
type Requester struct {
	PID  int
	Path string
}

// Decision is the outcome for one requester and ref. Rule is the index of
// the deciding allow rule, or -1.
type Decision struct {
	Allow  bool
	Rule   int
	Reason string
}

// Parse reads and checks a policy; errors name the rule and field at fault.
func Parse(data []byte) (*Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("not a policy: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a policy: data after the JSON object")
	}
	for i, r := range p.Allow {
		switch {
		case r.Path != "" && !filepath.IsAbs(r.Path):
			return nil, fmt.Errorf("allow[%d]: path %q is not absolute", i, r.Path)
		case r.PathSHA256 != "" && !isHexSHA256(r.PathSHA256):
			return nil, fmt.Errorf("allow[%d]: path_sha256 must be 64 hex digits", i)
		case r.PID < 0:
			return nil, fmt.Errorf("allow[%d]: pid must be positive", i)
		case len(r.Refs) == 0:
			return nil, fmt.Errorf("allow[%d]: refs is empty; list the refs the rule allows, or \"*\"", i)
		}
		for _, pat := range r.Refs {
			if pat == "" || strings.Contains(strings.TrimSuffix(pat, "*"), "*") {
				return nil, fmt.Errorf("allow[%d]: ref pattern %q: use \"*\", a prefix ending in \"/*\" or \"*\", or an exact ref", i, pat)
			}
		}
	}
	return &p, nil
}

func isHexSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// PathSHA256 is the hex SHA-256 of an executable path, as path_sha256 holds it.
func PathSHA256(path string) string {
	sum := sha256.Sum256([]byte(path))
	return hex.EncodeToString(sum[:])
}

// matchRef reports whether pattern covers ref.
func matchRef(pattern, ref string) bool {
	if pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(ref, prefix)
	}
	return pattern == ref
}

// Decide returns whether r may read ref. signed reports whether an
// executable passes code-signature verification (macOS); nil means it cannot
// be checked here, so require_signed rules never match.
func (p *Policy) Decide(r Requester, ref string, signed func(path string) bool) Decision {
	if p == nil {
		return Decision{Allow: true, Rule: -1, Reason: "no policy file: everything is allowed"}
	}
	for i, rule := range p.Allow {
		if rule.Path != "" && rule.Path != r.Path {
			continue
		}
		if rule.PathSHA256 != "" && !strings.EqualFold(rule.PathSHA256, PathSHA256(r.Path)) {
			continue
		}
		if rule.PID != 0 && rule.PID != r.PID {
			continue
		}
		matched := false
		for _, pat := range rule.Refs {
			if matchRef(pat, ref) {
				matched = true
				break
			}
		}
		if !matched {
			continue
		}
		if rule.RequireSigned && (signed == nil || r.Path == "" || !signed(r.Path)) {
			continue
		}
		return Decision{Allow: true, Rule: i, Reason: fmt.Sprintf("allowed by allow[%d]", i)}
	}
	if p.DefaultDeny {
		return Decision{Allow: false, Rule: -1, Reason: "no allow rule matches and default_deny is on"}
	}
	return Decision{Allow: true, Rule: -1, Reason: "no allow rule matches; default_deny is off"}
}

// UnsignableRules counts require_signed rules, which cannot be satisfied on
// systems without code signatures.
func (p *Policy) UnsignableRules() int {
	if p == nil || runtime.GOOS == "darwin" {
		return 0
	}
	n := 0
	for _, r := range p.Allow {
		if r.RequireSigned {
			n++
		}
	}
	return n
}

// Store holds the policy of one file and picks up changes to it: each
// Current call compares the file's modification time and size with the
// loaded copy's. A file that no longer parses keeps the last good policy.
type Store struct {
	path string

	mu      sync.Mutex
	cur     *Policy
	stamp   string
	lastErr error
	onError func(error)
}

// Load reads the policy at path. A missing file is no policy (allow all);
// one that does not parse is an error naming the file. onError, if set, is
// told when a later change to the file cannot be parsed.
func Load(path string, onError func(error)) (*Store, error) {
	s := &Store{path: path, onError: onError}
	p, stamp, err := s.read()
	if err != nil {
		return nil, err
	}
	s.cur, s.stamp = p, stamp
	return s, nil
}

func stampOf(fi os.FileInfo) string {
	return fmt.Sprintf("%d/%d", fi.ModTime().UnixNano(), fi.Size())
}

func (s *Store) read() (*Policy, string, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "-", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read policy %s: %w", s.path, err)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, "", fmt.Errorf("read policy %s: %w", s.path, err)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, stampOf(fi), fmt.Errorf("policy %s: %w", s.path, err)
	}
	return p, stampOf(fi), nil
}

// Current returns the policy in force, re-reading the file when it changed.
func (s *Store) Current() *Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	stamp := "-"
	if fi, err := os.Stat(s.path); err == nil {
		stamp = stampOf(fi)
	}
	if stamp == s.stamp {
		return s.cur
	}
	p, st, err := s.read()
	if err != nil {
		s.stamp = st // report a broken file once, not on every read
		if s.onError != nil {
			s.onError(err)
		}
		s.lastErr = err
		return s.cur
	}
	s.cur, s.stamp, s.lastErr = p, st, nil
	return s.cur
}

// Path is the policy file's path.
func (s *Store) Path() string { return s.path }
