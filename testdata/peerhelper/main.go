// Command peerhelper is a small program for opx's access-control tests: the
// tests build it under two names and check which one the policy lets read.
//
//	peerhelper read REF   runs $OPX_BIN read REF (so the requester is this program)
//	peerhelper http REF   sends POST /v1/read itself over $OPX_SOCKET_PATH, with
//	                      the token $OPX_TOKEN and the certificate in $OPX_CERT_FILE,
//	                      and prints the status code and body
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: peerhelper read|http REF")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "read":
		cmd := exec.Command(os.Getenv("OPX_BIN"), "read", os.Args[2])
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				os.Exit(ee.ExitCode())
			}
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "http":
		pem, err := os.ReadFile(os.Getenv("OPX_CERT_FILE"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		hc := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", os.Getenv("OPX_SOCKET_PATH"))
			},
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "opx-authd", MinVersion: tls.VersionTLS13},
		}}
		req, _ := http.NewRequest("POST", "https://opx-authd/v1/read", strings.NewReader(`{"ref":"`+os.Args[2]+`"}`))
		req.Header.Set("Authorization", "Bearer "+os.Getenv("OPX_TOKEN"))
		resp, err := hc.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s\n", resp.StatusCode, body)
	default:
		os.Exit(2)
	}
}
