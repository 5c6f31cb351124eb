package backend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"

	"github.com/opxhq/opx/api"
)

// OPIdentity is who op signs in as for a read: a 1Password service
// account, a Connect server, or (the zero value) op's own sign-in, the
// desktop app's accounts or the sessions opx login kept. The daemon keys
// its cache, batches, locks and limits by Fingerprint, and hands the
// identity to the backend on the context of the batch that reads for it
// (WithOPIdentity), which holds its own copy of the tokens and wipes it
// when the batch is done.
type OPIdentity struct {
	// Kind is api.IdentityDesktop, api.IdentityServiceAccount or
	// api.IdentityConnect.
	Kind string
	// Fingerprint is the hex SHA-256 of the kind, host and token; "" for
	// the desktop.
	Fingerprint string
	host        string
	token       []byte
}

// Desktop is op's own sign-in.
var Desktop = OPIdentity{Kind: api.IdentityDesktop}

// IdentityFromEnv is the identity op would take from getenv's variables
// (api.OPIdentityFromEnv).
func IdentityFromEnv(getenv func(string) string) OPIdentity {
	return NewOPIdentity(api.OPIdentityFromEnv(getenv))
}

// NewOPIdentity makes the identity a request names, copying its tokens;
// nil is the desktop.
func NewOPIdentity(id *api.OPIdentity) OPIdentity {
	switch id.Kind() {
	case api.IdentityConnect:
		return newIdentity(api.IdentityConnect, id.ConnectHost, id.ConnectToken)
	case api.IdentityServiceAccount:
		return newIdentity(api.IdentityServiceAccount, "", id.ServiceAccountToken)
	}
	return Desktop
}

func newIdentity(kind, host string, token []byte) OPIdentity {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(host))
	h.Write([]byte{0})
	h.Write(token)
	return OPIdentity{Kind: kind, Fingerprint: hex.EncodeToString(h.Sum(nil)), host: host, token: bytes.Clone(token)}
}

// Short is the fingerprint as status and the audit log show it: its first
// 12 hex digits ("" for the desktop).
func (id OPIdentity) Short() string { return ShortFingerprint(id.Fingerprint) }

// ShortFingerprint is the first 12 hex digits of a fingerprint.
func ShortFingerprint(fp string) string { return fp[:min(len(fp), 12)] }

// Label names the identity in messages: "service account 1a2b3c4d5e6f".
func (id OPIdentity) Label() string {
	switch id.Kind {
	case api.IdentityServiceAccount:
		return "service account " + id.Short()
	case api.IdentityConnect:
		return "Connect server " + id.host + " (" + id.Short() + ")"
	}
	return "the desktop app's sign-in"
}

// Copy returns an identity with its own copy of the token, to be wiped
// apart from id.
func (id OPIdentity) Copy() OPIdentity {
	id.token = bytes.Clone(id.token)
	return id
}

// Wipe zeroes the token.
func (id *OPIdentity) Wipe() {
	clear(id.token)
	id.token = nil
}

// WithoutIdentityEnv is environ without the variables that give op an
// identity.
func WithoutIdentityEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !isIdentityVar(name) {
			out = append(out, kv)
		}
	}
	return out
}

func isIdentityVar(name string) bool {
	for _, v := range api.OPIdentityEnvVars {
		if strings.EqualFold(name, v) {
			return true
		}
	}
	return false
}

type identityKey struct{}

// WithOPIdentity returns ctx carrying id, for the 1Password backend.
func WithOPIdentity(ctx context.Context, id OPIdentity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// OPIdentityFrom returns the identity ctx carries, if any.
func OPIdentityFrom(ctx context.Context) (OPIdentity, bool) {
	id, ok := ctx.Value(identityKey{}).(OPIdentity)
	return id, ok
}

// TakeProcessIdentity returns the daemon's own identity, from its
// environment (a service's EnvironmentFile): the identity of requests that
// name none. It takes the variables out of the process's environment, so
// that no op started for another identity inherits them.
func TakeProcessIdentity() OPIdentity {
	id := IdentityFromEnv(os.Getenv)
	for _, v := range api.OPIdentityEnvVars {
		os.Unsetenv(v)
	}
	return id
}
