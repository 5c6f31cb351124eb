//go:build unix

package suite

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	vapi "github.com/hashicorp/vault/api"
)

// HTTPServer serves a Vault or OpenBao handler on loopback, with a file
// audit device, and can be stopped and started again on the same address.
type HTTPServer struct {
	handler http.Handler
	root    string
	addr    string
	audit   string

	mu  sync.Mutex
	srv *http.Server
}

// NewHTTPServer serves handler, whose root token is root, until the test ends.
func NewHTTPServer(t *testing.T, handler http.Handler, root string) *HTTPServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &HTTPServer{handler: handler, root: root, addr: "http://" + ln.Addr().String(), audit: filepath.Join(t.TempDir(), "audit.log")}
	s.serve(ln)
	t.Cleanup(s.Stop)
	c, err := vapi.NewClient(&vapi.Config{Address: s.addr})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(root)
	if err := c.Sys().EnableAuditWithOptionsWithContext(context.Background(), "file", &vapi.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": s.audit},
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *HTTPServer) serve(ln net.Listener) {
	srv := &http.Server{Handler: s.handler}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

// Addr implements Server.
func (s *HTTPServer) Addr() string { return s.addr }

// RootToken implements Server.
func (s *HTTPServer) RootToken() string { return s.root }

// AuditLog implements Server.
func (s *HTTPServer) AuditLog() string { return s.audit }

// Stop implements Server: the listener and every connection close.
func (s *HTTPServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// Start implements Server.
func (s *HTTPServer) Start() {
	ln, err := net.Listen("tcp", s.addr[len("http://"):])
	if err != nil {
		panic(err)
	}
	s.serve(ln)
}
