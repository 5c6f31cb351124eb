//go:build unix

package suite

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	vapi "github.com/hashicorp/vault/api"

	"github.com/opxhq/opx/e2e/harness"
)

// Server is a running Vault or OpenBao server.
type Server interface {
	// Addr is the server's http://127.0.0.1:PORT address.
	Addr() string
	// RootToken is a root token of the server.
	RootToken() string
	// AuditLog is the file an audit device writes every request to.
	AuditLog() string
	// Stop closes the listener and every open connection.
	Stop()
	// Start serves again on the same address.
	Start()
}

// Env is one user's world (a harness.Env) around one server.
type Env struct {
	*harness.Env
	Kind string // "vault" or "bao"
	Srv  Server
	Root *vapi.Client // the server's API with its root token
}

// NewEnv makes a fresh HOME and XDG tree for kind, with the fake op signed
// in to its account "my" and the fixture of WriteFixture(kind, nil).
func NewEnv(t *testing.T, kind string, srv Server) *Env {
	t.Helper()
	e := &Env{Env: harness.New(t), Kind: kind, Srv: srv}
	e.UseFakeOp()
	// The server is the daemon's backend here, chosen by each test.
	delete(e.Vars, "OP_AUTHD_BACKEND")
	e.SignIn("my")
	e.WriteFixture(kind, nil)
	root, err := vapi.NewClient(&vapi.Config{Address: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(srv.RootToken())
	e.Root = root
	return e
}

// configFile is the Env's config.json.
func (e *Env) configFile() string { return filepath.Join(e.ConfigDir, "config.json") }

// Write stores a secret with the root token.
func (e *Env) Write(path string, data map[string]any) {
	e.T.Helper()
	if _, err := e.Root.Logical().Write(path, data); err != nil {
		e.T.Fatalf("write %s: %v", path, err)
	}
}

// Mount enables a KV secrets engine of version ver at path.
func (e *Env) Mount(path string, ver int) {
	e.T.Helper()
	err := e.Root.Sys().Mount(path, &vapi.MountInput{Type: "kv", Options: map[string]string{"version": strconv.Itoa(ver)}})
	if err != nil && !strings.Contains(err.Error(), "path is already in use") {
		e.T.Fatalf("mount %s: %v", path, err)
	}
}

// ReadsOf counts the audited requests (responses) for path.
func (e *Env) ReadsOf(path string) int {
	b, _ := os.ReadFile(e.Srv.AuditLog())
	n := 0
	for _, line := range bytes.Split(b, []byte("\n")) {
		var entry struct {
			Type    string `json:"type"`
			Request struct {
				Path      string `json:"path"`
				Operation string `json:"operation"`
			} `json:"request"`
		}
		if json.Unmarshal(line, &entry) == nil && entry.Type == "response" && entry.Request.Path == path && entry.Request.Operation == "read" {
			n++
		}
	}
	return n
}
