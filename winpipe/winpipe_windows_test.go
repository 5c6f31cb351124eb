//go:build windows

package winpipe

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// underWine reports whether the tests run under wine, which does not enforce
// what the pipe asks of the system: its DACL, FILE_FLAG_FIRST_PIPE_INSTANCE,
// the client's impersonation level. Tests of that enforcement skip there;
// the values opx passes are tested on their own.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// listen returns a Listener on a fresh name, closed at the test's end.
func listen(t *testing.T) (*Listener, string) {
	t.Helper()
	name := NewName()
	l, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, name
}

// pair returns both ends of one connection, closed at the test's end.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, name := listen(t)
	client, err := Dial(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}

func TestHTTPManyClients(t *testing.T) {
	l, name := listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	const clients, requests = 50, 4
	var wg sync.WaitGroup
	errs := make(chan error, clients*requests)
	for i := range clients {
		wg.Go(func() {
			// A transport each: a connection each, kept alive across its requests.
			tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return Dial(ctx, name)
			}}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: time.Minute}
			for j := range requests {
				path := fmt.Sprintf("/%d/%d", i, j)
				resp, err := c.Get("http://opx" + path)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := "hello " + path; err != nil || string(body) != want {
					errs <- fmt.Errorf("GET %s = %q, %v, want %q", path, body, err, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Server.Close() = %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve() = %v, want %v", err, http.ErrServerClosed)
	}
}

func TestReadDeadline(t *testing.T) {
	server, client := pair(t)
	if err := server.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline() = %v", err)
	}
	var b [1]byte
	_, err := server.Read(b[:])
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read() on an idle conn past its deadline = %v, want a timeout", err)
	}
	// The conn outlives its deadline.
	if err := server.SetReadDeadline(time.Time{}); err != nil {
		t.Fatalf("SetReadDeadline(zero) = %v", err)
	}
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatalf("client Write() = %v", err)
	}
	if n, err := server.Read(b[:]); n != 1 || err != nil || b[0] != 'x' {
		t.Fatalf("Read() after the deadline was lifted = %d, %v (%q), want 1, nil (\"x\")", n, err, b[:n])
	}
}

func TestCloseEndsConn(t *testing.T) {
	server, client := pair(t)
	if err := server.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	var b [1]byte
	if _, err := client.Read(b[:]); err != io.EOF {
		t.Errorf("client Read() after the server closed = %v, want %v", err, io.EOF)
	}
	if _, err := server.Read(b[:]); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read() after Close() = %v, want %v", err, net.ErrClosed)
	}
	if err := server.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close() = %v, want %v", err, net.ErrClosed)
	}
}

func TestCloseAbortsAccept(t *testing.T) {
	l, name := listen(t)
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	time.Sleep(50 * time.Millisecond) // most likely blocked in Accept by now; either way must end
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept() blocked during Close() = %v, want %v", err, net.ErrClosed)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept() after Close() = %v, want %v", err, net.ErrClosed)
	}
	if c, err := Dial(t.Context(), name); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			c.Close()
		}
		t.Errorf("Dial() after Close() = %v, want %v", err, fs.ErrNotExist)
	}
}

func TestDialMissing(t *testing.T) {
	c, err := Dial(t.Context(), NewName())
	if !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			c.Close()
		}
		t.Fatalf("Dial(a name nobody listens on) = %v, want %v", err, fs.ErrNotExist)
	}
}

// TestDialWhileBusy takes the one waiting instance with a client the
// Listener has not accepted yet: a second Dial finds the pipe busy. It gives
// up when its ctx ends, and connects once Accept makes the next instance.
func TestDialWhileBusy(t *testing.T) {
	l, name := listen(t)
	first, err := Dial(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if c, err := Dial(ctx, name); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			c.Close()
		}
		t.Fatalf("Dial(busy pipe) = %v, want %v", err, context.DeadlineExceeded)
	}

	dialed := make(chan error, 1)
	go func() {
		c, err := Dial(t.Context(), name)
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := <-dialed; err != nil {
		t.Errorf("Dial(busy pipe) once Accept made an instance = %v, want nil", err)
	}
}

func TestClientPID(t *testing.T) {
	server, _ := pair(t)
	want := uint32(os.Getpid())
	if pid, err := ClientPID(server); pid != want || err != nil {
		t.Errorf("ClientPID(accepted conn) = %d, %v, want %d, nil", pid, err, want)
	}
	// Through TLS, as the daemon will hold it (no handshake needed for NetConn).
	if pid, err := ClientPID(tls.Server(server, &tls.Config{})); pid != want || err != nil {
		t.Errorf("ClientPID(tls.Server(accepted conn)) = %d, %v, want %d, nil", pid, err, want)
	}
	if _, err := ClientPID(&net.TCPConn{}); err == nil {
		t.Errorf("ClientPID(*net.TCPConn) = nil error, want an error")
	}
}

func TestLargeTransfer(t *testing.T) {
	server, client := pair(t)
	const size = 4 << 20
	up, down := make([]byte, size), make([]byte, size)
	rand.Read(up)
	rand.Read(down)

	// Both ways at once: each side writes while the other's bytes arrive.
	var wg sync.WaitGroup
	var gotUp, gotDown []byte
	var errUp, errDown error
	wg.Go(func() { _, errUp = client.Write(up) })
	wg.Go(func() { _, errDown = server.Write(down) })
	wg.Go(func() { gotUp, errUp = readN(server, size) })
	wg.Go(func() { gotDown, errDown = readN(client, size) })
	wg.Wait()
	if errUp != nil || !bytes.Equal(gotUp, up) {
		t.Errorf("client to server: %d of %d bytes intact, %v", commonPrefix(gotUp, up), size, errUp)
	}
	if errDown != nil || !bytes.Equal(gotDown, down) {
		t.Errorf("server to client: %d of %d bytes intact, %v", commonPrefix(gotDown, down), size, errDown)
	}
}

func readN(c net.Conn, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

func TestBadNames(t *testing.T) {
	for _, name := range []string{"", `a\b`, string(make([]byte, 300))} {
		if l, err := Listen(name); err == nil {
			l.Close()
			t.Errorf("Listen(%q) = nil error, want an error", name)
		}
		if c, err := Dial(t.Context(), name); err == nil {
			c.Close()
			t.Errorf("Dial(%q) = nil error, want an error", name)
		}
	}
}

// TestAcceptSkipsGoneClient: a client that connects and closes before Accept
// leaves no conn behind it; Accept serves the next client instead.
func TestAcceptSkipsGoneClient(t *testing.T) {
	l, name := listen(t)
	gone, err := Dial(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := Dial(t.Context(), name)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		c.Write([]byte("x"))
		c.Read(make([]byte, 1)) // until the server closes
	}()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if n, err := s.Read(b[:]); n != 1 || err != nil || b[0] != 'x' {
		t.Errorf("Read() from the conn Accept returned = %d, %v (%q), want 1, nil (\"x\"): the client that left?", n, err, b[:n])
	}
	s.Close()
	<-done
}
