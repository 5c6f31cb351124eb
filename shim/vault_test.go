package shim

import (
	"strings"
	"testing"
)

// The command lines the vault shim serves, and the ref each becomes; every
// other line goes to the real CLI (ref "").
func TestVaultShimCommandLines(t *testing.T) {
	t.Setenv("VAULT_FORMAT", "")
	for _, tc := range []struct {
		args string
		ref  string
	}{
		{"kv get -field=password secret/app", "vault://secret/app?response=kv"},
		{"kv get -field password secret/app", "vault://secret/app?response=kv"},
		{"kv get --field=password /secret/app", "vault://secret/app?response=kv"},
		{"kv get -format=json secret/app", "vault://secret/app?response=kv"},
		{"kv get -format JSON secret/app", "vault://secret/app?response=kv"},
		{"kv get -mount=secret -field=password app", "vault://secret/app?response=kv"},
		{"kv get -mount=/secret/ -field=password team/app", "vault://secret/team/app?response=kv"},
		{"kv get -version=3 -field=password secret/app", "vault://secret/app?response=kv&version=3"},
		{"kv get -version=0 -field=password secret/app", "vault://secret/app?response=kv"},
		{"kv get -field=password -- secret/app", "vault://secret/app?response=kv"},
		{"read -field=password secret/data/app", "vault://secret/data/app?response=logical"},
		{"read -format=json /database/creds/ro/", "vault://database/creds/ro?response=logical"},
		// The real CLI's.
		{"kv get secret/app", ""},                                   // the table form
		{"kv get -format=yaml secret/app", ""},                      // another format
		{"kv get -field=password -address=http://x secret/app", ""}, // a flag the shim does not serve
		{"kv get -field=password -ns=team secret/app", ""},
		{"kv get -field=password secret/app extra", ""},        // too many arguments
		{"kv get -field=password secret/app -format=json", ""}, // a flag after the path
		{"kv get -field=password", ""},                         // no path
		{"kv get -field", ""},                                  // a flag without its value
		{"kv get -field=password secret/data/app", ""},         // kv get reads secret/data/data/app
		{"kv get -mount=secret -field=password data/app", ""},
		{"kv get -mount=secret/team -field=password app", ""}, // the CLI maps through the server's mount
		{"kv get -field=password secret/app/", ""},
		{"kv get -field=password secret/../sys/health", ""},
		{"kv get -field=password secret/a#b", ""},
		{"kv get -field=password secret/a?x=1", ""},
		{"kv get -version=abc -field=password secret/app", ""},
		{"kv get -version=-1 -field=password secret/app", ""},
		{"kv get -version=010 -field=password secret/app", ""}, // octal to the CLI
		{"kv get -mount=/ -field=password secret/app", ""},     // the CLI's KV v1 read of the path
		{"kv get -format -format=json secret/app", ""},         // the format is "-format=json"
		{"read -field=id auth/token/lookup-self", ""},          // the caller's token, not the daemon's
		{"read -format=json cubbyhole/x", ""},
		{"read -format=json sys/mounts", ""},
		{"read -field=code totp/code/github", ""},
		{"kv get -field=x cubbyhole/x", ""},
		{"kv get -version=+2 -field=password secret/app", ""},
		{"kv get -output-curl-string -field=password secret/app", ""},
		{"kv get -field=password -detailed secret/app", ""},
		{"read -version=2 -field=password secret/app", ""}, // read has no -version
		{"read -field=x secret/app k=v", ""},               // a read with data
		{"read -format=raw secret/app", ""},
		{"kv list secret/", ""},
		{"kv put secret/app a=b", ""},
		{"write secret/app a=b", ""},
		{"-format=json kv get secret/app", ""},
		{"version", ""},
		{"", ""},
	} {
		c, ok := parseVaultArgs("vault", strings.Fields(tc.args))
		ref := ""
		if ok {
			ref = c.ref("vault")
		}
		if ref != tc.ref {
			t.Errorf("vault %s: ref %q, want %q", tc.args, ref, tc.ref)
		}
	}
}

