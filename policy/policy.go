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
	"strings"
	"unicode"

	"github.com/opxhq/opx/api"
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
	RequireSigned bool     `json:"require_signed,omitempty"` // macOS, Windows: the executable's code signature must be valid
	// Account is the 1Password account the rule's op:// refs may be read
	// in, as requests name it (--account: a shorthand, sign-in address,
	// email, user or account ID; letter case aside), or "*" for every
	// account. Empty: the default account only, that is a request that
	// names no account or names config.json's default account.
	Account string `json:"account,omitempty"`
	// Identity is the 1Password identity the rule's op:// refs may be read
	// as: "desktop" (the desktop app's sign-in), "service-account",
	// "connect", or one identity by its fingerprint as opx status shows
	// it (at least its first 12 hex digits). Empty: any identity.
	Identity string `json:"identity,omitempty"`
	// Ask makes the rule ask: a read it covers waits while the daemon asks
	// the user to approve it (an askpass program, a notification, or opx
	// approve), and is refused when no one says yes.
	Ask bool `json:"ask,omitempty"`
	// Server is the Vault or OpenBao server the rule's vault:// and bao://
	// refs may be read from: the daemon's server for the scheme must have
	// this address (and namespace, "" for none). Nil: any server.
	Server *api.Server `json:"server,omitempty"`
}

// Policy is a parsed policy.json.
type Policy struct {
	Allow       []Rule `json:"allow"`
	DefaultDeny bool   `json:"default_deny"`
	// Default is what a read no rule covers gets: "allow", "deny" or
	// "ask". "" follows default_deny (deny when it is on, else allow);
	// "deny" sets default_deny, and Parse refuses the two disagreeing.
	Default string `json:"default,omitempty"`
}

// What Policy.Default may say.
const (
	DefaultAllow = "allow"
	DefaultDeny  = "deny"
	DefaultAsk   = "ask"
)

// Requester is the program a decision is about.
type Requester struct {
	PID  int
	Path string // its executable's real path (no links)
	// ExeSHA256 is the hex SHA-256 of its executable's content, or "" when
	// it was not computed (then no exe_sha256 rule matches).
	ExeSHA256 string
}

// Env is what a decision needs from the system: the home directory for
// "~/" paths and, where the system has them (macOS, Windows), a
// code-signature check; a nil Signed means require_signed rules never match.
type Env struct {
	Home   string
	Signed func(path string) bool
}

// Read is what a decision is about: a ref, and where it would be read from.
type Read struct {
	Ref string
	// Account is the 1Password account the request names ("" for none:
	// op's own default account).
	Account string
	// DefaultAccount is config.json's default account (what `opx login
	// 1password --account X` records, and every opx command sends), "" when
	// it names none: a rule without an account covers it too.
	DefaultAccount string
	// Server is the server the daemon reads the ref's scheme from (vault://
	// and bao:// refs), nil when it reads none.
	Server *api.Server
	// IdentityKind (api.IdentityDesktop, ...) and Identity (its full hex
	// fingerprint, "" for the desktop) are the 1Password identity the
	// op:// ref is read as.
	IdentityKind, Identity string
}

// Decision is the outcome for one requester and ref. Rule is the index of
// the deciding allow rule, or -1. Ask (Allow false) means the read waits for
// the user's answer.
type Decision struct {
	Allow  bool
	Ask    bool
	Rule   int
	Reason string
}

