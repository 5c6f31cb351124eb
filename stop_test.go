package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// opx stop lets a read in flight finish, then the daemon is gone; opx
// restart starts one with the flags given; a second daemon names the
// first's pid and how to stop it.
func TestStopAndRestart(t *testing.T) {
	e := newEnv(t)
	d := e.startDaemon("", "--backend=fake", "--fake-delay=3s")

	read := e.startInFlight("read", "op://v/i/slow")
	r := e.opx("stop")
	if r.code != 0 || !strings.Contains(r.stdout, "stopped the opx daemon") {
		t.Fatalf("opx stop: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if err := <-read.done; err != nil || read.stdout.String() != fv("op://v/i/slow")+"\n" {
		t.Errorf("the read in flight: %v, %q, %q; want it to finish", err, read.stdout.String(), read.stderr.String())
	}
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(d.Process.Pid, 0) == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon (pid %d) is still running after opx stop", d.Process.Pid)
		}
	}
	if r := e.opx("status"); r.code != 3 {
		t.Errorf("status after stop: exit %d, want 3 (not running)", r.code)
	}
	if r := e.opx("stop"); r.code != 0 || !strings.Contains(r.stdout, "no opx daemon is running") {
		t.Errorf("opx stop with none running: exit %d, stdout %q", r.code, r.stdout)
	}

	r = e.opx("restart", "--", "--backend=fake", "--ttl=45s")
	if r.code != 0 || !strings.Contains(r.stdout, "started the opx daemon") {
		t.Fatalf("opx restart with none running: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	first := e.status()
	if first.TTLSeconds != 45 {
		t.Errorf("the restarted daemon's TTL is %v, want the 45 s given", first.TTLSeconds)
	}
	r = e.opx("restart", "--", "--backend=fake")
	second := e.status()
	if r.code != 0 || second.PID == first.PID || !strings.Contains(r.stdout, "was") {
		t.Errorf("opx restart: exit %d, stdout %q; pid %d then %d", r.code, r.stdout, first.PID, second.PID)
	}

	r = e.opx("daemon", "--backend=fake")
	if r.code != 75 || !strings.Contains(r.stderr, "opx stop") || !strings.Contains(r.stderr, "pid") {
		t.Errorf("a second daemon: exit %d, stderr %q", r.code, r.stderr)
	}
	e.mustOpx("stop")
}

// A key in config.json that sets nothing is named when the daemon starts,
// with the key it probably meant.
func TestDaemonNamesUnknownConfigKeys(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(e.config, 0o700)
	os.WriteFile(filepath.Join(e.config, "config.json"), []byte(`{"backend": "fake", "backnd": "opcli"}`), 0o600)
	cmd := exec.Command(opxBin, "daemon")
	cmd.Env = e.environ()
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	waitFor(t, &stderr, "daemon started")
	e.mustOpx("stop")
	if s := stderr.String(); !strings.Contains(s, `"backnd" sets nothing (did you mean "backend"?)`) {
		t.Errorf("daemon stderr %q", s)
	}
}

// A client whose environment would give a daemon other settings than the
// running one's says so, in both directions, and OPX_STRICT=1 refuses.
func TestClientWarnsWhenTheDaemonIsNotItsOwn(t *testing.T) {
	e := newEnv(t)
	e.startDaemon("", "--backend=fake", "--ttl=90s")
	if r := e.opx("read", "op://v/i/a"); r.code != 0 || r.stderr != "" {
		t.Fatalf("same settings: exit %d, stderr %q", r.code, r.stderr)
	}
	// A plain opx, as after OP_AUTHD_BACKEND=fake opx read ...: the fake
	// daemon's values are not what it would get; the TTL changes nothing
	// it reads, so it is not worth a warning (issue 26).
	r := e.opxEnv([]string{"OP_AUTHD_BACKEND=opcli", "OP_AUTHD_TTL=120"}, "read", "op://v/i/a")
	if r.code != 0 || !strings.Contains(r.stderr, "backend fake, which serves made-up values (this command's settings give opcli)") ||
		strings.Contains(r.stderr, "TTL") || !strings.Contains(r.stderr, "opx restart") {
		t.Errorf("other settings: exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Count(r.stderr, "warning") != 1 {
		t.Errorf("want one warning: %q", r.stderr)
	}
	if r := e.opxEnv([]string{"OP_AUTHD_TTL=120"}, "read", "op://v/i/a"); r.code != 0 || r.stderr != "" {
		t.Errorf("another TTL only: exit %d, stderr %q; want no warning", r.code, r.stderr)
	}
	r = e.opxEnv([]string{"OP_AUTHD_BACKEND=opcli", "OPX_STRICT=1"}, "read", "op://v/i/a")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "backend fake") {
		t.Errorf("OPX_STRICT=1: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// status shows the daemon as it is, without a warning.
	if r := e.opxEnv([]string{"OP_AUTHD_BACKEND=opcli"}, "status"); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Errorf("status: exit %d, stderr %q", r.code, r.stderr)
	}
	// The other direction: an opcli daemon, and a client that asks for fake.
	o := newOPEnv(t)
	o.signIn("my")
	o.startDaemon("")
	r = o.opxEnv([]string{"OP_AUTHD_BACKEND=fake"}, "read", "op://Private/db/username")
	if !strings.Contains(r.stderr, "backend opcli, which serves real values (this command's settings give fake)") {
		t.Errorf("fake client, opcli daemon: stderr %q", r.stderr)
	}
}

// The token and certificate files removed under a running daemon come
// back: the next command works.
func TestRemovedTokenFileComesBack(t *testing.T) {
	e := newEnv(t)
	e.startDaemon("", "--backend=fake")
	e.mustOpx("read", "op://v/i/a")
	for _, f := range []string{"token", "tls.crt"} {
		if err := os.Remove(filepath.Join(e.data, f)); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.opx("read", "op://v/i/a"); r.code != 0 {
		t.Fatalf("read after the token file was removed: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, f := range []string{"token", "tls.crt"} {
		if fi, err := os.Stat(filepath.Join(e.data, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", f, fi, err)
		}
	}
	if r := e.opx("stop"); r.code != 0 {
		t.Errorf("opx stop after the files came back: %+v", r)
	}
}

// opx status shows the settings in force: backend limits, where op is
// found, the Vault address config.json holds.
func TestStatusShowsSettings(t *testing.T) {
	e := newOPEnv(t)
	os.MkdirAll(e.config, 0o700)
	os.WriteFile(filepath.Join(e.config, "config.json"), []byte(`{"vault": {"address": "http://127.0.0.1:8299"}}`), 0o600)
	e.startDaemon("", "--max-concurrent=3", "--backend-timeout=45s")
	st := e.status()
	if st.Settings.MaxConcurrent != 3 || st.Settings.BackendTimeoutSeconds != 45 || st.Settings.OPFound != fakeOpBin || st.Settings.VaultAddress != "http://127.0.0.1:8299" {
		t.Errorf("status settings: %+v", st.Settings)
	}
	out := e.mustOpx("status")
	if st.Settings.OPVersion != "2.31.1" {
		t.Errorf("status op_version = %q, want fakeop's 2.31.1", st.Settings.OPVersion)
	}
	for _, want := range []string{"at most 45s, 3 at once", "op        " + fakeOpBin + " (version 2.31.1)", "vault     http://127.0.0.1:8299"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// A daemon that a service manager runs (OPX_SERVICE) takes its settings
// from the service's environment file, which a client does not read: what
// does not change a read's answer (another TTL, multi for opcli) brings no
// warning; a fake one for a caller that asks for real values does (issue
// 26: it was exempt, and served made-up values to the shims). opx restart
// goes through the service manager.
func TestServiceManagedDaemonIsComparedByItsAnswers(t *testing.T) {
	e := newEnv(t)
	e.vars["OPX_SERVICE"] = "systemd"
	e.startDaemon("", "--backend=fake", "--ttl=5m")
	delete(e.vars, "OPX_SERVICE")
	if r := e.opxEnv([]string{"OP_AUTHD_TTL=120"}, "read", "op://v/i/a"); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Errorf("read from a service's daemon with another TTL: exit %d, stderr %q", r.code, r.stderr)
	}
	r := e.opxEnv([]string{"OP_AUTHD_BACKEND=opcli"}, "read", "op://v/i/a")
	if r.code != 0 || !strings.Contains(r.stderr, "backend fake, which serves made-up values") {
		t.Errorf("read from a service's fake daemon by a caller that asks for opcli: exit %d, stderr %q", r.code, r.stderr)
	}
	if st := e.status(); st.Settings.Service != "systemd" {
		t.Errorf("status settings.service = %q", st.Settings.Service)
	}
	if r := e.opx("restart", "--", "--ttl=5m"); r.code == 0 || !strings.Contains(r.stderr, "service") {
		t.Errorf("restart with flags of a service's daemon: exit %d, stderr %q", r.code, r.stderr)
	}
}
