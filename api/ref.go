package api

import (
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The grammar of secret references, shared by the daemon (which reads them)
// and the client (which recognises them in an environment): see
// docs/protocol.md.

// Reference schemes.
const (
	SchemeOP    = "op"
	SchemeVault = "vault"
	SchemeBao   = "bao"
)

// Schemes lists every scheme opx knows, in the order used in messages.
var Schemes = []string{SchemeOP, SchemeVault, SchemeBao}

// Ref is a parsed secret reference.
type Ref struct {
	// Raw is the reference exactly as given.
	Raw string
	// Scheme is "op", "vault" or "bao".
	Scheme string

	// For op:// refs: Vault, Item, Section (may be empty) and Field, and the
	// query: Attribute ("otp", "totp", "type", ...) and SSHFormat
	// ("openssh").
	Vault, Item, Section, Field string
	Attribute, SSHFormat        string

	// For vault:// and bao:// refs: Path is the API path without /v1/;
	// Version is the KV v2 version (0: latest); KeyField is the part after
	// '#' (empty: the whole secret). Response, from ?response=, asks for
	// the server's whole JSON answer instead of the secret's data:
	// ResponseKV for the read a ref makes (KV v2's data/ added), as `vault
	// kv get` does; ResponseLogical for a read of exactly Path, as `vault
	// read` does.
	Path     string
	Version  int
	KeyField string
	Response string
}

// ReservedMount reports whether mount (a path's first segment) is one of
// the mounts Vault and OpenBao reserve: auth/, cubbyhole/, identity/ and
// sys/. What a read there returns depends on the token that reads it (its
// lookup, its cubbyhole, its OIDC tokens, a wrapping), so a ref there is
// never a stored secret, and the daemon would answer with its own login's.
// Letter case aside: no one names a mount Sys to tell it apart.
func ReservedMount(mount string) bool {
	switch strings.ToLower(mount) {
	case "auth", "cubbyhole", "identity", "sys":
		return true
	}
	return false
}

// Values of Ref.Response.
const (
	ResponseKV      = "kv"
	ResponseLogical = "logical"
)

// KV2Marker is the member the daemon adds at the front of a ?response=kv
// answer read from a KV version 2 mount, so that a client (the vault shim)
// can tell KV v2's data/metadata envelope from a KV v1 secret that has
// fields of those names.
const KV2Marker = `"opx_kv_version":2`

// IsOTP reports whether the ref asks for a one-time password.
func (r Ref) IsOTP() bool { return r.Attribute == "otp" || r.Attribute == "totp" }

func badRef(raw, format string, args ...any) error {
	e := Errorf(CodeBadRequest, format, args...)
	e.Message = quoteRef(raw) + ": " + e.Message
	return e
}

// quoteRef renders a possibly hostile ref for an error message: printable
// refs as they are, others quoted with escapes, long ones cut.
func quoteRef(raw string) string {
	const max = 120
	s := raw
	if len(s) > max {
		s = s[:max] + "..."
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// ParseRef parses and validates a secret reference of any known scheme. The
// error is an *api.Error with code bad_request that names the ref.
func ParseRef(raw string) (Ref, error) {
	switch {
	case raw == "":
		return Ref{}, Errorf(CodeBadRequest, "empty reference")
	case len(raw) > MaxRefLen:
		return Ref{}, badRef(raw, "reference is %d bytes; the limit is %d", len(raw), MaxRefLen)
	case strings.HasPrefix(raw, "-"):
		return Ref{}, badRef(raw, "a reference may not start with '-'")
	case !utf8.ValidString(raw):
		return Ref{}, badRef(raw, "reference is not valid UTF-8")
	}
	for _, r := range raw {
		if unicode.IsControl(r) {
			return Ref{}, badRef(raw, "reference contains a control character")
		}
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return Ref{}, badRef(raw, "not a secret reference (want op://, vault:// or bao://)")
	}
	ref := Ref{Raw: raw, Scheme: scheme}
	switch scheme {
	case SchemeOP:
		return ref, parseOP(&ref, rest)
	case SchemeVault, SchemeBao:
		return ref, parseVault(&ref, rest)
	default:
		return Ref{}, badRef(raw, "unknown scheme %q (want op://, vault:// or bao://)", scheme+"://")
	}
}

// opAttribute reports whether op accepts attribute a in a reference (a
// switch, so that nothing is built at start-up).
func opAttribute(a string) bool {
	switch a {
	case "type", "value", "id", "purpose", "label", "otp", "totp":
		return true
	}
	return false
}

// parseOP parses op://vault/item/[section/]field[?query].
func parseOP(ref *Ref, rest string) error {
	path, query, hasQuery := strings.Cut(rest, "?")
	parts := strings.Split(path, "/")
	if len(parts) < 3 || len(parts) > 4 {
		return badRef(ref.Raw, "want op://vault/item/[section/]field")
	}
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			return badRef(ref.Raw, "empty vault, item, section or field name")
		}
	}
	ref.Vault, ref.Item = parts[0], parts[1]
	if len(parts) == 4 {
		ref.Section, ref.Field = parts[2], parts[3]
	} else {
		ref.Field = parts[2]
	}
	if !hasQuery {
		return nil
	}
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "attribute":
			if !opAttribute(v) {
				return badRef(ref.Raw, "unknown attribute %q", v)
			}
			ref.Attribute = v
		case "ssh-format":
			if v != "openssh" {
				return badRef(ref.Raw, "unknown ssh-format %q (want openssh)", v)
			}
			ref.SSHFormat = v
		default:
			return badRef(ref.Raw, "unknown query parameter %q (want attribute or ssh-format)", k)
		}
	}
	return nil
}

