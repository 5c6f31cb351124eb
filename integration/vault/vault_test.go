// Package vaultit runs opx's integration tests against a real HashiCorp
// Vault server started in this process (Vault 1.14.1, the last MPL-2.0
// release).
package vaultit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/audit"
	auditFile "github.com/hashicorp/vault/builtin/audit/file"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/credential/userpass"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/internalshared/configutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"

	vapi "github.com/hashicorp/vault/api"

	"github.com/opxhq/opx/integration/harness"
)

var bins harness.Bins

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "opx-vault-bin")
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

// server is an in-process Vault core served over loopback HTTP.
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

func TestVault(t *testing.T) {
	harness.Run(t, "vault", bins, newServer)
}
