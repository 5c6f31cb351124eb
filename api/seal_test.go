package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestSealedIdentity: a sealed token opens with the same daemon's key
// only, bound to its kind and host, and its JSON never holds the token.
func TestSealedIdentity(t *testing.T) {
	bearer := []byte(strings.Repeat("ab", 32))
	s, err := NewIdentitySealer(bearer)
	if err != nil {
		t.Fatal(err)
	}
	const token = "ops_eyJzaWduSW5BZGRyZXNzIjoibXkuMXBhc3N3b3JkLmNvbSJ9"
	for _, id := range []*OPIdentity{
		{ServiceAccountToken: Secret(token)},
		{ConnectHost: "http://127.0.0.1:8080", ConnectToken: Secret(token)},
	} {
		sid, err := s.Seal(id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(sid)
		if bytes.Contains(b, []byte(token)) || bytes.Contains(sid.Token, []byte(token)) {
			t.Fatalf("sealed %s holds the token: %s", id.Kind(), b)
		}
		var back SealedIdentity
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got, e := s.Open(&back)
		if e != nil || got.Kind() != id.Kind() || got.ConnectHost != id.ConnectHost ||
			!bytes.Equal(got.ServiceAccountToken, id.ServiceAccountToken) || !bytes.Equal(got.ConnectToken, id.ConnectToken) {
			t.Fatalf("Open(Seal(%+v)) = %+v, %v", id, got, e)
		}
		again, _ := s.Seal(id)
		if bytes.Equal(again.Token, sid.Token) {
			t.Error("two seals of one token are the same bytes: the nonce is not fresh")
		}

		other, _ := NewIdentitySealer([]byte(strings.Repeat("cd", 32)))
		moved := back
		moved.ConnectHost = "http://127.0.0.1:9999"
		if moved.Kind == IdentityServiceAccount {
			moved.Kind = IdentityConnect
		}
		flipped := back
		flipped.Token = bytes.Clone(back.Token)
		flipped.Token[len(flipped.Token)-1] ^= 1
		for name, try := range map[string]func() (*OPIdentity, *Error){
			"another daemon's key": func() (*OPIdentity, *Error) { return other.Open(&back) },
			"another host or kind": func() (*OPIdentity, *Error) { return s.Open(&moved) },
			"a changed byte":       func() (*OPIdentity, *Error) { return s.Open(&flipped) },
			"a short token":        func() (*OPIdentity, *Error) { return s.Open(&SealedIdentity{Kind: back.Kind, Token: []byte{1, 2}}) },
			"an unknown kind":      func() (*OPIdentity, *Error) { return s.Open(&SealedIdentity{Kind: "desktop", Token: back.Token}) },
		} {
			if got, e := try(); e == nil || e.Code != CodeBadRequest || got != nil || strings.Contains(e.Message, token) {
				t.Errorf("%s %s: Open = %+v, %v; want bad_request", id.Kind(), name, got, e)
			}
		}
	}
	if sid, err := s.Seal(nil); sid != nil || err != nil {
		t.Errorf("Seal(nil) = %+v, %v", sid, err)
	}
}
