package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/integration/harness"
)

var (
	plainOnce sync.Once
	plainBin  string
	plainErr  error
)

// plainOpx is opx built as the Makefile builds it (no race detector, whose
// shadow memory is terabytes of mappings to scan).
func plainOpx(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return opxBin
	}
	plainOnce.Do(func() {
		plainBin = filepath.Join(filepath.Dir(opxBin), "opx-plain")
		cmd := exec.Command("go", "build", "-trimpath", "-o", plainBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			plainErr = fmt.Errorf("build opx: %v\n%s", err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return plainBin
}

// TestSecretsLeaveTheDaemonsMemory reads 20 secrets through every endpoint
// (/v1/read, /v1/reads, /v1/resolve), locks the session, and then searches
// the daemon's writable memory for the values: none may be left.
func TestSecretsLeaveTheDaemonsMemory(t *testing.T) {
	for _, kind := range []string{"fake", "opcli"} {
		t.Run(kind, func(t *testing.T) {
			var e *testEnv
			refs := make([]string, 20)
			values := make([][]byte, 20)
			switch kind {
			case "fake":
				e = newEnv(t)
				for i := range refs {
					refs[i] = fmt.Sprintf("op://Mem/item%d/password", i)
					values[i] = []byte(backend.FakeValue("", refs[i]))
				}
			case "opcli":
				e = newOPEnv(t)
				e.signIn("my")
				fields := map[string]string{}
				for i := range refs {
					refs[i] = fmt.Sprintf("op://Infra/mem/f%d", i)
					b := make([]byte, 12)
					rand.Read(b)
					values[i] = []byte("opxmem-" + hex.EncodeToString(b))
					fields[fmt.Sprintf("f%d", i)] = string(values[i])
				}
				writeFixture(t, e, fields)
			}
			cmd := e.startDaemon(plainOpx(t), "daemon", "--backend="+kind)
			// Half in one batch (one op inject), half one by one (op read).
			want := ""
			for _, v := range values[:10] {
				want += string(v) + "\n"
			}
			if out := e.mustOpx(append([]string{"read"}, refs[:10]...)...); out != want {
				t.Fatalf("batch read = %q", out)
			}
			for i, ref := range refs[10:] {
				if out := e.mustOpx("read", ref); out != string(values[10+i])+"\n" {
					t.Fatalf("read %s = %q", ref, out)
				}
			}
			e.mustOpx(append([]string{"read"}, refs...)...)
			var env []string
			for i, ref := range refs {
				env = append(env, fmt.Sprintf("V%d=%s", i, ref))
			}
			e.mustOpx(append([]string{"resolve"}, env...)...)
			e.mustOpx("lock")

			harness.AssertNoSecrets(t, cmd.Process.Pid, values)
		})
	}
}

// writeFixture points the fake op at the repository's fixture plus an item
// "Infra/mem" with the given fields.
func writeFixture(t *testing.T, e *testEnv, fields map[string]string) {
	out, err := harness.FixtureWithItem("testdata/fakeop/fixture.json", "mem", fields)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.root, "fixture.json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars["FAKEOP_FIXTURE"] = path
}