// parseVault parses PATH[?version=N][#FIELD].
func parseVault(ref *Ref, rest string) error {
	rest, field, hasField := strings.Cut(rest, "#")
	if hasField && field == "" {
		return badRef(ref.Raw, "empty field after '#'")
	}
	ref.KeyField = field
	path, query, hasQuery := strings.Cut(rest, "?")
	path = strings.TrimSuffix(path, "/")
	switch {
	case path == "":
		return badRef(ref.Raw, "empty path")
	case strings.HasPrefix(path, "/"):
		return badRef(ref.Raw, "path must not start with '/'")
	case strings.HasPrefix(path, "v1/"):
		return badRef(ref.Raw, "path is the API path without /v1/")
	case strings.Contains(path, "//"):
		return badRef(ref.Raw, "empty path segment")
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return badRef(ref.Raw, "path may not contain . or .. segments")
		}
	}
	if mount, _, _ := strings.Cut(path, "/"); ReservedMount(mount) {
		cli := "vault"
		if ref.Scheme == SchemeBao {
			cli = "bao"
		}
		return badRef(ref.Raw, "%s/ is a mount the server reserves for the token that reads it (its own identity, cubbyhole, logins, system settings), not a stored secret: opx does not read it with its own login; run the real CLI with your own token: %s read %s", mount, cli, path)
	}
	ref.Path = path
	if !hasQuery {
		return nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return badRef(ref.Raw, "malformed query")
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return badRef(ref.Raw, "query parameter %q is given %d times", k, len(vs))
		}
		switch k {
		case "version":
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 0 {
				return badRef(ref.Raw, "version must be a whole number, got %q", vs[0])
			}
			ref.Version = n
		case "response":
			if vs[0] != ResponseKV && vs[0] != ResponseLogical {
				return badRef(ref.Raw, "response must be kv or logical, got %q", vs[0])
			}
			ref.Response = vs[0]
		default:
			return badRef(ref.Raw, "unknown query parameter %q (want version or response)", k)
		}
	}
	switch {
	case ref.Response != "" && ref.KeyField != "":
		return badRef(ref.Raw, "?response= is the whole answer: it takes no #field")
	case ref.Response == ResponseLogical && ref.Version != 0:
		return badRef(ref.Raw, "?version= applies to KV reads, not to ?response=logical")
	}
	return nil
}
