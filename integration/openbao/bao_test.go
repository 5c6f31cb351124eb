// Package baoit runs opx's integration tests against a real OpenBao
// server (2.4.0) started in this process.
package baoit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/openbao/openbao/audit"
	auditFile "github.com/openbao/openbao/builtin/audit/file"
	"github.com/openbao/openbao/builtin/credential/approle"
	"github.com/openbao/openbao/builtin/credential/userpass"
	"github.com/openbao/openbao/builtin/logical/kv"
	baoserver "github.com/openbao/openbao/command/server"
	vaulthttp "github.com/openbao/openbao/http"
	"github.com/openbao/openbao/internalshared/configutil"
	"github.com/openbao/openbao/sdk/v2/logical"
	"github.com/openbao/openbao/vault"

	vapi "github.com/hashicorp/vault/api"

	"github.com/opxhq/opx/integration/harness"
)

var bins harness.Bins

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "opx-bao-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins, err = harness.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is an in-process OpenBao core served over loopback HTTP.
type server struct {
	core  *vault.Core
	root  string
	addr  string
	audit string

	mu  sync.Mutex
	srv *http.Server
}

func newServer(t *testing.T) harness.Server {
	core, _, root := vault.TestCoreUnsealedWithConfig(t, &vault.CoreConfig{
		LogicalBackends:    map[string]logical.Factory{"kv": kv.Factory},
		CredentialBackends: map[string]logical.Factory{"userpass": userpass.Factory, "approle": approle.Factory},
		AuditBackends:      map[string]audit.Factory{"file": auditFile.Factory},
		// OpenBao takes audit devices from its config file only; the
		// test server allows the API, as OpenBao's own tests do.
		RawConfig: &baoserver.Config{UnsafeAllowAPIAuditCreation: true},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{core: core, root: root, addr: "http://" + ln.Addr().String(), audit: filepath.Join(t.TempDir(), "audit.log")}
	s.serve(ln)
	t.Cleanup(s.Stop)
	c, err := vapi.NewClient(&vapi.Config{Address: s.addr})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(root)
	if err := c.Sys().EnableAuditWithOptionsWithContext(context.Background(), "file", &vapi.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": s.audit, "log_raw": "false"},
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *server) serve(ln net.Listener) {
	props := &vault.HandlerProperties{Core: s.core, ListenerConfig: &configutil.Listener{Address: "127.0.0.1"}}
	srv := &http.Server{Handler: vaulthttp.Handler.Handler(props)}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

func (s *server) Addr() string      { return s.addr }
func (s *server) RootToken() string { return s.root }
func (s *server) AuditLog() string  { return s.audit }

func (s *server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

func (s *server) Start() {
	ln, err := net.Listen("tcp", s.addr[len("http://"):])
	if err != nil {
		panic(err)
	}
	s.serve(ln)
}

func TestOpenBao(t *testing.T) {
	harness.Run(t, "bao", bins, newServer)
}
