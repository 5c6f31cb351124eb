//go:build unix

package e2e

// The shims serve whenever the daemon's answer is the one the caller would
// get on its own (issue 26), whichever of the README's ways started the
// daemon; and a fake daemon never answers a caller that expects real
// values.

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startWay starts a daemon as one of the README's ways does, on the
// backend given ("" for the way's default), for the env of shimEnv.
type startWay struct {
	name string
	// start starts the daemon; fake asks for one on the fake backend
	// where the way can say so.
	start func(t *testing.T, e *testEnv, fake bool)
}

// serviceEnv is what a service manager gives the daemon: a home, the XDG
// directories, a bare PATH where op is found, and the fake op's files (its
// own state, as the real op keeps its own in HOME), plus extra.
func serviceEnv(e *testEnv, extra ...string) []string {
	env := []string{"PATH=" + filepath.Join(e.Dir, "realop") + ":/usr/bin:/bin"}
	for _, k := range []string{"HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "FAKEOP_FIXTURE", "FAKEOP_STATE", "FAKEOP_LOG", "GORACE"} {
		env = append(env, k+"="+e.Vars[k])
	}
	return append(env, extra...)
}

var startWays = []startWay{
	{"by hand with flags", func(t *testing.T, e *testEnv, fake bool) {
		backend := "--backend=multi"
		if fake {
			backend = "--backend=fake"
		}
		e.StartDaemonWith(e.Environ(), e.Daemon, "daemon", backend)
	}},
	{"autostarted", func(t *testing.T, e *testEnv, fake bool) {
		if fake {
			// A CI step with OP_AUTHD_BACKEND=fake started it.
			if r := e.OpxEnv([]string{"OP_AUTHD_BACKEND=fake"}, "read", "op://v/i/f"); r.Code != 0 {
				t.Fatalf("autostart on the fake backend: %+v", r)
			}
		}
		// Otherwise the first shim call starts it.
	}},
	{"opx service install", func(t *testing.T, e *testEnv, fake bool) {
		args := []string{"service", "install", "--print"}
		if fake {
			f := filepath.Join(e.Dir, "opx.env")
			os.WriteFile(f, []byte("OP_AUTHD_BACKEND=fake\n"), 0o600)
			args = append(args, "--env-file", f)
		} else {
			args = append(args, "--", "--backend=multi")
		}
		argv, env := parseUnit(t, e.MustOpx(args...))
		e.StartDaemonWith(serviceEnv(e, env...), argv[0], argv[1:]...)
	}},
	{"Homebrew's brew services", func(t *testing.T, e *testEnv, fake bool) {
		formula, err := os.ReadFile(repoFile("packaging/homebrew/opx.rb"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`run [opt_bin/"opx", "daemon"]`, `environment_variables OPX_SERVICE: "launchd:homebrew.mxcl.opx"`} {
			if !strings.Contains(string(formula), want) {
				t.Fatalf("the formula's service no longer has %s: update this test", want)
			}
		}
		// Its settings come from config.json, which the callers read
		// too; a caller whose own environment asks for real values
		// (OP_AUTHD_BACKEND=opcli) must not get a fake daemon's.
		backend := "multi"
		if fake {
			backend = "fake"
			e.Vars["OP_AUTHD_BACKEND"] = "opcli"
		}
		os.MkdirAll(e.ConfigDir, 0o700)
		os.WriteFile(filepath.Join(e.ConfigDir, "config.json"), []byte(`{"backend": "`+backend+`"}`), 0o600)
		e.StartDaemonWith(serviceEnv(e, "OPX_SERVICE=launchd:homebrew.mxcl.opx"), e.Daemon, "daemon")
	}},
	{"Home Manager", func(t *testing.T, e *testEnv, fake bool) {
		module, err := os.ReadFile(repoFile("packaging/nix/home-manager.nix"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"daemon"`, `"--backend=${cfg.backend}"`, `"--session-timeout=${toString cfg.sessionTimeout}"`,
			`"--audit-log-retention-days=${toString cfg.auditLogRetentionDays}"`, `Environment = [ "OPX_SERVICE=systemd:opx-authd.service" ];`} {
			if !strings.Contains(string(module), want) {
				t.Fatalf("the Home Manager module no longer has %s: update this test", want)
			}
		}
		backend := "multi" // services.opx-authd.backend = "multi";
		if fake {
			backend = "fake"
		}
		e.StartDaemonWith(serviceEnv(e, "OPX_SERVICE=systemd:opx-authd.service"), e.Daemon,
			"daemon", "--backend="+backend, "--session-timeout=8", "--audit-log-retention-days=30")
	}},
}

// parseUnit reads a systemd unit's ExecStart and the environment its
// Environment= and EnvironmentFile= lines give.
func parseUnit(t *testing.T, unit string) (argv, env []string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "ExecStart="):
			argv = strings.Fields(strings.TrimPrefix(line, "ExecStart="))
		case strings.HasPrefix(line, "Environment="):
			env = append(env, strings.Trim(strings.TrimPrefix(line, "Environment="), `"`))
		case strings.HasPrefix(line, "EnvironmentFile="):
			f := strings.TrimPrefix(line, "EnvironmentFile=")
			optional := strings.HasPrefix(f, "-")
			b, err := os.ReadFile(strings.TrimPrefix(f, "-"))
			if err != nil && !optional {
				t.Fatalf("unit's EnvironmentFile %s: %v", f, err)
			}
			for _, l := range strings.Split(string(b), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					env = append(env, l)
				}
			}
		}
	}
	if len(argv) < 2 || argv[1] != "daemon" {
		t.Fatalf("unit's ExecStart = %q", argv)
	}
	return argv, env
}

// The calls opx would answer go through the daemon, and opx read says
// nothing, however the daemon was started: on main a daemon started by
// hand with --backend=multi (or by Home Manager, or by a service whose
// environment file set the backend) differed from the caller's default
// backend, so every call asked the daemon and then ran the real op anyway,
// and every opx read warned.
func TestShimsServeHoweverTheDaemonWasStarted(t *testing.T) {
	t.Parallel()
	for _, way := range startWays {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			e, shims := shimEnv(t)
			// A user's shell: no backend or op chosen.
			delete(e.Vars, "OP_AUTHD_BACKEND")
			delete(e.Vars, "OPX_OP_PATH")
			way.start(t, e, false)
			shim := filepath.Join(shims, "op")
			for range 5 {
				if r := e.runOP(shim, "", "read", "op://Private/db/password"); r.Code != 0 || r.Stdout != "s3cr3t-db-pass\n" || r.Stderr != "" {
					t.Fatalf("op read through the shim = %+v", r)
				}
			}
			if calls := e.OpCalls(); len(calls) != 1 {
				t.Errorf("5 op read calls through the shim ran op %d times: %q; want 1 (the daemon's, then its cache)", len(calls), calls)
			}
			if r := e.Opx("read", "op://Private/db/password"); r.Code != 0 || r.Stderr != "" {
				t.Errorf("opx read against this daemon = %+v; want no warning", r)
			}
			if out := e.MustOpx("shim", "status", shims); strings.Contains(out, "go to the real") {
				t.Errorf("opx shim status says the daemon does not answer:\n%s", out)
			}
		})
	}
}

