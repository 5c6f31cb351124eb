package cli

import (
	"testing"
	"time"
)

func TestTrimRefPrefix(t *testing.T) {
	for _, c := range []struct{ msg, ref, want string }{
		{"op://v/i/f: not found", "op://v/i/f", "not found"},
		{"not found", "op://v/i/f", "not found"},
		{"op://v/i/f: ", "op://v/i/f", "op://v/i/f: "},
		{"op://v/i/g: not found", "op://v/i/f", "op://v/i/g: not found"},
	} {
		if got := TrimRefPrefix(c.msg, c.ref); got != c.want {
			t.Errorf("TrimRefPrefix(%q, %q) = %q, want %q", c.msg, c.ref, got, c.want)
		}
	}
}

// --max-age and --no-cache become the request's max age in seconds; a
// negative one is refused before anything is sent.
func TestFreshnessQuery(t *testing.T) {
	d := func(s string) *time.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	for _, c := range []struct {
		f       Freshness
		want    float64 // -1: no max age
		wantErr bool
	}{
		{Freshness{}, -1, false},
		{Freshness{NoCache: true}, 0, false},
		{Freshness{MaxAge: d("30s")}, 30, false},
		{Freshness{MaxAge: d("1.5s")}, 1.5, false},
		{Freshness{MaxAge: d("-1s")}, 0, true},
	} {
		q, err := c.f.query(&Globals{Account: "acct"})
		if (err != nil) != c.wantErr {
			t.Errorf("query(%+v) error = %v, want error %v", c.f, err, c.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if q.Account != "acct" {
			t.Errorf("query(%+v).Account = %q, want acct", c.f, q.Account)
		}
		switch {
		case c.want < 0 && q.MaxAge != nil:
			t.Errorf("query(%+v).MaxAge = %v, want none", c.f, *q.MaxAge)
		case c.want >= 0 && (q.MaxAge == nil || *q.MaxAge != c.want):
			t.Errorf("query(%+v).MaxAge = %v, want %v", c.f, q.MaxAge, c.want)
		}
	}
}

func TestWaitingFor(t *testing.T) {
	for _, c := range []struct {
		refs []string
		want string
	}{
		{[]string{"op://a/b/c"}, "1Password: 1 ref"},
		{[]string{"op://a/b/c", "vault://s/a#k", "op://a/b/d"}, "1Password and Vault: 3 refs"},
		{[]string{"bao://s/a"}, "OpenBao: 1 ref"},
	} {
		if got := waitingFor(c.refs); got != c.want {
			t.Errorf("waitingFor(%q) = %q, want %q", c.refs, got, c.want)
		}
	}
}
