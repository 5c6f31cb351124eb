// Package baoit runs opx's integration tests against a real OpenBao server
// (2.4.0) started in this process.
package baoit

import (
	"context"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/openbao/openbao/audit"
	auditFile "github.com/openbao/openbao/builtin/audit/file"
	"github.com/openbao/openbao/builtin/credential/approle"
	"github.com/openbao/openbao/builtin/credential/userpass"
	"github.com/openbao/openbao/builtin/logical/database"
	"github.com/openbao/openbao/builtin/logical/kv"
	baoserver "github.com/openbao/openbao/command/server"
	vaulthttp "github.com/openbao/openbao/http"
	"github.com/openbao/openbao/internalshared/configutil"
	dbPostgres "github.com/openbao/openbao/plugins/database/postgresql"
	"github.com/openbao/openbao/sdk/v2/helper/consts"
	"github.com/openbao/openbao/sdk/v2/helper/pluginutil"
	"github.com/openbao/openbao/sdk/v2/logical"
	"github.com/openbao/openbao/vault"

	"github.com/opxhq/opx/e2e/harness"
	"github.com/opxhq/opx/integration/suite"
)

var (
	// quiet drops the server's trace log, which -v would otherwise print
	// around the bench report; the tests keep it for their failures.
	quiet bool
)

func TestMain(m *testing.M) { harness.Main(m) }

// newServer starts an unsealed in-process OpenBao core and serves it.
func newServer(t *testing.T) suite.Server {
	cfg := &vault.CoreConfig{
		// leased-kv: Vault's own passthrough backend with leases, for
		// dynamic-secret tests with short, renewable leases.
		LogicalBackends:    map[string]logical.Factory{"kv": kv.Factory, "leased-kv": vault.LeasedPassthroughBackendFactory, "database": databaseFactory},
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
	return suite.NewHTTPServer(t, vaulthttp.Handler.Handler(props), root)
}

// databaseFactory is OpenBao's database secrets engine, whose plugin
// lookups find the real PostgreSQL plugin built in (the test core's plugin
// registry has only a stub, and takes no other).
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

func TestOpenBao(t *testing.T) {
	suite.Run(t, "bao", newServer)
}
