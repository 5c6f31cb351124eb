// Package policy decides which program may read which secret reference. A
// policy file (policy.json) lists allow rules, each naming a program (by
// executable path, SHA-256 of that path, SHA-256 of the executable's
// content, or pid) and the refs it may read; default_deny says what happens
// to everything no rule allows. No file means every program of the user may
// read everything; a file that goes bad once loaded denies everything (see
// Store). The daemon and `opx policy check` decide with the same functions.
package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
)

// Rule allows the programs it names to read the refs it lists. Empty
// identity fields match any program; a rule with none matches every program.
type Rule struct {
	// Path is an executable as a user names it: absolute, or under "~/".
	// Links in it are resolved when a decision is made, so a rule for
	// /usr/bin/python3 matches the python3.11 it points to today and the
	// python3.12 of the next upgrade.
	Path       string `json:"path,omitempty"`
	PathSHA256 string `json:"path_sha256,omitempty"` // hex SHA-256 of the executable's real path string
	// ExeSHA256 is the hex SHA-256 of the executable's content, as the
	// kernel runs it (read through /proc/PID/exe).
	ExeSHA256     string   `json:"exe_sha256,omitempty"`
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
	Path string // its executable's real path (no links)
	// ExeSHA256 is the hex SHA-256 of its executable's content, or "" when
	// it was not computed (then no exe_sha256 rule matches).
	ExeSHA256 string
}

// Env is what a decision needs from the system: the home directory for
// "~/" paths and, where the system has them (macOS), a code-signature
// check; a nil Signed means require_signed rules never match.
type Env struct {
	Home   string
	Signed func(path string) bool
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
		case r.Path != "" && !filepath.IsAbs(r.Path) && !strings.HasPrefix(r.Path, "~/"):
			return nil, fmt.Errorf("allow[%d]: path %q is not absolute (or under ~/)", i, r.Path)
		case r.PathSHA256 != "" && !isHexSHA256(r.PathSHA256):
			return nil, fmt.Errorf("allow[%d]: path_sha256 must be 64 hex digits", i)
		case r.ExeSHA256 != "" && !isHexSHA256(r.ExeSHA256):
			return nil, fmt.Errorf("allow[%d]: exe_sha256 must be 64 hex digits", i)
		case r.PID < 0:
			return nil, fmt.Errorf("allow[%d]: pid must be positive", i)
		case len(r.Refs) == 0:
			return nil, fmt.Errorf("allow[%d]: refs is empty; list the refs the rule allows, or \"*\"", i)
		}
		for _, pat := range r.Refs {
			if !ValidPattern(pat) {
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

// ValidPattern reports whether a rule can hold pattern: "*", a prefix
// ending in "*", or an exact ref without "*".
func ValidPattern(pattern string) bool {
	return pattern != "" && !strings.Contains(strings.TrimSuffix(pattern, "*"), "*")
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

// Decide returns whether r may read ref. A nil policy (no file) allows
// everything.
func (p *Policy) Decide(r Requester, ref string, env Env) Decision {
	if p == nil {
		return Decision{Allow: true, Rule: -1, Reason: "no policy file: everything is allowed"}
	}
	for i, rule := range p.Allow {
		if !rule.matches(r, env) {
			continue
		}
		for _, pat := range rule.Refs {
			if matchRef(pat, ref) {
				return Decision{Allow: true, Rule: i, Reason: fmt.Sprintf("allowed by allow[%d]", i)}
			}
		}
	}
	if p.DefaultDeny {
		return Decision{Allow: false, Rule: -1, Reason: "no allow rule matches and default_deny is on"}
	}
	return Decision{Allow: true, Rule: -1, Reason: "no allow rule matches; default_deny is off"}
}

// AllowsAny reports whether r may read at least one ref: what the daemon
// asks before it lets r lock, unlock or stop it.
func (p *Policy) AllowsAny(r Requester, env Env) bool {
	if p == nil || !p.DefaultDeny {
		return true
	}
	for _, rule := range p.Allow {
		if rule.matches(r, env) {
			return true
		}
	}
	return false
}

// matches reports whether the rule names r (its refs aside).
func (rule Rule) matches(r Requester, env Env) bool {
	if rule.PID != 0 && rule.PID != r.PID {
		return false
	}
	if rule.PathSHA256 != "" && !strings.EqualFold(rule.PathSHA256, PathSHA256(r.Path)) {
		return false
	}
	if rule.ExeSHA256 != "" && (r.ExeSHA256 == "" || !strings.EqualFold(rule.ExeSHA256, r.ExeSHA256)) {
		return false
	}
	if rule.Path != "" && (r.Path == "" || (rule.Path != r.Path && ResolvePath(rule.Path, env.Home) != r.Path)) {
		return false
	}
	if rule.RequireSigned && (env.Signed == nil || r.Path == "" || !env.Signed(r.Path)) {
		return false
	}
	return true
}

// UsesExeSHA256 reports whether any rule names a program by content, so
// that the daemon hashes executables only when a rule needs it.
func (p *Policy) UsesExeSHA256() bool {
	if p == nil {
		return false
	}
	for _, r := range p.Allow {
		if r.ExeSHA256 != "" {
			return true
		}
	}
	return false
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
