package backend

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// runChild is the test binary as the programs op stands for here: "tree"
// starts a "sleep" child, prints its pid and sleeps; "sleep" sleeps.
func runChild(mode string) {
	switch mode {
	case "tree":
		me, _ := os.Executable()
		c := exec.Command(me)
		c.Env = append(os.Environ(), childEnv+"=sleep")
		if err := c.Start(); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		fmt.Println(c.Process.Pid)
		time.Sleep(30 * time.Second)
	case "sleep":
		time.Sleep(30 * time.Second)
	}
	os.Exit(0)
}

// lineWriter tells of the first line written to it.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if line, _, ok := strings.Cut(w.buf.String(), "\n"); ok && w.lines != nil {
		w.lines <- strings.TrimSpace(line)
		w.lines = nil
	}
	return len(p), nil
}

// A cancelled op is killed with the processes it started: runTree's job
// object takes the whole tree, where killing op alone would leave its child
// running (and holding the output pipe).
func TestRunTreeKillsTheWholeTreeOnCancel(t *testing.T) {
	me, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, me)
	cmd.Env = append(os.Environ(), childEnv+"=tree")
	out := &lineWriter{lines: make(chan string, 1)}
	cmd.Stdout = out
	cmd.WaitDelay = 2 * time.Second
	lines := out.lines
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- runTree(cmd) }()

	var pid int
	select {
	case line := <-lines:
		if pid, err = strconv.Atoi(line); err != nil {
			t.Fatalf("the child printed %q, want its child's pid", line)
		}
	case err := <-done:
		t.Fatalf("runTree ended before the child printed: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the child printed nothing in 20s")
	}
	grandchild, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		t.Fatalf("open the child's child %d: %v", pid, err)
	}
	defer windows.CloseHandle(grandchild)

	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("runTree after cancel = nil, want an exit error")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runTree did not return within 20s of cancel")
	}
	if ev, err := windows.WaitForSingleObject(grandchild, 5000); ev != windows.WAIT_OBJECT_0 {
		t.Errorf("the child's child %d still runs 5s after cancel (%d, %v)", pid, ev, err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Logf("runTree took %s", d)
	}
}