// A daemon on the fake backend never answers a caller that expects real
// values, however it was started: the shim runs the real op (which gives
// the real value), opx read warns, and opx shim status says why (opx
// doctor shows the same line for the shims in its default directory).
func TestShimsNeverServeAFakeDaemonToARealCaller(t *testing.T) {
	t.Parallel()
	for _, way := range startWays {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			e, shims := shimEnv(t)
			delete(e.Vars, "OP_AUTHD_BACKEND")
			delete(e.Vars, "OPX_OP_PATH")
			way.start(t, e, true)
			shim := filepath.Join(shims, "op")
			before := len(e.OpCalls())
			for range 3 {
				if r := e.runOP(shim, "", "read", "op://Private/db/password"); r.Code != 0 || r.Stdout != "s3cr3t-db-pass\n" {
					t.Fatalf("op read through the shim with a fake daemon = %+v; want the real op's value", r)
				}
			}
			if n := len(e.OpCalls()) - before; n != 3 {
				t.Errorf("3 op read calls with a fake daemon ran the real op %d times, want 3", n)
			}
			r := e.Opx("read", "op://Private/db/password")
			if !strings.Contains(r.Stderr, "backend fake, which serves made-up values") {
				t.Errorf("opx read against a fake daemon = %+v; want a warning", r)
			}
			if out := e.MustOpx("shim", "status", shims); !strings.Contains(out, "backend fake") || !strings.Contains(out, "go to the real op") {
				t.Errorf("opx shim status does not say why the calls go to the real op:\n%s", out)
			}
		})
	}
}
