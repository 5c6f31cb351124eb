package backend

import (
	"slices"
	"strings"
	"testing"

	"github.com/opxhq/opx/api"
)

// TestIdentityEnv: op gets the batch's identity and no other, whatever the
// daemon inherited; the desktop gets none.
func TestIdentityEnv(t *testing.T) {
	inherited := []string{"PATH=/bin", "OP_SERVICE_ACCOUNT_TOKEN=ops_inherited", "op_connect_host=http://x", "OP_CONNECT_TOKEN=t0", "OP_SESSION_abc=s"}
	sa := NewOPIdentity(&api.OPIdentity{ServiceAccountToken: api.Secret("ops_mine")})
	conn := NewOPIdentity(&api.OPIdentity{ConnectHost: "http://127.0.0.1:1", ConnectToken: api.Secret("ctok")})
	for _, tc := range []struct {
		id   OPIdentity
		want []string
	}{
		{Desktop, []string{"PATH=/bin", "OP_SESSION_abc=s"}},
		{sa, []string{"PATH=/bin", "OP_SESSION_abc=s", "OP_SERVICE_ACCOUNT_TOKEN=ops_mine"}},
		{conn, []string{"PATH=/bin", "OP_SESSION_abc=s", "OP_CONNECT_HOST=http://127.0.0.1:1", "OP_CONNECT_TOKEN=ctok"}},
	} {
		if got := tc.id.env(inherited); !slices.Equal(got, tc.want) {
			t.Errorf("%s env = %q, want %q", tc.id.Label(), got, tc.want)
		}
	}
}

// TestIdentityCopyAndWipe: a copy's token is its own; a wipe zeroes it
// and leaves the original; labels show the short fingerprint, never the
// token.
func TestIdentityCopyAndWipe(t *testing.T) {
	id := NewOPIdentity(&api.OPIdentity{ServiceAccountToken: api.Secret("ops_secret_token")})
	again := NewOPIdentity(&api.OPIdentity{ServiceAccountToken: api.Secret("ops_secret_token")})
	if id.Fingerprint != again.Fingerprint || len(id.Fingerprint) != 64 || id.Kind != api.IdentityServiceAccount {
		t.Fatalf("identity = %+v, again %+v", id, again)
	}
	cp := id.Copy()
	held := cp.token
	cp.Wipe()
	if strings.Trim(string(held), "\x00") != "" || cp.token != nil {
		t.Errorf("wiped copy still holds %q", held)
	}
	if string(id.token) != "ops_secret_token" {
		t.Errorf("the original lost its token: %q", id.token)
	}
	if l := id.Label(); strings.Contains(l, "ops_secret") || !strings.Contains(l, id.Short()) || len(id.Short()) != 12 {
		t.Errorf("Label() = %q", l)
	}
}
