package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
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
	sock := filepath.Join(root, "op-authd", "socket.sock")

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
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
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
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
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