// Parse reads and checks a policy; errors name the rule and field at fault.
func Parse(data []byte) (*Policy, error) {
	// A policy is an object: null, a list or a string would decode into
	// an empty policy, which allows everything.
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("not a policy: want a JSON object ({\"allow\": [...], \"default_deny\": true})")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("not a policy: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a policy: data after the JSON object")
	}
	switch p.Default {
	case "", DefaultAllow, DefaultAsk:
		if p.DefaultDeny && p.Default != "" {
			return nil, fmt.Errorf("default %q and default_deny true disagree: keep one", p.Default)
		}
	case DefaultDeny:
		p.DefaultDeny = true
	default:
		return nil, fmt.Errorf("default %q: want \"allow\", \"deny\" or \"ask\"", p.Default)
	}
	for i, r := range p.Allow {
		switch {
		case r.Path != "" && !filepath.IsAbs(r.Path) && !underHome(r.Path):
			return nil, fmt.Errorf("allow[%d]: path %q is not absolute (or under ~/)", i, r.Path)
		case r.PathSHA256 != "" && !isHexSHA256(r.PathSHA256):
			return nil, fmt.Errorf("allow[%d]: path_sha256 must be 64 hex digits", i)
		case r.ExeSHA256 != "" && !isHexSHA256(r.ExeSHA256):
			return nil, fmt.Errorf("allow[%d]: exe_sha256 must be 64 hex digits", i)
		case r.PID < 0:
			return nil, fmt.Errorf("allow[%d]: pid must be positive", i)
		case len(r.Refs) == 0:
			return nil, fmt.Errorf("allow[%d]: refs is empty; list the refs the rule allows, or \"*\"", i)
		case r.Account != "" && !validAccount(r.Account):
			return nil, fmt.Errorf("allow[%d]: account %q: name one account as --account takes it, or \"*\"", i, r.Account)
		case r.Identity != "" && !validIdentity(r.Identity):
			return nil, fmt.Errorf("allow[%d]: identity %q: want \"desktop\", \"service-account\", \"connect\", or a fingerprint from opx status (12 to 64 hex digits)", i, r.Identity)
		case r.Server != nil && r.Server.Address == "":
			return nil, fmt.Errorf("allow[%d]: server needs an address (and a namespace, if any)", i)
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

// Decide returns whether r may read q.Ref. A nil policy (no file) allows
// everything. When a rule names the program and the ref but another
// account or server, the reason says so.
func (p *Policy) Decide(r Requester, q Read, env Env) Decision {
	if p == nil {
		return Decision{Allow: true, Rule: -1, Reason: "no policy file: everything is allowed"}
	}
	near := ""
	for i, rule := range p.Allow {
		if !rule.matches(r, env) || !rule.coversRef(q.Ref) {
			continue
		}
		if why := rule.where(q); why != "" {
			if near == "" {
				near = fmt.Sprintf(" (allow[%d] covers the ref %s)", i, why)
			}
			continue
		}
		if rule.Ask {
			return Decision{Ask: true, Rule: i, Reason: fmt.Sprintf("allow[%d] asks the user", i)}
		}
		return Decision{Allow: true, Rule: i, Reason: fmt.Sprintf("allowed by allow[%d]", i)}
	}
	if p.Default == DefaultAsk {
		return Decision{Ask: true, Rule: -1, Reason: "no allow rule matches; the default is to ask the user" + near}
	}
	if p.DefaultDeny {
		return Decision{Allow: false, Rule: -1, Reason: "no allow rule matches and default_deny is on" + near}
	}
	return Decision{Allow: true, Rule: -1, Reason: "no allow rule matches; default_deny is off"}
}

// coversRef reports whether one of the rule's patterns covers ref.
func (rule Rule) coversRef(ref string) bool {
	for _, pat := range rule.Refs {
		if matchRef(pat, ref) {
			return true
		}
	}
	return false
}

// where says why the rule does not cover the account or server q is read
// from, or "" when it does. The account applies to op:// refs, the server
// to vault:// and bao:// refs.
func (rule Rule) where(q Read) string {
	scheme, _, _ := strings.Cut(q.Ref, "://")
	switch scheme {
	case api.SchemeOP:
		if !rule.coversAccount(q.Account, q.DefaultAccount) {
			named := "the default account"
			if rule.Account != "" {
				named = "account " + rule.Account
			}
			return fmt.Sprintf("for %s, not account %s: add \"account\": %q to a rule to allow it", named, q.Account, q.Account)
		}
		if !rule.coversIdentity(q.IdentityKind, q.Identity) {
			return fmt.Sprintf("as the identity %s, not %s", rule.Identity, describeIdentity(q.IdentityKind, q.Identity))
		}
	case api.SchemeVault, api.SchemeBao:
		if rule.Server == nil {
			return ""
		}
		if q.Server == nil {
			return fmt.Sprintf("from the server %s, and the daemon reads %s:// refs from none", describeServer(*rule.Server), scheme)
		}
		if !api.SameServer(*rule.Server, *q.Server) {
			return fmt.Sprintf("from the server %s, not %s", describeServer(*rule.Server), describeServer(*q.Server))
		}
	}
	return ""
}

// coversIdentity reports whether the rule allows reads as the identity of
// kind with the full fingerprint fp.
func (rule Rule) coversIdentity(kind, fp string) bool {
	switch id := strings.ToLower(rule.Identity); id {
	case "":
		return true
	case api.IdentityDesktop, api.IdentityServiceAccount, api.IdentityConnect:
		return kind == id || id == api.IdentityDesktop && kind == ""
	default:
		return fp != "" && strings.HasPrefix(fp, id)
	}
}

// validIdentity reports whether id is an identity a rule may name.
func validIdentity(id string) bool {
	switch strings.ToLower(id) {
	case api.IdentityDesktop, api.IdentityServiceAccount, api.IdentityConnect:
		return true
	}
	if len(id) < 12 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i] | 0x20; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// describeIdentity names an identity in a reason.
func describeIdentity(kind, fp string) string {
	if fp == "" {
		return api.IdentityDesktop
	}
	return kind + " " + fp[:min(len(fp), 12)]
}

// coversAccount reports whether the rule allows reads in account (as the
// request names it; def is the default account).
func (rule Rule) coversAccount(account, def string) bool {
	switch rule.Account {
	case "*":
		return true
	case "":
		return account == "" || def != "" && strings.EqualFold(account, def)
	}
	return strings.EqualFold(rule.Account, account)
}

func describeServer(s api.Server) string {
	if s.Namespace != "" {
		return s.Address + " (namespace " + s.Namespace + ")"
	}
	return s.Address
}

// validAccount reports whether a rule can name account: "*", or one name
// without spaces or control characters that does not look like a flag.
func validAccount(a string) bool {
	if a == "*" {
		return true
	}
	if len(a) > api.MaxAccountLen || strings.HasPrefix(a, "-") || strings.Contains(a, "*") {
		return false
	}
	for _, r := range a {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// NoAccount lists the rules that name no account and cover op:// refs:
// since rules learned accounts, each allows the default account only.
func (p *Policy) NoAccount() []int {
	if p == nil {
		return nil
	}
	var out []int
	for i, r := range p.Allow {
		if r.Account != "" {
			continue
		}
		for _, pat := range r.Refs {
			if pat == "*" || strings.HasPrefix(pat, api.SchemeOP+"://") || strings.HasPrefix(api.SchemeOP+"://", strings.TrimSuffix(pat, "*")) {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// AllowsAny reports whether r may read at least one ref: what the daemon
// asks before it lets r lock, unlock or stop it.
//
// A rule that asks counts, and so does a default of ask: the user meant the
// program to read, once asked.
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
	if rule.Path != "" && (r.Path == "" || (!SamePath(rule.Path, r.Path) && !SamePath(ResolvePath(rule.Path, env.Home), r.Path))) {
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
	if p == nil || SignedCheck() != nil {
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
