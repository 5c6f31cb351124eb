//go:build unix

package suite

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	vapi "github.com/hashicorp/vault/api"

	"github.com/opxhq/opx/e2e/harness"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// RealCLI builds, once per test process, the real CLI of kind from its own
// module (integration/vaultcli: Vault 1.14.1; integration/baocli: OpenBao
// 2.4.0, the same modules and versions as the servers).
func RealCLI(t *testing.T, kind string) string {
	t.Helper()
	cliOnce.Do(func() {
		b := harness.Bins()
		dir := filepath.Join(b.Root, "integration", kind+"cli")
		cliPath = filepath.Join(b.Dir, "real-"+kind)
		args := []string{"build", "-o", cliPath}
		if kind == "bao" {
			// The release's version string, which its build sets the same way.
			args = append(args, "-ldflags", "-X github.com/openbao/openbao/version.fullVersion=2.4.0")
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir = dir
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("build the real %s CLI in %s: %v\n%s", kind, dir, err, out)
			return
		}
		fmt.Fprintf(os.Stderr, "built the real %s CLI in %s\n", kind, time.Since(start).Round(time.Second))
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// linkDir makes a directory holding name as a symbolic link to target.
func linkDir(t *testing.T, parent, sub, name, target string) string {
	dir := filepath.Join(parent, sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	return dir
}

var requestID = regexp.MustCompile(`("request_id": "|request_id: )[0-9a-f-]+`)

// sameRequestID replaces the request ids in a JSON or YAML answer, which
// differ from one server request to the next.
func sameRequestID(s string) string { return requestID.ReplaceAllString(s, `${1}ID`) }

// shimMatchesCLI runs kind's shim (opx linked as kind, first in PATH, the
// real CLI after it) and the real CLI alone on the same command lines and
// compares stdout, stderr and the exit status: values, JSON answers,
// missing secrets and fields, bad paths, flags the shim does not serve.
func (s suite) shimMatchesCLI(t *testing.T) {
	e := s.withToken(t, "multi")
	cli := RealCLI(t, s.kind)
	realDir := linkDir(t, e.Dir, "real", s.kind, cli)
	shimDir := linkDir(t, e.Dir, "shims", s.kind, harness.Bins().Opx)
	e.Write("kv2/data/app", map[string]any{"data": map[string]any{"password": "first"}})
	e.Write("kv2/data/app", map[string]any{"data": map[string]any{
		"password": "s3cr3t <&> pass", "user": "admin", "port": 5432, "ratio": 1.50,
		"nested": map[string]any{"b": []any{1, "two", true, nil}, "a": "x"},
		"esc":    "\x1b[31mred\x1b[0m and \x1bZ", "data": "a field named data", "empty": "",
	}})
	e.Write("kv1/legacy", map[string]any{"password": "legacy pass", "data": map[string]any{"k": "v"}, "lease_id": "a field"})
	e.Write("kv1/plain", map[string]any{"password": "plain"})
	// The lines the shim serves: the rest go to the real CLI.
	served := 0
	type line []string
	lines := []line{
		{"kv", "get", "-field=password", "kv2/app"},
		{"kv", "get", "-field", "user", "kv2/app"},
		{"kv", "get", "--field=port", "kv2/app"},
		{"kv", "get", "-field=ratio", "kv2/app"},
		{"kv", "get", "-field=nested", "kv2/app"},
		{"kv", "get", "-field=esc", "kv2/app"},
		{"kv", "get", "-field=empty", "kv2/app"},
		{"kv", "get", "-field=data", "kv2/app"},
		{"kv", "get", "-format=json", "-field=nested", "kv2/app"},
		{"kv", "get", "-format=json", "-field=password", "kv2/app"},
		{"kv", "get", "-format=json", "kv2/app"},
		{"kv", "get", "-format", "json", "/kv2/app"},
		{"kv", "get", "-mount=kv2", "-field=password", "app"},
		{"kv", "get", "-mount=kv2", "-format=json", "app"},
		{"kv", "get", "-version=1", "-field=password", "kv2/app"},
		{"kv", "get", "-version=1", "-format=json", "kv2/app"},
		{"kv", "get", "-field=password", "kv1/legacy"},
		{"kv", "get", "-field=data", "kv1/legacy"},
		{"kv", "get", "-field=lease_id", "kv1/legacy"},
		{"kv", "get", "-format=json", "kv1/legacy"},
		{"kv", "get", "-mount=kv1", "-field=password", "plain"},
		{"read", "-field=password", "kv1/plain"},
		{"read", "-format=json", "kv1/legacy"},
		{"read", "-format=json", "kv2/data/app"},
		{"read", "-field=data", "kv2/data/app"},
		{"read", "-field=metadata", "kv2/data/app"},
		{"read", "-format=json", "/kv2/data/app/"},
		nil,
		// Errors: the real CLI's words, whoever answers.
		{"kv", "get", "-field=nope", "kv2/app"},
		{"kv", "get", "-field=password", "kv2/missing"},
		{"kv", "get", "-format=json", "kv2/missing"},
		{"read", "-field=password", "kv1/missing"},
		{"kv", "get", "-field=password", "kv2/../sys/health"},
		{"kv", "get", "-field=password", "kv2/data/app"},
		{"kv", "get", "-field=password", "-bogus", "kv2/app"},
		{"kv", "get", "-field=password", "kv2/app", "extra"},
		{"kv", "get", "-field=password"},
		{"kv", "get", "-version=9", "-field=password", "kv2/app"},
		{"kv", "get", "kv2/app"},
		{"kv", "get", "-format=yaml", "kv2/app"},
		{"kv", "list", "kv2/"},
		{"read", "-format=json", "kv2/app"},
		{"version"},
	}
	shim := filepath.Join(shimDir, s.kind)
	path := []string{"PATH=" + shimDir + ":" + realDir + ":" + os.Getenv("PATH")}
	for i, l := range lines {
		if l == nil {
			served = i
			continue
		}
		want := e.Run(cli, nil, l...)
		got := e.Run(shim, path, l...)
		want.Stdout, got.Stdout = sameRequestID(want.Stdout), sameRequestID(got.Stdout)
		if got != want {
			t.Errorf("%s %s:\nthe shim: exit %d, stdout %q, stderr %q\nthe CLI:  exit %d, stdout %q, stderr %q",
				s.kind, strings.Join(l, " "), got.Code, got.Stdout, got.Stderr, want.Code, want.Stdout, want.Stderr)
		}
	}
	// On a terminal the CLI adds a newline to -field values and, when it
	// colours, the reset escapes around them.
	for _, env := range [][]string{nil, {s.envName("CLI_NO_COLOR") + "=1"}, {"NO_COLOR=1"}, {"TERM=dumb"}} {
		for _, l := range []line{
			{"kv", "get", "-field=password", "kv2/app"},
			{"kv", "get", "-field=esc", "kv2/app"},
			{"kv", "get", "-format=json", "-field=nested", "kv2/app"},
			{"kv", "get", "-format=json", "kv2/app"},
			{"read", "-field=password", "kv1/plain"},
		} {
			want := e.RunTTY(cli, env, l...)
			got := e.RunTTY(shim, append(path, env...), l...)
			if env == nil && l[2] == "-field=password" && want.Stdout != "\x1b[0ms3cr3t <&> pass\x1b[0m\n" {
				t.Errorf("the CLI on a terminal printed %q: not what a terminal gets", want.Stdout)
			}
			want.Stdout, got.Stdout = sameRequestID(want.Stdout), sameRequestID(got.Stdout)
			if got != want {
				t.Errorf("on a terminal, %s %s %s:\nthe shim: exit %d, stdout %q, stderr %q\nthe CLI:  exit %d, stdout %q, stderr %q",
					env, s.kind, strings.Join(l, " "), got.Code, got.Stdout, got.Stderr, want.Code, want.Stdout, want.Stderr)
			}
		}
	}
	// The served lines again: opx answers from its cache, the server sees
	// no request (the real CLI makes at least one per line).
	from := e.auditSize()
	for _, l := range lines[:served] {
		if r := e.Run(shim, path, l...); r.Code != 0 {
			t.Errorf("%s %s again: %+v", s.kind, strings.Join(l, " "), r)
		}
	}
	if n, _ := e.requestsAfter(from); n != 0 {
		t.Errorf("%d lines served again made %d server requests, want 0", served, n)
	}
	// A pass-through line reaches the server (the real CLI ran).
	e.Run(shim, path, "kv", "get", "-format=yaml", "kv2/app")
	if n, _ := e.requestsAfter(from); n == 0 {
		t.Error("vault kv get -format=yaml through the shim made no server request: the real CLI did not run")
	}
	// Served by opx: ten more reads of what the shim read make no request.
	before := e.ReadsOf("kv2/data/app")
	for range 10 {
		if r := e.Run(filepath.Join(shimDir, s.kind), []string{"PATH=" + shimDir + ":" + realDir}, "kv", "get", "-field=password", "kv2/app"); r.Stdout != "s3cr3t <&> pass" || r.Code != 0 {
			t.Fatalf("kv get through the shim = %+v", r)
		}
	}
	if n := e.ReadsOf("kv2/data/app") - before; n != 0 {
		t.Errorf("10 cached kv gets through the shim made %d server reads, want 0", n)
	}
}

// shimChoosesWhoAnswers: the shim answers only for the server and
// namespace its environment names, never around opx's own refusals (a
// policy, a lock), and with no real CLI on PATH it neither loops nor
// hides what failed.
func (s suite) shimChoosesWhoAnswers(t *testing.T) {
	e := s.withToken(t, "multi")
	cli := RealCLI(t, s.kind)
	realDir := linkDir(t, e.Dir, "real", s.kind, cli)
	shimDir := linkDir(t, e.Dir, "shims", s.kind, harness.Bins().Opx)
	shim := filepath.Join(shimDir, s.kind)
	path := "PATH=" + shimDir + ":" + realDir + ":" + os.Getenv("PATH")
	e.Write("kv2/data/app", map[string]any{"data": map[string]any{"password": "pw"}})
	get := []string{"kv", "get", "-field=password", "kv2/app"}
	if r := e.Run(shim, []string{path}, get...); r.Stdout != "pw" || r.Code != 0 {
		t.Fatalf("kv get through the shim = %+v", r)
	}
	// Served from the cache: no request...
	from := e.auditSize()
	e.Run(shim, []string{path}, get...)
	if n, _ := e.requestsAfter(from); n != 0 {
		t.Fatalf("a cached kv get made %d requests", n)
	}
	// ...unless the environment names another server or namespace: then
	// the real CLI answers, from the server it names.
	for _, other := range [][]string{
		{s.envName("ADDR") + "=" + strings.Replace(e.Srv.Addr(), "127.0.0.1", "localhost", 1)},
		{s.envName("NAMESPACE") + "=team"},
		{s.envName("AGENT_ADDR") + "=" + e.Srv.Addr()},
	} {
		want := e.Run(cli, other, get...)
		from := e.auditSize()
		got := e.Run(shim, append([]string{path}, other...), get...)
		if got != want {
			t.Errorf("with %s: the shim %+v, the CLI %+v", other, got, want)
		}
		if n, _ := e.requestsAfter(from); n == 0 && want.Code == 0 {
			t.Errorf("with %s the shim answered from the daemon's server", other)
		}
	}
	wrong := []string{s.envName("ADDR") + "=http://127.0.0.1:1"}
	if got, want := e.Run(shim, append([]string{path}, wrong...), get...), e.Run(cli, wrong, get...); got != want || got.Code == 0 {
		t.Errorf("with a server that is down: the shim %+v, the CLI %+v", got, want)
	}
	// A policy that denies the program: the shim says so, and the real
	// CLI does not run around it.
	policy := filepath.Join(e.ConfigDir, "policy.json")
	os.MkdirAll(filepath.Dir(policy), 0o700)
	if err := os.WriteFile(policy, []byte(`{"allow": [{"path": "/nonexistent/tool", "refs": ["*"]}], "default_deny": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(2 * time.Second) // seen as a change even on a coarse clock
	os.Chtimes(policy, future, future)
	from = e.auditSize()
	if r := e.Run(shim, []string{path}, get...); r.Code != 2 || r.Stdout != "" || !strings.Contains(r.Stderr, "may not read") {
		t.Errorf("kv get through the shim by a program the policy denies = %+v", r)
	}
	if n, _ := e.requestsAfter(from); n != 0 {
		t.Errorf("a kv get the policy denies made %d requests", n)
	}
	os.WriteFile(policy, []byte(`{"default_deny": false}`), 0o600)
	future = future.Add(2 * time.Second)
	os.Chtimes(policy, future, future)
	if r := e.Run(shim, []string{path}, get...); r.Stdout != "pw" {
		t.Errorf("kv get once the policy allows it = %+v", r)
	}
	// opx lock stops the shim too: the real CLI does not run around it.
	e.MustOpx("lock")
	from = e.auditSize()
	if r := e.Run(shim, []string{path}, get...); r.Code != 2 || r.Stdout != "" || !strings.Contains(r.Stderr, "locked") {
		t.Errorf("kv get through the shim while opx is locked = %+v", r)
	}
	if n, _ := e.requestsAfter(from); n != 0 {
		t.Errorf("kv get while opx is locked made %d requests", n)
	}
	e.MustOpx("unlock")
	// With only the shim on PATH: what opx serves works, errors are said,
	// the rest is "command not found" (no loop).
	only := []string{"PATH=" + shimDir}
	if r := e.Run(shim, only, get...); r.Stdout != "pw" || r.Code != 0 {
		t.Errorf("kv get with only the shim = %+v", r)
	}
	if r := e.Run(shim, only, "kv", "get", "-field=password", "kv2/nothing"); r.Code != 2 || !strings.Contains(r.Stderr, "Error reading kv2/nothing") || !strings.Contains(r.Stderr, "no secret") {
		t.Errorf("a missing secret with only the shim = %+v", r)
	}
	if r := e.Run(shim, only, "kv", "list", "kv2/"); r.Code != 127 || !strings.Contains(r.Stderr, s.kind+": command not found") {
		t.Errorf("kv list with only the shim = %+v", r)
	}
	// A write through the shim runs the real CLI (its output, its status),
	// then opx drops what it cached: the next read sees the new value.
	if r := e.Run(shim, []string{path}, get...); r.Stdout != "pw" {
		t.Fatalf("kv get before the write = %+v", r)
	}
	if r := e.Run(shim, []string{path}, "kv", "put", "kv2/app", "password=new pw"); r.Code != 0 || !strings.Contains(r.Stdout, "version") {
		t.Errorf("kv put through the shim = %+v", r)
	}
	if r := e.Run(shim, []string{path}, get...); r.Stdout != "new pw" {
		t.Errorf("kv get after a kv put through the shim = %+v, want the new value", r)
	}
	if r := e.Run(shim, []string{path}, "kv", "put", "kv2/nope/../x", "a=b"); r.Code != e.Run(cli, nil, "kv", "put", "kv2/nope/../x", "a=b").Code {
		t.Errorf("a failing write through the shim exits %d, not as the CLI", r.Code)
	}
}

// shimNamespace: with the namespace the daemon reads from, the shim
// serves a read in it, as the real CLI reads it.
func (s suite) shimNamespace(t *testing.T) {
	e := s.env(t)
	if _, err := e.Root.Logical().Write("sys/namespaces/team", nil); err != nil {
		// Vault's open-source server has no namespaces.
		t.Skipf("%s has no namespaces: %v", s.kind, err)
	}
	team, err := e.Root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	team.SetToken(e.Srv.RootToken())
	team.SetNamespace("team")
	if _, err := team.Logical().Write("sys/mounts/kv2", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := team.Logical().Write("kv2/data/app", map[string]any{"data": map[string]any{"password": "team pw"}}); err != nil {
		t.Fatal(err)
	}
	e.Vars[s.envName("ADDR")] = e.Srv.Addr()
	e.Vars[s.envName("TOKEN")] = e.Srv.RootToken()
	e.Vars[s.envName("NAMESPACE")] = "team"
	e.StartDaemon("", "--backend=multi")
	cli := RealCLI(t, s.kind)
	realDir := linkDir(t, e.Dir, "real", s.kind, cli)
	shimDir := linkDir(t, e.Dir, "shims", s.kind, harness.Bins().Opx)
	path := []string{"PATH=" + shimDir + ":" + realDir}
	for _, l := range [][]string{{"kv", "get", "-field=password", "kv2/app"}, {"kv", "get", "-format=json", "kv2/app"}} {
		want := e.Run(cli, nil, l...)
		got := e.Run(filepath.Join(shimDir, s.kind), path, l...)
		want.Stdout, got.Stdout = sameRequestID(want.Stdout), sameRequestID(got.Stdout)
		if got != want || got.Code != 0 {
			t.Errorf("%s in namespace team: the shim %+v, the CLI %+v", strings.Join(l, " "), got, want)
		}
	}
	from := e.auditSize()
	e.Run(filepath.Join(shimDir, s.kind), path, "kv", "get", "-field=password", "kv2/app")
	if n, _ := e.requestsAfter(from); n != 0 {
		t.Errorf("a cached kv get in namespace team made %d requests", n)
	}
}

// serverChange: after `opx login` names another server, the values read
// from the old one are no longer served (they were cached by ref alone).
func (s suite) serverChange(t *testing.T) {
	e := s.env(t)
	e.Mount("kv1", 1)
	e.Write("kv1/app", map[string]any{"k": "from the first server"})
	second := s.newServer(t)
	root2, err := vapi.NewClient(&vapi.Config{Address: second.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	root2.SetToken(second.RootToken())
	if err := root2.Sys().Mount("kv1", &vapi.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := root2.Logical().Write("kv1/app", map[string]any{"k": "from the second server"}); err != nil {
		t.Fatal(err)
	}
	e.StartDaemon("", "--backend=multi")
	for _, srv := range []Server{e.Srv, second} {
		if r := e.OpxIn(srv.RootToken()+"\n", "login", s.kind, "--address", srv.Addr()); r.Code != 0 {
			t.Fatalf("login to %s: %+v", srv.Addr(), r)
		}
		want := "from the first server\n"
		if srv == second {
			want = "from the second server\n"
		}
		if out := e.MustOpx("read", s.ref("kv1/app#k")); out != want {
			t.Errorf("read after login to %s = %q, want %q", srv.Addr(), out, want)
		}
	}
}
