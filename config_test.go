package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/daemon"
	"github.com/opxhq/opx/internal/testdir"
)

// parseDaemon parses `opx daemon ARGS` with config file path, as main does.
func parseDaemon(t testing.TB, path string, args ...string) (*daemon.Cmd, error) {
	resolver, err := configResolver(path)
	if err != nil {
		return nil, err
	}
	var d daemon.Cmd
	parser, err := kong.New(&root{}, kong.DynamicCommand("daemon", "", "", &d),
		kong.Resolvers(resolver), kong.Exit(func(int) { t.Fatal("kong tried to exit") }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = parser.Parse(append([]string{"daemon"}, args...))
	return &d, err
}

func TestConfigValues(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "config.json")
	os.WriteFile(path, []byte(`{"backend": "fake", "ttl": 30, "session-timeout": 0.5, "cache_size": 50, "fake_delay": "250ms", "vault": {"address": "http://127.0.0.1:8200"}}`), 0o600)
	g, err := parseDaemon(t, path)
	if err != nil {
		t.Fatal(err)
	}
	d := g
	if d.Backend != "fake" || d.TTL != daemon.Seconds(30e9) || d.SessionTimeout != daemon.Hours(1800e9) || d.CacheSize != 50 || d.FakeDelay != daemon.Seconds(250e6) {
		t.Errorf("daemon flags from config = %+v", d)
	}
	t.Setenv("OP_AUTHD_BACKEND", "opcli")
	if g, _ := parseDaemon(t, path); g.Backend != "opcli" {
		t.Errorf("environment did not beat the file: %q", g.Backend)
	}
	if g, _ := parseDaemon(t, path, "--backend=vault"); g.Backend != "vault" {
		t.Errorf("flag did not beat the environment: %q", g.Backend)
	}
	// --service is the service definition's to set, not config.json's.
	os.WriteFile(path, []byte(`{"service": "systemd"}`), 0o600)
	if g, err := parseDaemon(t, path); err != nil || g.Service != "" {
		t.Errorf("config.json's service = %q, %v; want it ignored", g.Service, err)
	}
	t.Setenv("OPX_SERVICE", "systemd")
	if g, _ := parseDaemon(t, path); g.Service != "systemd" {
		t.Errorf("OPX_SERVICE=systemd gave --service %q", g.Service)
	}
	os.Unsetenv("OPX_SERVICE")
	for _, bad := range []string{`{"backend": "nope"}`, `{"ttl": "soon"}`, `{"ttl": -1}`, `{"backend": {"x": 1}}`} {
		os.WriteFile(path, []byte(bad), 0o600)
		os.Unsetenv("OP_AUTHD_BACKEND")
		if _, err := parseDaemon(t, path); err == nil {
			t.Errorf("config %s was accepted", bad)
		}
	}
}

// --lock-on-auth-failure is on unless a flag, the environment or
// config.json turns it off (issue 27: a locked 1Password app locks its
// account's values at once).
func TestLockOnAuthFailureIsOnByDefault(t *testing.T) {
	path := filepath.Join(testdir.New(t), "config.json")
	if d, err := parseDaemon(t, path); err != nil || !d.LockOnAuthFailure {
		t.Errorf("default --lock-on-auth-failure = %v, %v; want on", d.LockOnAuthFailure, err)
	}
	if d, _ := parseDaemon(t, path, "--no-lock-on-auth-failure"); d.LockOnAuthFailure {
		t.Error("--no-lock-on-auth-failure left it on")
	}
	os.WriteFile(path, []byte(`{"lock_on_auth_failure": false}`), 0o600)
	if d, err := parseDaemon(t, path); err != nil || d.LockOnAuthFailure {
		t.Errorf("config.json lock_on_auth_failure false = %v, %v; want off", d.LockOnAuthFailure, err)
	}
	os.WriteFile(path, []byte(`{}`), 0o600)
	t.Setenv("OP_AUTHD_LOCK_ON_AUTH_FAILURE", "false")
	if d, err := parseDaemon(t, path); err != nil || d.LockOnAuthFailure {
		t.Errorf("OP_AUTHD_LOCK_ON_AUTH_FAILURE=false = %v, %v; want off", d.LockOnAuthFailure, err)
	}
}

func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{`{}`, `{"backend":"fake","ttl":5}`, `{"session_timeout":"90s","vault":{"address":"x","method":"userpass"}}`, `[1]`, `{"ttl":1e309}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(testdir.New(t), "config.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		parseDaemon(t, path) // errors are fine; panics are not
		for _, kind := range []string{api.SchemeVault, api.SchemeBao} {
			if c, err := api.LoadVaultConfig(kind, path); err == nil {
				c.Validate(kind)
			}
		}
	})
}

func TestNumbersThatMeanNothingAreRefused(t *testing.T) {
	dir := testdir.New(t)
	path := filepath.Join(dir, "config.json")
	for _, args := range [][]string{{"--max-concurrent=0"}, {"--audit-log-retention-days=-1"}, {"--cache-size=0"}, {"--ttl=0"}, {"--backend-timeout=0"}, {"--session-timeout=-1"}} {
		if _, err := parseDaemon(t, path, args...); err == nil {
			t.Errorf("%q was accepted", args)
		}
	}
	os.WriteFile(path, []byte(`{"max_concurrent": 0}`), 0o600)
	if _, err := parseDaemon(t, path); err == nil {
		t.Errorf("max_concurrent 0 in config.json was accepted")
	}
}

func TestUnknownConfigKeysAreNamed(t *testing.T) {
	flags := []string{"backend", "ttl", "session-timeout", "cache-size"}
	got := unknownConfigKeys(map[string]any{"backnd": "fake", "ttl": 1, "session_timeout": 2, "vault": map[string]any{}, "account": "my", "qqqqqqqq": 1}, flags)
	want := []string{`"backnd" sets nothing (did you mean "backend"?)`, `"qqqqqqqq" sets nothing`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The defaults a client compares with the running daemon's settings are
// the daemon's own.
func TestDaemonDefaults(t *testing.T) {
	d, err := parseDaemon(t, filepath.Join(testdir.New(t), "none.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Backend != daemon.DefaultBackend || time.Duration(d.TTL) != daemon.DefaultTTL || d.OPPath != "" {
		t.Errorf("daemon defaults: backend %q, TTL %v, op path %q; daemon.Default* say %q, %v", d.Backend, time.Duration(d.TTL), d.OPPath, daemon.DefaultBackend, daemon.DefaultTTL)
	}
}