// VAULT_FORMAT (BAO_FORMAT, then VAULT_FORMAT, for bao) settles the format
// when no flag does.
func TestVaultShimFormatFromEnvironment(t *testing.T) {
	t.Setenv("VAULT_FORMAT", "json")
	if c, ok := parseVaultArgs("vault", []string{"kv", "get", "secret/app"}); !ok || c.format != "json" {
		t.Errorf("VAULT_FORMAT=json: %+v %v", c, ok)
	}
	if _, ok := parseVaultArgs("vault", []string{"kv", "get", "-format=table", "secret/app"}); ok {
		t.Error("-format=table over VAULT_FORMAT=json was served")
	}
	t.Setenv("BAO_FORMAT", "")
	if _, ok := parseVaultArgs("bao", []string{"kv", "get", "secret/app"}); ok {
		t.Error("bao with BAO_FORMAT set empty took VAULT_FORMAT")
	}
}

const kv2Answer = `{"opx_kv_version":2,"request_id":"r1","lease_id":"","renewable":false,"lease_duration":0,` +
	`"data":{"data":{"password":"p\u001b[31mw","n":1.50,"list":[1,"a",null],"data":"inner"},"metadata":{"version":2}},` +
	`"wrap_info":null,"warnings":null,"auth":null}`

func TestVaultShimRender(t *testing.T) {
	for _, tc := range []struct {
		args          string
		body          string
		tty, color    bool
		want          string
		passesThrough bool
	}{
		{args: "kv get -field=password s/a", body: kv2Answer, want: "pw"},
		{args: "kv get -field=password s/a", body: kv2Answer, tty: true, color: true, want: "\x1b[0mp\x1b[31mw\x1b[0m\n"},
		{args: "kv get -field=password s/a", body: kv2Answer, tty: true, want: "pw\n"},
		{args: "kv get -field=n s/a", body: kv2Answer, want: "1.50"},
		{args: "kv get -field=list s/a", body: kv2Answer, want: "[1 a <nil>]"},
		{args: "kv get -field=data s/a", body: kv2Answer, want: "inner"},
		{args: "kv get -format=json -field=list s/a", body: kv2Answer, want: "[\n  1,\n  \"a\",\n  null\n]"},
		{args: "kv get -field=request_id s/a", body: kv2Answer, passesThrough: true}, // KV v2: only the secret's fields
		{args: "kv get -field=missing s/a", body: kv2Answer, passesThrough: true},
		{args: "read -field=request_id s/data/a", body: kv2Answer, want: "r1"},
		{args: "read -field=metadata s/data/a", body: kv2Answer, want: "map[version:2]"},
		{args: "kv get -field=data s/a", body: `{"request_id":"r","data":{"data":{"k":"v"}}}`, want: "map[k:v]"},           // KV v1
		{args: "kv get -field=lease_id s/a", body: `{"request_id":"r","lease_id":"L","data":{"lease_id":"f"}}`, want: "L"}, // as RawField
		{args: "kv get -format=json s/a", body: `{"request_id":"r","lease_id":"","lease_duration":0,"renewable":false,"data":{"b":"<&>","a":1},"warnings":["w"],"auth":null}`,
			want: "{\n  \"request_id\": \"r\",\n  \"lease_id\": \"\",\n  \"lease_duration\": 0,\n  \"renewable\": false,\n  \"data\": {\n    \"a\": 1,\n    \"b\": \"\\u003c\\u0026\\u003e\"\n  },\n  \"warnings\": [\n    \"w\"\n  ]\n}\n"},
		{args: "kv get -format=json s/a", body: `{"request_id":"r","data":{},"auth":{"client_token":"t"}}`, passesThrough: true},
		{args: "kv get -format=json s/a", body: `{"request_id":"r","data":{},"wrap_info":{"token":"t"}}`, passesThrough: true},
		{args: "kv get -format=json s/a", body: `not json`, passesThrough: true},
	} {
		c, ok := parseVaultArgs("vault", strings.Fields(tc.args))
		if !ok {
			t.Fatalf("%s: not served", tc.args)
		}
		out, ok := renderVault(c, []byte(tc.body), tc.tty, tc.color)
		if tc.passesThrough {
			if ok {
				t.Errorf("%s on %s: rendered %q, want the real CLI to answer", tc.args, tc.body, out)
			}
			continue
		}
		if !ok || string(out) != tc.want {
			t.Errorf("%s (tty %v, colour %v): %q %v, want %q", tc.args, tc.tty, tc.color, out, ok, tc.want)
		}
	}
}

