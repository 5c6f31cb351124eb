package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opxhq/opx/xdg"
)

// TestShutdownLeavesNoGoroutines runs a whole daemon in this process, uses
// it, stops it, and checks that every goroutine it started has ended.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	root, err := os.MkdirTemp("", "opxleak")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	t.Setenv("HOME", root)
	t.Setenv("XDG_DATA_HOME", filepath.Join(root, "d"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(root, "c"))
	t.Setenv("XDG_RUNTIME_DIR", root)
	t.Setenv("OPX_SOCKET_PATH", "")
	paths, err := xdg.Resolve(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	sock := paths.SocketPath // on Windows, the pipe's name file

	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	cfg := Config{Backend: "fake", TTL: time.Minute, CacheSize: 100, BackendTimeout: 5 * time.Second,
		MaxConcurrent: 2, EnableSessionLock: true, SessionTimeout: time.Hour, FakeDelay: 5 * time.Millisecond, EnableAuditLog: true, AuditRetention: 30}
	go func() { done <- serve(ctx, cfg, BuildInfo{Version: "test"}, zerolog.Nop(), func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}

	pem, _ := os.ReadFile(filepath.Join(root, "d", "op-authd", "tls.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tok, _ := os.ReadFile(filepath.Join(root, "d", "op-authd", "token"))
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialTestDaemon(ctx, sock)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: ServerName, MinVersion: tls.VersionTLS13},
	}
	hc := &http.Client{Transport: tr}
	for i := range 20 {
		req, _ := http.NewRequest("POST", "https://opx-authd/v1/reads", strings.NewReader(fmt.Sprintf(`{"refs":["op://v/i/%d","op://v/i/x"]}`, i)))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 403 && parentless() && strings.Contains(string(body), "ran the opx client") {
			// This test binary is the daemon's own executable, so it is
			// judged as an opx client, by its parent, and under wine it
			// has none Windows knows: refused, as it should be.
			continue
		}
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	tr.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after shutdown, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}
