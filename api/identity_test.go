package api

import (
	"strings"
	"testing"
)

// TestOPIdentityFromEnv: Connect wins over a service account when both of
// its variables are set, as op does; one Connect variable alone is not
// Connect.
func TestOPIdentityFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		kind string
	}{
		{map[string]string{}, IdentityDesktop},
		{map[string]string{"OP_SERVICE_ACCOUNT_TOKEN": "ops_x"}, IdentityServiceAccount},
		{map[string]string{"OP_SERVICE_ACCOUNT_TOKEN": "ops_x", "OP_CONNECT_HOST": "http://h", "OP_CONNECT_TOKEN": "c"}, IdentityConnect},
		{map[string]string{"OP_SERVICE_ACCOUNT_TOKEN": "ops_x", "OP_CONNECT_HOST": "http://h"}, IdentityServiceAccount},
		{map[string]string{"OP_CONNECT_HOST": "http://h"}, IdentityDesktop},
	} {
		id := OPIdentityFromEnv(func(k string) string { return tc.env[k] })
		if id.Kind() != tc.kind {
			t.Errorf("%v: kind %s, want %s", tc.env, id.Kind(), tc.kind)
		}
	}
}

// TestOPIdentityCheck: bad identities are bad requests that never quote
// the token.
func TestOPIdentityCheck(t *testing.T) {
	for name, id := range map[string]*OPIdentity{
		"connect host alone":  {ConnectHost: "http://h"},
		"connect token alone": {ConnectToken: Secret("sekrit")},
		"control character":   {ServiceAccountToken: Secret("sek\nrit")},
		"space":               {ServiceAccountToken: Secret("sek rit")},
		"too long":            {ServiceAccountToken: Secret(strings.Repeat("s", MaxTokenLen+1))},
	} {
		e := id.Check()
		if e == nil || e.Code != CodeBadRequest || strings.Contains(e.Message, "sek") {
			t.Errorf("%s: Check() = %v", name, e)
		}
	}
	if e := (&OPIdentity{ServiceAccountToken: Secret("ops_good.token-1")}).Check(); e != nil {
		t.Errorf("a good token: %v", e)
	}
	var none *OPIdentity
	if none.Check() != nil || none.Kind() != IdentityDesktop {
		t.Error("nil identity is not the desktop")
	}
}
