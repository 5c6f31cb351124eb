package client

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/opxhq/opx/internal/testdir"
	"github.com/opxhq/opx/winpipe"
)

// The autostarted daemon runs with no console window and in a process group
// of its own, so that the user's Ctrl-C never reaches it.
func TestDetachedHasNoWindowAndItsOwnGroup(t *testing.T) {
	a := detached()
	for _, f := range []uint32{windows.CREATE_NO_WINDOW, windows.CREATE_NEW_PROCESS_GROUP} {
		if a.CreationFlags&f == 0 {
			t.Errorf("detached().CreationFlags = %#x, want flag %#x set", a.CreationFlags, f)
		}
	}
	if a.NoInheritHandles {
		t.Errorf("detached().NoInheritHandles = true: the daemon would lose its log file")
	}
}

// dialTimeout dials nameFile within a few seconds.
func dialTimeout(t *testing.T, nameFile string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, nameFile)
	if err == nil {
		c.Close()
	}
	return err
}

// No name file, an empty one, or a name whose pipe is gone all mean no
// daemon (autostart starts one); a file holding anything else is an error.
func TestDialNoDaemon(t *testing.T) {
	dir := testdir.New(t)
	tests := []struct {
		name    string
		content *string
		absent  bool
	}{
		{"no name file", nil, true},
		{"empty", ptr(""), true},
		{"a stopped daemon's name", ptr(winpipe.NewName() + "\r\n"), true},
		{"not an opx pipe", ptr(`someone-elses-pipe`), false},
		{"a path", ptr(`\\.\pipe\` + winpipe.NewName()), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, tt.name)
			if tt.content != nil {
				if err := os.WriteFile(file, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := dialTimeout(t, file)
			if err == nil || daemonAbsent(err) != tt.absent {
				t.Errorf("dial(%s) = %v; daemonAbsent = %v, want %v", tt.name, err, err != nil && daemonAbsent(err), tt.absent)
			}
		})
	}
}

// The client reads the name the daemon wrote (with its line end) and
// connects to that pipe; when the daemon closes the pipe under it, the
// error is EOF or a reset, which the client reports as a closed
// connection.
func TestDialReadsThePipeName(t *testing.T) {
	name := winpipe.NewName()
	l, err := winpipe.Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	file := filepath.Join(testdir.New(t), "pipe")
	if err := os.WriteFile(file, []byte(name+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan error, 1)
	go func() {
		s, err := l.Accept()
		if err == nil {
			s.Close() // as a daemon over its connection limit does
		}
		accepted <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, file)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("Accept: %v", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, io.EOF) && !connReset(err) {
		t.Errorf("Read of a pipe the daemon closed = %v, want EOF or a reset", err)
	}
	for range 2 { // the first write may land in the pipe's buffer
		if _, err = c.Write([]byte("x")); err != nil {
			break
		}
	}
	if !errors.Is(err, io.EOF) && !connReset(err) {
		t.Errorf("Write to a pipe the daemon closed = %v, want EOF or a reset", err)
	}
}

func ptr(s string) *string { return &s }
