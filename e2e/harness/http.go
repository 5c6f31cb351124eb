package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RawClient is an HTTP client over the Env's socket with the daemon's
// pinned certificate, and the daemon's token for the caller to set (or
// not): for the tests that speak the protocol without opx in between.
func (e *Env) RawClient() (*http.Client, string) {
	e.T.Helper()
	pem, err := os.ReadFile(filepath.Join(e.DataDir, "tls.crt"))
	if err != nil {
		e.T.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tok, err := os.ReadFile(filepath.Join(e.DataDir, "token"))
	if err != nil {
		e.T.Fatal(err)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.Sock)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "opx-authd", MinVersion: tls.VersionTLS13},
	}
	e.T.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, strings.TrimSpace(string(tok))
}

// Request sends one request through hc (a RawClient), with token unless it
// is "", and returns the status and body.
func Request(t testing.TB, hc *http.Client, token, method, path string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "https://opx-authd"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
