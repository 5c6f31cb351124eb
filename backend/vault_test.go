package backend

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/internal/testdir"
	"github.com/opxhq/opx/xdg"
)

// A server that declares an absurd Content-Length for a secret gets a clear
// error, not a crashed daemon or a huge allocation.
func TestVaultHugeContentLengthIsAnError(t *testing.T) {
	for _, declared := range []string{"9000000000000000000", "2000000000"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/v1/auth/token/lookup-self":
				fmt.Fprint(w, `{"data":{"ttl":0,"renewable":false}}`)
			case strings.HasPrefix(r.URL.Path, "/v1/sys/internal/ui/mounts/"):
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `{"errors":[]}`)
			default:
				conn, bw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n{\"data\":{}}", declared)
				bw.Flush()
				conn.Close()
			}
		}))
		dir := testdir.New(t)
		cfg := filepath.Join(dir, "config.json")
		os.WriteFile(cfg, []byte(`{"vault": {"address": "`+srv.URL+`"}}`), 0o600)
		tok := filepath.Join(dir, "vault-token")
		// Private on Windows too (an owner-only DACL), as the backend checks.
		if err := xdg.WriteFileAtomic(tok, []byte("root"), 0o600); err != nil {
			t.Fatal(err)
		}
		v := NewVault(api.SchemeVault, cfg, tok, nil, zerolog.Nop())
		res := v.Read(context.Background(), "", []string{"vault://secret/x#k"})
		v.Close()
		srv.Close()
		var ae *api.Error
		if err := res[0].Err; err == nil || !asAPIError(err, &ae) || !strings.Contains(ae.Message, "larger than") {
			t.Errorf("Content-Length %s: %+v, want an error saying the answer is too large", declared, res[0])
		}
	}
}

func asAPIError(err error, ae **api.Error) bool {
	e, ok := err.(*api.Error)
	*ae = e
	return ok
}
