// Package vaultit runs opx's integration tests against a real HashiCorp
// Vault server started in this process (Vault 1.14.1, the last MPL-2.0
// release).
package vaultit

import (
	"context"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/audit"
	auditFile "github.com/hashicorp/vault/builtin/audit/file"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/credential/userpass"
	"github.com/hashicorp/vault/builtin/logical/database"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/internalshared/configutil"
	dbPostgres "github.com/hashicorp/vault/plugins/database/postgresql"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"

	"github.com/opxhq/opx/e2e/harness"
	"github.com/opxhq/opx/integration/suite"
)

var (
	// quiet drops the server's trace log, which -v would otherwise print
	// around the bench report; the tests keep it for their failures.
	quiet bool
)

func TestMain(m *testing.M) { harness.Main(m) }

// newServer starts an unsealed in-process Vault core and serves it.
func newServer(t *testing.T) suite.Server {
	cfg := &vault.CoreConfig{
		// leased-kv: Vault's own passthrough backend with leases, for
		// dynamic-secret tests with short, renewable leases.
		LogicalBackends:    map[string]logical.Factory{"kv": kv.Factory, "leased-kv": vault.LeasedPassthroughBackendFactory, "database": databaseFactory},
		CredentialBackends: map[string]logical.Factory{"userpass": userpass.Factory, "approle": approle.Factory},
		AuditBackends:      map[string]audit.Factory{"file": auditFile.Factory},
	}
	if quiet {
		cfg.Logger = hclog.NewNullLogger()
	}
	core, _, root := vault.TestCoreUnsealedWithConfig(t, cfg)
	props := &vault.HandlerProperties{Core: core, ListenerConfig: &configutil.Listener{Address: "127.0.0.1"}}
	return suite.NewHTTPServer(t, vaulthttp.Handler.Handler(props), root)
}

// databaseFactory is Vault's database secrets engine, whose plugin lookups
// find the real PostgreSQL plugin built in (the test core's plugin registry
// has only a stub, and takes no other).
func databaseFactory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	conf.System = pgSystemView{conf.System}
	return database.Factory(ctx, conf)
}

type pgSystemView struct{ logical.SystemView }

func (s pgSystemView) LookupPlugin(ctx context.Context, name string, typ consts.PluginType) (*pluginutil.PluginRunner, error) {
	return s.LookupPluginVersion(ctx, name, typ, "")
}

func (s pgSystemView) LookupPluginVersion(ctx context.Context, name string, typ consts.PluginType, version string) (*pluginutil.PluginRunner, error) {
	if name == "postgresql-database-plugin" && typ == consts.PluginTypeDatabase {
		return &pluginutil.PluginRunner{Name: name, Type: typ, Builtin: true, BuiltinFactory: dbPostgres.New}, nil
	}
	return s.SystemView.LookupPluginVersion(ctx, name, typ, version)
}

func TestVault(t *testing.T) {
	suite.Run(t, "vault", newServer)
}
