package e2e

// opx resolve: NAME=value in its output formats.

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestResolveFormats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon("", "--backend=fake")
	out := e.MustOpx("resolve", "B=op://v/i/b", "A=vault://kv/a#x")
	if want := "A=" + fv("vault://kv/a#x") + "\nB=" + fv("op://v/i/b") + "\n"; out != want {
		t.Errorf("resolve = %q, want %q", out, want)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(e.MustOpx("resolve", "--json", "A=op://v/i/a")), &m); err != nil || m["A"] != fv("op://v/i/a") {
		t.Errorf("resolve --json = %v, %v", m, err)
	}
	if out := e.MustOpx("resolve", "--export", "A=op://v/i/a"); out != "export A='"+fv("op://v/i/a")+"'\n" {
		t.Errorf("resolve --export = %q", out)
	}
	r := e.Opx("resolve", "A=op://v/i/a", "B=nope")
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "B:") {
		t.Errorf("resolve with a bad ref = %+v", r)
	}
}
