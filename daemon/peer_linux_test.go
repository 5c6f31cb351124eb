package daemon

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opxhq/opx/policy"
)

// kernelAtLeast reports whether the running kernel is at least major.minor.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(unix.ByteSliceToString(u.Release[:]), ".", 3)
	maj, _ := strconv.Atoi(parts[0])
	min := 0
	if len(parts) > 1 {
		min, _ = strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	}
	return maj > major || maj == major && min >= minor
}

func listenTemp(t *testing.T) (*net.UnixListener, string) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ln.SetDeadline(time.Now().Add(time.Minute)) // a child that never connects fails the test, not the run
	return ln, sock
}

func TestIdentifyPinsThePeer(t *testing.T) {
	ln, sock := listenTemp(t)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()

	p, pin, err := peerCred(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer pin.release()
	if want := kernelAtLeast(t, 6, 5); pin.exact() != want {
		t.Errorf("pidfd pin = %v on this kernel, want %v (SO_PEERPIDFD is in Linux 6.5+)", pin.exact(), want)
	}
	if !pin.alive() {
		t.Error("this process is pinned as not running")
	}

	exe, _ := os.Executable()
	got := peerListener{}.identify(sc, policy.Now())
	if got.Err != nil || got.PID != os.Getpid() || got.Path != exe || got.Requester.PID != os.Getpid() {
		t.Errorf("identify = %+v, want this process (%d, %s)", got, os.Getpid(), exe)
	}
	if p.UID != os.Getuid() {
		t.Errorf("uid %d, want %d", p.UID, os.Getuid())
	}
}

// TestIdentifyRequesterIsTheParent runs this test binary as the "opx
// client": its requester must be the process that ran it, this one.
func TestIdentifyRequesterIsTheParent(t *testing.T) {
	if sock := os.Getenv("OPX_TEST_CONNECT"); sock != "" {
		c, err := net.Dial("unix", sock)
		if err != nil {
			os.Exit(2)
		}
		var b [1]byte
		c.Read(b[:]) // hold the connection until the test has identified us
		os.Exit(0)
	}
	ln, sock := listenTemp(t)
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^TestIdentifyRequesterIsTheParent$")
	cmd.Env = append(os.Environ(), "OPX_TEST_CONNECT="+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	sc, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	p := peerListener{self: exe}.identify(sc, policy.Now())
	if p.Err != nil || p.PID != cmd.Process.Pid || p.Requester.PID != os.Getpid() || p.Requester.Path != exe {
		t.Errorf("identify = %+v, want peer %d with requester %d", p, cmd.Process.Pid, os.Getpid())
	}
}

// A client that connects and is gone before the daemon looks at it is
// refused with a clear reason, not attributed to whatever has its pid now.
func TestIdentifyRefusesAPeerThatExited(t *testing.T) {
	if sock := os.Getenv("OPX_TEST_CONNECT_EXIT"); sock != "" {
		if _, err := net.Dial("unix", sock); err != nil {
			os.Exit(2)
		}
		os.Exit(0)
	}
	ln, sock := listenTemp(t)
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^TestIdentifyRefusesAPeerThatExited$")
	cmd.Env = append(os.Environ(), "OPX_TEST_CONNECT_EXIT="+sock)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	sc, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	p := peerListener{self: exe}.identify(sc, policy.Now())
	if p.Err == nil {
		t.Fatalf("a peer that exited was identified as %+v", p)
	}
	want := "process " + strconv.Itoa(cmd.Process.Pid) + " "
	if !strings.Contains(p.Err.Error(), want) {
		t.Errorf("error %q does not name pid %d", p.Err, cmd.Process.Pid)
	}
	if kernelAtLeast(t, 6, 5) && !strings.Contains(p.Err.Error(), "exited before it could be identified") {
		t.Errorf("with a pidfd the error should say the peer exited: %q", p.Err)
	}
}

// Identification runs in a goroutine per connection: a connection whose
// identification is stuck does not hold up the next one (in the accept loop,
// the next Accept would not even return).
func TestIdentificationDoesNotWaitForAnother(t *testing.T) {
	ln, sock := listenTemp(t)
	release := make(chan struct{})
	var n atomic.Int32
	pl := peerListener{Listener: ln, started: func(net.Conn) {
		if n.Add(1) == 1 {
			<-release // the first connection's identification is stuck
		}
	}}
	defer close(release)
	for range 2 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// Whichever identification starts first is stuck; the other must
	// finish meanwhile.
	got := make(chan *Peer, 2)
	go func() {
		for range 2 {
			c, err := pl.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			go func() { got <- c.(*peerConn).wait(context.Background()) }()
		}
	}()
	select {
	case p := <-got:
		if p.Err != nil || p.PID != os.Getpid() {
			t.Errorf("second connection identified as %+v, want this process", p)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the second connection was not identified while the first one's identification was stuck")
	}
}
