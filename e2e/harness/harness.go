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
	"slices"
	"sync"
	"testing"
)

// Programs are the binaries the tests run, built by Main.
type Programs struct {
	Opx    string // opx as the Makefile builds it: the client, and the shims' link target
	Daemon string // the opx that runs daemons: race-built (race/opx) when the test binary is, else Opx; opx-authd links to it
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

// build compiles opx and the fake op into dir. When this test binary is
// race-built, a second opx is too (race/opx), and runs the daemons: races
// in the daemon, where requests meet, fail the tests. The clients stay
// plain builds, as the Makefile makes them: a race-built process takes
// about four times as long to start, and the suite starts about a thousand
// clients. The client's own concurrency is raced in its package's tests.
func build(dir string) (Programs, error) {
	root, err := RepoRoot()
	if err != nil {
		return Programs{}, err
	}
	p := Programs{Opx: filepath.Join(dir, "opx"), Daemon: filepath.Join(dir, "opx"), FakeOp: filepath.Join(dir, "op"), Dir: dir, Root: root}
	builds := [][]string{
		{"build", "-trimpath", "-o", p.Opx, "."},
		{"build", "-o", p.FakeOp, "./testdata/fakeop"},
	}
	if RaceEnabled {
		// Named opx too, as links and messages name it.
		p.Daemon = filepath.Join(dir, "race", "opx")
		builds = append(builds, []string{"build", "-race", "-o", p.Daemon, "."})
	}
	errs := make([]error, len(builds))
	var wg sync.WaitGroup
	for i, args := range builds {
		wg.Go(func() { errs[i] = goBuild(root, !slices.Contains(args, "-race"), args...) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Programs{}, err
	}
	if err := os.Symlink(p.Daemon, filepath.Join(dir, "opx-authd")); err != nil {
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
