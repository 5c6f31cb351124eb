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

// identifyNow identifies and confirms sc's peer, as the daemon does for a
// connection and its first request.
func identifyNow(l *peerListener, sc *net.UnixConn) *Peer {
	p, pin, err := peerCred(sc)
	return l.confirm(l.identify(sc, p, pin, err, policy.Now()), -1)
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
	got := identifyNow(&peerListener{holds: newFDScans()}, sc)
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
	p := identifyNow(&peerListener{self: exe, holds: newFDScans()}, sc)
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
	p := identifyNow(&peerListener{self: exe, holds: newFDScans()}, sc)
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
	pl := newPeerListener(ln, nil)
	pl.started = func(net.Conn) {
		if n.Add(1) == 1 {
			<-release // the first connection's identification is stuck
		}
	}
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

// A process holding thousands of files is checked with one look-up when
// the client names its descriptor, and checks without one share listings
// instead of making one each (issue 21: N connections cost N² look-ups).
func TestHoldsCheckIsSharedAndHinted(t *testing.T) {
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
	ino, err := peerSocketInode(sc)
	if err != nil {
		t.Fatal(err)
	}
	var held []int
	for range 2000 {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Skipf("cannot open 4,000 files here: %v", err)
		}
		held = append(held, fds[0], fds[1])
	}
	defer func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	}()
	fd, _ := strconv.Atoi(fdOfTest(t, c))
	s := newFDScans()
	if err := s.check(os.Getpid(), ino, fd); err != nil || s.listings.Load() != 0 {
		t.Fatalf("check with the right descriptor = %v after %d listings; want nil after none", err, s.listings.Load())
	}
	if err := s.check(os.Getpid(), ino, held[0]); err != nil || s.listings.Load() != 1 {
		t.Errorf("check with a wrong descriptor = %v after %d listings; want nil after one", err, s.listings.Load())
	}
	if err := s.check(os.Getpid(), ino+1<<20, -1); err == nil {
		t.Error("a socket this process does not hold was found")
	}
	before := s.listings.Load()
	const checks = 64
	errs := make(chan error, checks)
	for range checks {
		go func() { errs <- s.check(os.Getpid(), ino, -1) }()
	}
	for range checks {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := s.listings.Load() - before; n > checks/4 {
		t.Errorf("%d concurrent checks without a descriptor made %d listings; want them shared", checks, n)
	}
}

// fdOfTest is c's descriptor number.
func fdOfTest(t *testing.T, c net.Conn) string {
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := ""
	raw.Control(func(f uintptr) { fd = strconv.FormatUint(uint64(f), 10) })
	return fd
}
