//go:build unix

package e2e

import (
	"path/filepath"
	"testing"

	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// testEnv is a harness.Env with this package's helpers.
type testEnv struct{ *harness.Env }

// newEnv is a fresh testEnv for t.
func newEnv(t *testing.T) *testEnv { return &testEnv{harness.New(t)} }

// newOPEnv is a testEnv whose daemon uses the opcli backend with the fake op.
func newOPEnv(t *testing.T) *testEnv {
	e := newEnv(t)
	e.UseFakeOp()
	return e
}

// fv is the fake backend's value for ref.
func fv(ref string) string { return backend.FakeValue("", ref) }

// repoFile is the path of rel, a path from the repository's root.
func repoFile(rel string) string { return filepath.Join(harness.Bins().Root, filepath.FromSlash(rel)) }
