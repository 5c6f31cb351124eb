//go:build linux

package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Wine is wine made ready to run opx's Windows build (.ci/wine.sh), with
// opx and testdata/peerhelper built for windows/amd64.
type Wine struct {
	Prefix     string // WINEPREFIX: $WINEPREFIX, or ~/.cache/opx-wine as make wintest uses
	Opx        string // opx.exe, in Bins().Dir
	PeerHelper string // testdata/peerhelper built for Windows, in Bins().Dir
}

var wine struct {
	once sync.Once
	w    *Wine
	skip string // why wine cannot run here, if it cannot
	err  error  // a build that failed
}

// NeedWine returns the prepared wine, preparing it and building the
// Windows programs once per test binary. It skips t, saying why, when wine
// cannot run here (.ci/wine.sh fails: no wine and no root to install it),
// and fails t when a Windows build fails.
func NeedWine(t *testing.T) *Wine {
	t.Helper()
	wine.once.Do(func() { wine.w, wine.skip, wine.err = prepareWine() })
	if wine.skip != "" {
		t.Skip(wine.skip)
	}
	if wine.err != nil {
		t.Fatal(wine.err)
	}
	return wine.w
}

func prepareWine() (*Wine, string, error) {
	b := Bins()
	prefix := os.Getenv("WINEPREFIX")
	if prefix == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, "", err
		}
		prefix = filepath.Join(home, ".cache", "opx-wine")
	}
	// wine.sh installs what is missing (as root), makes the prefix and
	// starts a persistent wineserver; after make wintest it has nothing
	// left to do and takes a fraction of a second.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(b.Root, ".ci", "wine.sh"))
	cmd.Env = append(os.Environ(), "WINEPREFIX="+prefix)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("wine cannot run here: .ci/wine.sh: %v\n%s", err, out), nil
	}
	w := &Wine{Prefix: prefix, Opx: filepath.Join(b.Dir, "opx.exe"), PeerHelper: filepath.Join(b.Dir, "peerhelper.exe")}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, args := range [][]string{
		{"build", "-trimpath", "-o", w.Opx, "."},
		{"build", "-trimpath", "-o", w.PeerHelper, "./testdata/peerhelper"},
	} {
		wg.Go(func() {
			cmd := exec.Command("go", args...)
			cmd.Dir = b.Root
			cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("GOOS=windows go %v: %v\n%s", args, err, out)
			}
		})
	}
	wg.Wait()
	return w, "", errors.Join(errs...)
}

