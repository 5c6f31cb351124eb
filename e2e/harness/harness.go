// Package harness runs the real opx binary as a user would, for opx's
// end-to-end tests (package e2e) and for the real-server suite
// (integration/suite): it builds opx and the fake op once per test binary,
// gives each test its own HOME, XDG tree and socket (so tests run in
// parallel), starts and stops daemons, and reads what they leave behind.
//
// A test binary that uses it calls Main from its TestMain.
package harness

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Programs are the binaries the tests run, built by Main.
type Programs struct {
	Opx    string // opx, race-built when the test binary is; opx-authd links to it
	FakeOp string // testdata/fakeop, the stand-in for the 1Password CLI
	Dir    string // the directory holding them, removed when Main returns
	Root   string // the repository (the directory of opx's go.mod)
}

// built is set once by Main, before any test runs, and only read after.
var built Programs

// Bins returns the programs Main built.
func Bins() Programs {
	if built.Opx == "" {
		panic("harness: Bins called without harness.Main in TestMain")
	}
	return built
}

// Main is a test binary's TestMain: it builds the programs into a temporary
// directory, raises go test's default -parallel (see defaultParallel), runs
// the tests and removes the directory.
func Main(m *testing.M) {
	flag.Parse()
	setDefaultParallel()
	dir, err := os.MkdirTemp("", "opx-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if built, err = build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// defaultParallel is how many tests run at once unless -parallel says
// otherwise: go test's default is GOMAXPROCS, but an end-to-end test spends
// most of its time waiting on processes it started (a daemon's start, an
// idle timeout), so four per CPU keep the CPUs busy without starving the
// daemons whose answers the tests wait for.
func defaultParallel() int { return 4 * runtime.GOMAXPROCS(0) }

func setDefaultParallel() {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set && flag.Lookup("test.parallel") != nil {
		flag.Set("test.parallel", fmt.Sprint(defaultParallel()))
	}
}

// build compiles opx (race-built when this test binary is, so that the
// daemon's races fail the tests; otherwise with CGO_ENABLED=0, as the
// Makefile builds it) and the fake op into dir.
func build(dir string) (Programs, error) {
	root, err := RepoRoot()
	if err != nil {
		return Programs{}, err
	}
	p := Programs{Opx: filepath.Join(dir, "opx"), FakeOp: filepath.Join(dir, "op"), Dir: dir, Root: root}
	args := []string{"build", "-o", p.Opx}
	if RaceEnabled {
		args = append(args, "-race")
	}
	if err := goBuild(root, !RaceEnabled, append(args, ".")...); err != nil {
		return Programs{}, err
	}
	if err := goBuild(root, true, "build", "-o", p.FakeOp, "./testdata/fakeop"); err != nil {
		return Programs{}, err
	}
	if err := os.Symlink("opx", filepath.Join(dir, "opx-authd")); err != nil {
		return Programs{}, err
	}
	return p, nil
}

func goBuild(root string, noCgo bool, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if noCgo {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %v\n%s", args, err, out)
	}
	return nil
}

// RepoRoot returns opx's repository: the nearest directory at or above the
// working directory whose go.mod declares module github.com/opxhq/opx (a
// test runs in its package's directory, in this module or in one of the
// server modules under integration/).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/opxhq/opx\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: no go.mod of module github.com/opxhq/opx above the working directory")
		}
		dir = parent
	}
}

var plain struct {
	once sync.Once
	path string
	err  error
}

// PlainOpx returns opx built as the Makefile builds it (-trimpath, no race
// detector, whose shadow memory is terabytes of mappings to scan and whose
// start-up allocations are not opx's), built once per test binary.
func PlainOpx(t testing.TB) string {
	t.Helper()
	b := Bins()
	if !RaceEnabled {
		return b.Opx
	}
	plain.once.Do(func() {
		plain.path = filepath.Join(b.Dir, "opx-plain")
		plain.err = goBuild(b.Root, true, "build", "-trimpath", "-o", plain.path, ".")
	})
	if plain.err != nil {
		t.Fatal(plain.err)
	}
	return plain.path
}

var tools struct {
	mu    sync.Mutex
	built map[string]string // package → binary
}

// Tool returns the main package pkg of the repository (./testdata/peerhelper)
// built without cgo, as the Makefile builds, once per test binary: a test
// that must change or move the program copies it first.
func Tool(t testing.TB, pkg string) string {
	t.Helper()
	tools.mu.Lock()
	defer tools.mu.Unlock()
	if p, ok := tools.built[pkg]; ok {
		return p
	}
	b := Bins()
	out := filepath.Join(b.Dir, "tool-"+filepath.Base(pkg))
	if err := goBuild(b.Root, true, "build", "-o", out, pkg); err != nil {
		t.Fatal(err)
	}
	if tools.built == nil {
		tools.built = map[string]string{}
	}
	tools.built[pkg] = out
	return out
}
