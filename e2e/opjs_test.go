//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// opJSVersion is the @1password/op-js release the test drives: a real
// client nobody here wrote, which runs `op read`, `op inject` and `op
// --version` through spawnSync and takes any stderr output for a failure.
const opJSVersion = "0.1.13"

// opJS installs @1password/op-js from npm once per machine (kept in the
// temporary directory), or skips the test saying why it cannot.
func opJS(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (Debian packages nodejs and npm; .ci/run installs them)")
	}
	dir := filepath.Join(os.TempDir(), "opx-op-js-"+opJSVersion)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@1password", "op-js", "package.json")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("npm is not installed (Debian package npm)")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		os.MkdirAll(dir, 0o755)
		cmd := exec.CommandContext(ctx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund", "--silent", "@1password/op-js@"+opJSVersion)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("npm could not install @1password/op-js %s (no registry?): %v\n%s", opJSVersion, err, out)
		}
	}
	_ = node
	return dir
}

// opJSScript calls op-js the way its users do and prints what it got.
const opJSScript = `
const op = require("@1password/op-js");
(async () => {
  await op.validateCli();
  const out = { version: op.version() };
  out.read = op.read.parse("op://Private/db/password");
  out.reads = [];
  for (let i = 0; i < 20; i++) out.reads.push(op.read.parse("op://Private/db/username"));
  out.inject = op.inject.data("db: {{ op://Private/db/password }}\nuser: {{ op://Private/db/username }}\n");
  const item = op.item.get("db");
  out.item = { title: item.title, vault: item.vault.name, fields: item.fields.length };
  try { op.read.parse("op://Private/no such item/password"); } catch (e) { out.error = e.message; }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e && e.message)); process.exit(1); });
`

type opJSResult struct {
	Version string   `json:"version"`
	Read    string   `json:"read"`
	Reads   []string `json:"reads"`
	Inject  string   `json:"inject"`
	Item    struct {
		Title, Vault string
		Fields       int
	} `json:"item"`
	Error string `json:"error"`
}

// runOPJS runs the script with PATH as given.
func (e *testEnv) runOPJS(dir, path string) opJSResult {
	e.T.Helper()
	script := filepath.Join(e.Dir, "opjs.js")
	os.WriteFile(script, []byte(opJSScript), 0o600)
	cmd := exec.Command("node", script)
	cmd.Env = append(e.Environ(), "PATH="+path, "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		e.T.Fatalf("node: %v\n%s\n%s", err, out, stderr)
	}
	var r opJSResult
	if err := json.Unmarshal(out, &r); err != nil {
		e.T.Fatalf("op-js script output: %v\n%s", err, out)
	}
	return r
}

// op-js through the shim gets what it gets from op itself, and 20 reads of
// one ref make one op process; without the shim, every call is an op
// process.
func TestOPJSThroughTheShim(t *testing.T) {
	t.Parallel()
	dir := opJS(t)
	e, shims := shimEnv(t)
	e.StartDaemon("")
	realOP := filepath.Join(e.Dir, "realop")
	rest := "/usr/local/bin:/usr/bin:/bin"
	if p, err := exec.LookPath("node"); err == nil {
		rest = filepath.Dir(p) + ":" + rest
	}
	withShim := e.runOPJS(dir, shims+":"+realOP+":"+rest)
	shimCalls := e.OpCalls()
	os.Remove(e.Vars["FAKEOP_LOG"])
	direct := e.runOPJS(dir, realOP+":"+rest)
	directCalls := e.OpCalls()

	if withShim.Read != "s3cr3t-db-pass" || withShim.Inject != "db: s3cr3t-db-pass\nuser: app" || withShim.Item.Title != "db" ||
		withShim.Version != "2.31.1" || len(withShim.Reads) != 20 || withShim.Reads[19] != "app" {
		t.Errorf("op-js through the shim = %+v", withShim)
	}
	if withShim.Error == "" || withShim.Error != direct.Error {
		t.Errorf("op-js error through the shim %q, from op %q", withShim.Error, direct.Error)
	}
	withShim.Error, direct.Error = "", ""
	if !slices.Equal(withShim.Reads, direct.Reads) || withShim.Read != direct.Read || withShim.Inject != direct.Inject || withShim.Item != direct.Item || withShim.Version != direct.Version {
		t.Errorf("op-js through the shim = %+v\nop-js with op alone = %+v", withShim, direct)
	}
	count := func(calls [][]string, sub string) int {
		n := 0
		for _, c := range calls {
			if slices.Contains(c, sub) {
				n++
			}
		}
		return n
	}
	// Through the shim: one read per ref (the daemon's), the inject from
	// the cache, item get passed through; op alone: a process per call.
	if n := count(shimCalls, "read"); n != 3 {
		t.Errorf("op read processes through the shim: %d, want 3 (one per ref, the missing one's among them): %q", n, shimCalls)
	}
	if n := count(shimCalls, "item"); n != 1 {
		t.Errorf("op item get through the shim: %d processes, want 1 (passed through)", n)
	}
	if n := count(directCalls, "read"); n < 22 {
		t.Errorf("op read processes with op alone: %d, want 22", n)
	}
}
