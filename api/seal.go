package api

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
)

// SealedIdentity is an OPIdentity as a request carries it: its token
// sealed (AES-256-GCM) with a key both sides derive from the daemon's
// bearer token (IdentitySealer). TLS already hides it on the way; sealing
// keeps it out of the daemon's TLS and HTTP read buffers and JSON
// decoding, which the daemon cannot wipe: the only clear copy is the one
// it opens into memory it wipes.
type SealedIdentity struct {
	Kind        string `json:"kind"` // IdentityServiceAccount or IdentityConnect
	ConnectHost string `json:"connect_host,omitempty"`
	// Token is the nonce and the sealed token (base64 in JSON).
	Token []byte `json:"token"`
}

// sealInfo is the key derivation's label, and the start of every sealed
// token's additional data.
const sealInfo = "opx op_identity seal v1"

// IdentitySealer seals and opens the tokens of OPIdentity with the key
// derived from a daemon's bearer token.
type IdentitySealer struct{ aead cipher.AEAD }

// NewIdentitySealer returns the sealer of the daemon whose bearer token is
// bearer (as the token file holds it).
func NewIdentitySealer(bearer []byte) (*IdentitySealer, error) {
	m := hmac.New(sha256.New, bearer)
	m.Write([]byte(sealInfo))
	key := m.Sum(nil)
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &IdentitySealer{aead: aead}, nil
}

// additional is the data a sealed token is bound to: its kind and host.
func additional(kind, host string) []byte {
	return []byte(sealInfo + "\x00" + kind + "\x00" + host)
}

// Seal returns id as a request carries it, or nil for a nil id or the
// desktop.
func (s *IdentitySealer) Seal(id *OPIdentity) (*SealedIdentity, error) {
	kind := id.Kind()
	var token []byte
	host := ""
	switch kind {
	case IdentityServiceAccount:
		token = id.ServiceAccountToken
	case IdentityConnect:
		token, host = id.ConnectToken, id.ConnectHost
	default:
		return nil, nil
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(token)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &SealedIdentity{Kind: kind, ConnectHost: host, Token: s.aead.Seal(nonce, nonce, token, additional(kind, host))}, nil
}

// Open returns the identity sid carries, its token in memory of its own
// for the caller to wipe (OPIdentity.Wipe), checked as Check checks it.
// Its errors never quote the token.
func (s *IdentitySealer) Open(sid *SealedIdentity) (*OPIdentity, *Error) {
	if sid == nil {
		return nil, nil
	}
	if sid.Kind != IdentityServiceAccount && sid.Kind != IdentityConnect {
		return nil, Errorf(CodeBadRequest, "op_identity: kind %q: want %s or %s", sid.Kind, IdentityServiceAccount, IdentityConnect)
	}
	if sid.Kind == IdentityServiceAccount && sid.ConnectHost != "" {
		return nil, Errorf(CodeBadRequest, "op_identity: a service account has no connect_host")
	}
	n := s.aead.NonceSize()
	if len(sid.Token) < n+s.aead.Overhead() || len(sid.Token) > n+s.aead.Overhead()+MaxTokenLen {
		return nil, Errorf(CodeBadRequest, "op_identity: the sealed token is %d bytes; want %d to %d", len(sid.Token), n+s.aead.Overhead(), n+s.aead.Overhead()+MaxTokenLen)
	}
	token, err := s.aead.Open(nil, sid.Token[:n], sid.Token[n:], additional(sid.Kind, sid.ConnectHost))
	if err != nil {
		return nil, Errorf(CodeBadRequest, "op_identity: the token does not open with this daemon's key (sealed for another daemon, or changed)")
	}
	id := &OPIdentity{ServiceAccountToken: token}
	if sid.Kind == IdentityConnect {
		id = &OPIdentity{ConnectHost: sid.ConnectHost, ConnectToken: token}
	}
	if e := id.Check(); e != nil {
		id.Wipe()
		return nil, e
	}
	if len(token) == 0 {
		return nil, Errorf(CodeBadRequest, "op_identity: the token is empty")
	}
	return id, nil
}
