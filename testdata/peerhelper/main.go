// Command peerhelper is a small program for opx's access-control tests: the
// tests build it under two names and check which one the policy lets read,
// and use it to try what an attacker running as the same user would.
//
//	peerhelper read REF          runs $OPX_BIN read REF (so the requester is this program)
//	peerhelper http REF          sends POST /v1/read itself over $OPX_SOCKET_PATH, with
//	                             the token $OPX_TOKEN and the certificate in $OPX_CERT_FILE,
//	                             and prints the status code and body
//	peerhelper post PATH BODY    the same for any POST endpoint
//	peerhelper handoff REF EXE   connects, starts `peerhelper speak REF` with the
//	                             connection, and replaces itself with EXE (which
//	                             gets the argument "2": made for sleep): the child
//	                             then sends POST /v1/read on the connection this
//	                             process made and prints the answer
package main

import (
	"bufio"
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
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: peerhelper read|http|post|handoff|speak ...")
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
		post("/v1/read", `{"ref":"`+os.Args[2]+`"}`)
	case "post":
		if len(os.Args) != 4 {
			os.Exit(2)
		}
		post(os.Args[2], os.Args[3])
	case "handoff":
		if len(os.Args) != 4 {
			os.Exit(2)
		}
		handoff(os.Args[2], os.Args[3])
	case "speak":
		speak(os.Args[2])
	default:
		os.Exit(2)
	}
}

func tlsConfig() *tls.Config {
	pem, err := os.ReadFile(os.Getenv("OPX_CERT_FILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, ServerName: "opx-authd", MinVersion: tls.VersionTLS13}
}

func post(path, body string) {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", os.Getenv("OPX_SOCKET_PATH"))
		},
		TLSClientConfig: tlsConfig(),
	}}
	req, _ := http.NewRequest("POST", "https://opx-authd"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+os.Getenv("OPX_TOKEN"))
	resp, err := hc.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, b)
}

// handoff connects, hands the connection to a child, and execs exe: the
// daemon sees this process (now exe) as the one that connected.
func handoff(ref, exe string) {
	c, err := net.Dial("unix", os.Getenv("OPX_SOCKET_PATH"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	f, err := c.(*net.UnixConn).File() // a duplicate, close-on-exec
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	self, _ := os.Executable()
	child := exec.Command(self, "speak", ref)
	child.ExtraFiles = []*os.File{f}
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	if err := child.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	err = syscall.Exec(exe, []string{exe, "2"}, os.Environ())
	fmt.Fprintln(os.Stderr, "exec:", err)
	os.Exit(1)
}

// speak sends POST /v1/read for ref on the connection at fd 3, once its
// parent has become another program.
func speak(ref string) {
	time.Sleep(300 * time.Millisecond)
	c, err := net.FileConn(os.NewFile(3, "conn"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tc := tls.Client(c, tlsConfig())
	body := `{"ref":"` + ref + `"}`
	fmt.Fprintf(tc, "POST /v1/read HTTP/1.1\r\nHost: opx-authd\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		os.Getenv("OPX_TOKEN"), len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, b)
}
