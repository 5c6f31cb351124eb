//go:build unix

package suite

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/opxhq/opx/e2e/harness"
)

// secretsLeaveMemory reads 20 secrets (10 KV v2 fields one by one and in a
// batch, 10 KV v1 fields, whole secrets, /v1/resolve), locks the session,
// and searches the daemon's writable memory for the values: none may be
// left. The server is plain HTTP on loopback; over HTTPS, crypto/tls keeps
// the last decrypted record in its connection's input buffer, which opx
// cannot reach (README, Security).
func (s suite) secretsLeaveMemory(t *testing.T) {
	e := s.withToken(t, s.kind)
	var refs []string
	var values [][]byte
	for i := range 20 {
		b := make([]byte, 12)
		rand.Read(b)
		v := "opxmem-" + hex.EncodeToString(b)
		fields := map[string]any{"password": v, "user": fmt.Sprintf("u%d", i)}
		path := fmt.Sprintf("kv1/mem%d", i)
		if i < 10 {
			path = fmt.Sprintf("kv2/mem%d", i)
			e.Write(fmt.Sprintf("kv2/data/mem%d", i), map[string]any{"data": fields})
		} else {
			e.Write(path, fields)
		}
		refs = append(refs, s.ref(path+"#password"))
		values = append(values, []byte(v))
	}
	want := ""
	for _, v := range values[:10] {
		want += string(v) + "\n"
	}
	if out := e.MustOpx(append([]string{"read"}, refs[:10]...)...); out != want {
		t.Fatalf("batch read = %q", out)
	}
	for i, ref := range refs[10:] {
		if out := e.MustOpx("read", ref); out != string(values[10+i])+"\n" {
			t.Fatalf("read %s = %q", ref, out)
		}
	}
	e.MustOpx("read", s.ref("kv2/mem0"), s.ref("kv1/mem10")) // whole secrets
	e.MustOpx(append([]string{"read"}, refs...)...)
	var env []string
	for i, ref := range refs {
		env = append(env, fmt.Sprintf("V%d=%s", i, ref))
	}
	e.MustOpx(append([]string{"resolve"}, env...)...)
	e.MustOpx("lock")

	harness.AssertNoSecrets(t, e.DaemonPID(), values)
}
