package backend

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/opxhq/opx/api"
)

// TestLaunchHeader: the launcher gets the batch's identity and no other,
// whatever the daemon inherited, and reads not a byte past it.
func TestLaunchHeader(t *testing.T) {
	inherited := []string{"PATH=/bin", "OP_SERVICE_ACCOUNT_TOKEN=ops_inherited", "op_connect_host=http://x", "OP_CONNECT_TOKEN=t0", "OP_SESSION_abc=s"}
	if got, want := WithoutIdentityEnv(inherited), []string{"PATH=/bin", "OP_SESSION_abc=s"}; !slices.Equal(got, want) {
		t.Errorf("WithoutIdentityEnv = %q, want %q", got, want)
	}
	sa := NewOPIdentity(&api.OPIdentity{ServiceAccountToken: api.Secret("ops_mine")})
	conn := NewOPIdentity(&api.OPIdentity{ConnectHost: "http://127.0.0.1:1", ConnectToken: api.Secret("ctok")})
	for _, tc := range []struct {
		id   OPIdentity
		want []string
	}{
		{sa, []string{"OP_SERVICE_ACCOUNT_TOKEN=ops_mine"}},
		{conn, []string{"OP_CONNECT_HOST=http://127.0.0.1:1", "OP_CONNECT_TOKEN=ctok"}},
	} {
		in := bytes.NewReader(append(tc.id.launchHeader(), "{{ op://v/i/f }}"...))
		got, err := readLaunchHeader(in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: readLaunchHeader = %q, %v; want %q", tc.id.Label(), got, err, tc.want)
		}
		if rest, _ := io.ReadAll(in); string(rest) != "{{ op://v/i/f }}" {
			t.Errorf("%s: op's input after the header = %q", tc.id.Label(), rest)
		}
	}
	for name, h := range map[string][]byte{
		"empty":       {},
		"short":       {0, 0, 0, 9, 'a'},
		"no NUL":      append([]byte{0, 0, 0, 5}, "A=bcd"...),
		"other var":   append([]byte{0, 0, 0, 7}, "PATH=x\x00"...),
		"huge":        {0xff, 0xff, 0xff, 0xff},
		"zero length": {0, 0, 0, 0},
	} {
		if got, err := readLaunchHeader(bytes.NewReader(h)); err == nil {
			t.Errorf("%s header: readLaunchHeader = %q, want an error", name, got)
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
