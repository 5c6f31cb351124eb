// Package baoit runs opx's integration tests against a real OpenBao server
// (2.4.0) started in this process.
package baoit

import (
	"testing"

	hclog "github.com/hashicorp/go-hclog"
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

	"github.com/opxhq/opx/integration/harness"
)

var (
	bins harness.Bins
	// quiet drops the server's trace log, which -v would otherwise print
	// around the bench report; the tests keep it for their failures.
	quiet bool
)

func TestMain(m *testing.M) { harness.Main(m, &bins) }

// newServer starts an unsealed in-process OpenBao core and serves it.
func newServer(t *testing.T) harness.Server {
	cfg := &vault.CoreConfig{
		// leased-kv: Vault's own passthrough backend with leases, for
		// dynamic-secret tests with short, renewable leases.
		LogicalBackends:    map[string]logical.Factory{"kv": kv.Factory, "leased-kv": vault.LeasedPassthroughBackendFactory},
		CredentialBackends: map[string]logical.Factory{"userpass": userpass.Factory, "approle": approle.Factory},
		AuditBackends:      map[string]audit.Factory{"file": auditFile.Factory},
		// OpenBao takes audit devices from its config file only; the
		// test server allows the API, as OpenBao's own tests do.
		RawConfig: &baoserver.Config{UnsafeAllowAPIAuditCreation: true},
	}
	if quiet {
		cfg.Logger = hclog.NewNullLogger()
	}
	core, _, root := vault.TestCoreUnsealedWithConfig(t, cfg)
	props := &vault.HandlerProperties{Core: core, ListenerConfig: &configutil.Listener{Address: "127.0.0.1"}}
	return harness.NewHTTPServer(t, vaulthttp.Handler.Handler(props), root)
}

func TestOpenBao(t *testing.T) {
	harness.Run(t, "bao", bins, newServer)
}
