package template

import (
	"strings"
	"testing"
)

func TestExpandRef(t *testing.T) {
	lookup := LookupIn([]string{"APP_ENV=prod", "Region=eu", "EMPTY=", "Dup=a", "DUP=b"})
	for _, c := range []struct{ in, want, err string }{
		{"op://prod/db/password", "op://prod/db/password", ""},
		{"op://$APP_ENV/db/password", "op://prod/db/password", ""},
		{"op://${APP_ENV}/db/password", "op://prod/db/password", ""},
		{"op://${ APP_ENV }/db/password", "op://prod/db/password", ""},
		{"op://${VAULT:-dev}/docker/password", "op://dev/docker/password", ""},
		{"op://${APP_ENV:-dev}/docker/password", "op://prod/docker/password", ""},
		{"op://${EMPTY:-dev}/x/y", "op://dev/x/y", ""},
		{"op://$region/db/$APP_ENV", "op://eu/db/prod", ""}, // names match without regard to case
		{"vault://secret/${APP_ENV}/app#key", "vault://secret/prod/app#key", ""},
		{"op://v/i/pa$", "op://v/i/pa$", ""}, // a $ that starts no variable stays
		{"op://v/i/$1x", "op://v/i/$1x", ""}, // nor does one before a digit
		{"op://$APP_ENV_X/db", "", "APP_ENV_X is not set"},
		{"op://${NOPE}/db", "", "NOPE is not set"},
		{"op://$EMPTY/db", "", "EMPTY is empty"},
		{"op://$dup/db", "", "dup is not set"}, // two variables match without case: neither is taken
		{"op://${APP_ENV/db", "", "no closing brace"},
		{"op://${APP_ENV\\}/db", "", "no closing brace"},
		{"op://${2nd}/db", "", "not a variable name"},
		{"op://v/${UNSET:-}/f", "", "default is empty"},
	} {
		got, err := ExpandRef(c.in, lookup)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: got %q, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