// The CLI's writer drops escape sequences when it does not colour: ESC and
// the next byte, or ESC [ up to a letter or '@'.
func TestStripEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                 "plain",
		"a\x1b[31mred\x1b[0mb":  "aredb",
		"a\x1bZb":               "ab",
		"a\x1b[12;3@b":          "ab",
		"end\x1b":               "end",
		"end\x1b[12":            "end",
		"\x1b\x1b[mx":           "[mx",
		"tab\tand\nnewline\x7f": "tab\tand\nnewline\x7f",
	} {
		if got := string(stripEscapes([]byte(in))); got != want {
			t.Errorf("stripEscapes(%q) = %q, want %q", in, got, want)
		}
	}
}

// The shim reads only where the CLI would make a plain read of the server
// its environment names.
func TestVaultShimServer(t *testing.T) {
	for _, v := range []string{"VAULT_ADDR", "VAULT_NAMESPACE", "VAULT_AGENT_ADDR", "VAULT_PROXY_ADDR", "VAULT_WRAP_TTL", "VAULT_SRV_LOOKUP", "BAO_ADDR"} {
		t.Setenv(v, "")
	}
	if srv, ok := vaultServer("vault"); !ok || srv.Address != "https://127.0.0.1:8200" || srv.Namespace != "" {
		t.Errorf("no settings: %+v %v, want the CLI's default address", srv, ok)
	}
	t.Setenv("VAULT_ADDR", "http://v:8200")
	t.Setenv("VAULT_NAMESPACE", "team")
	if srv, ok := vaultServer("vault"); !ok || srv.Address != "http://v:8200" || srv.Namespace != "team" {
		t.Errorf("VAULT_ADDR, VAULT_NAMESPACE: %+v %v", srv, ok)
	}
	// bao: BAO_ADDR set, even empty, wins over VAULT_ADDR (empty: the
	// default); BAO_NAMESPACE unset falls back to VAULT_NAMESPACE.
	if srv, _ := vaultServer("bao"); srv.Address != "https://127.0.0.1:8200" || srv.Namespace != "team" {
		t.Errorf("bao with BAO_ADDR set empty: %+v, want the default address and namespace team", srv)
	}
	for _, v := range []string{"VAULT_AGENT_ADDR", "VAULT_PROXY_ADDR", "VAULT_WRAP_TTL", "VAULT_SRV_LOOKUP"} {
		t.Setenv(v, "x")
		if _, ok := vaultServer("vault"); ok {
			t.Errorf("with %s set the shim reads", v)
		}
		t.Setenv(v, "")
	}
}

// The writes after which the shim drops opx's cached values.
func TestVaultWrites(t *testing.T) {
	for args, want := range map[string]bool{
		"kv put secret/app a=b": true, "kv patch secret/app a=b": true, "kv delete secret/app": true,
		"kv undelete -versions=1 secret/app": true, "kv destroy -versions=1 secret/app": true,
		"kv rollback -version=1 secret/app": true, "kv metadata delete secret/app": true,
		"kv metadata put -max-versions=2 secret/app": true, "write secret/app a=b": true, "delete secret/app": true,
		"kv metadata get secret/app": false, "kv get secret/app": false, "kv list secret/": false,
		"read secret/app": false, "status": false, "kv": false, "": false,
	} {
		if got := isVaultWrite(strings.Fields(args)); got != want {
			t.Errorf("isVaultWrite(%q) = %v, want %v", args, got, want)
		}
	}
}