// WinPath is the Windows path of the Linux path p as wine shows it: under
// the prefix's drive_c it is on C:, anywhere else on Z: (wine's view of /).
func (w *Wine) WinPath(p string) string {
	if rest, ok := strings.CutPrefix(p, filepath.Join(w.Prefix, "drive_c")+"/"); ok {
		return `C:\` + strings.ReplaceAll(rest, "/", `\`)
	}
	return "Z:" + strings.ReplaceAll(p, "/", `\`)
}

// WinEnv is one Windows user's world under wine: data and config
// directories of its own (through XDG_DATA_HOME and XDG_CONFIG_HOME, which
// opx honours on Windows as on Unix), so tests run in parallel.
//
// The directories are under the prefix's drive_c, not /tmp: wine shows
// /tmp (mode 1777) as writable by Everyone and knows no sticky bit, and the
// daemon rightly refuses a policy file under a directory others may write.
type WinEnv struct {
	T         *testing.T
	W         *Wine
	Dir       string            // the Linux path of the Env's root, removed when the test ends
	DataDir   string            // the Linux path of %XDG_DATA_HOME%\op-authd: the pipe's name file, token, logs
	ConfigDir string            // the Linux path of %XDG_CONFIG_HOME%\op-authd: config.json, policy.json
	Vars      map[string]string // the environment of every Windows program run in the Env
	Helper    string            // the program that runs opx.exe for the cleanup's stop (a policy may allow only some): W.PeerHelper unless set
	marker    string            // the XDG_DATA_HOME=... entry that tells this Env's wine processes
}

// WineAnswerWithin bounds one program run under wine: a start costs a
// tenth of a second with the persistent wineserver, a few seconds without.
const WineAnswerWithin = 60 * time.Second

// NewEnv makes a fresh WinEnv for t. When t ends it stops the Env's daemon
// (opx.exe stop, run by Helper), then
// kills whatever wine processes of the Env are left, logs the daemon's log
// if t failed, and removes the directory.
func (w *Wine) NewEnv(t *testing.T) *WinEnv {
	t.Helper()
	drive := filepath.Join(w.Prefix, "drive_c")
	root, err := os.MkdirTemp(drive, "opx-e2e")
	if err != nil {
		t.Fatal(err)
	}
	e := &WinEnv{T: t, W: w, Dir: root, Helper: w.PeerHelper,
		DataDir:   filepath.Join(root, "d", "op-authd"),
		ConfigDir: filepath.Join(root, "c", "op-authd"),
	}
	e.Vars = map[string]string{
		"WINEPREFIX":      w.Prefix,
		"WINEDEBUG":       "-all",
		"PATH":            os.Getenv("PATH"),
		"HOME":            os.Getenv("HOME"),
		"XDG_DATA_HOME":   w.WinPath(filepath.Join(root, "d")),
		"XDG_CONFIG_HOME": w.WinPath(filepath.Join(root, "c")),
		"OPX_BIN":         w.WinPath(w.Opx), // what PeerHelper runs
	}
	e.marker = "XDG_DATA_HOME=" + e.Vars["XDG_DATA_HOME"]
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(e.DataDir, "pipe")); err == nil {
			e.run(e.Helper, nil, "opx", "stop") // a hang or refusal is killed below
		}
		for i := 0; i < 100 && len(e.Procs()) > 0; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		for _, pid := range e.Procs() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(e.DataDir, "opx-authd.log")); err == nil {
				t.Logf("daemon log:\n%s", b)
			}
		}
		os.RemoveAll(root)
	})
	return e
}

// Run runs the Windows program prog (a Linux path, or a name wine finds,
// such as cmd) under wine with the Env's variables and extra ones, bounded
// by WineAnswerWithin, and returns what it printed and its exit code.
func (e *WinEnv) Run(prog string, extra []string, args ...string) Result {
	e.T.Helper()
	r, ok := e.run(prog, extra, args...)
	if !ok {
		e.T.Fatalf("wine %s %s did not answer within %s", prog, strings.Join(args, " "), WineAnswerWithin)
	}
	return r
}

// run is Run, reporting whether prog answered in time instead of failing.
func (e *WinEnv) run(prog string, extra []string, args ...string) (Result, bool) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WineAnswerWithin)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wine", append([]string{prog}, args...)...)
	for k, v := range e.Vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, extra...)
	// Files, not pipes: a daemon the program autostarts may inherit wine's
	// streams, and a pipe it holds would keep Run waiting.
	var files [2]*os.File
	for i := range files {
		f, err := os.CreateTemp("", "opx-wine-out")
		if err != nil {
			e.T.Fatal(err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		files[i] = f
	}
	cmd.Stdout, cmd.Stderr = files[0], files[1]
	err := cmd.Run()
	if ctx.Err() != nil {
		return Result{}, false
	}
	code := exitCode(e.T, err, prog, args)
	var out [2]string
	for i, f := range files {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			e.T.Fatal(err)
		}
		// Windows programs end lines with \r\n (cmd's echo); opx's Go code
		// writes \n. Compare as Linux does.
		out[i] = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	return Result{Stdout: out[0], Stderr: out[1], Code: code}, true
}

// Procs returns the Linux pids of the Env's live wine processes (the
// daemon, and the console host wine gives it): those with the Env's
// XDG_DATA_HOME in their environment.
func (e *WinEnv) Procs() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || !Alive(pid) {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == e.marker {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
