// Command peerhelper is a small program for opx's access-control tests: the
// tests build it under two names and check which one the policy lets read,
// and use it to try what an attacker running as the same user would.
//
//	peerhelper read REF          runs $OPX_BIN read REF (so the requester is this program)
//	peerhelper opx ARGS...       runs $OPX_BIN ARGS...
//	peerhelper http REF          sends POST /v1/read itself over $OPX_SOCKET_PATH, with
//	                             the token $OPX_TOKEN and the certificate in $OPX_CERT_FILE,
//	                             and prints the status code and body
//	peerhelper post PATH BODY    the same for any POST endpoint (and both print the
//	                             answer's Opx-Settings header on stderr)
//	peerhelper handoff REF EXE   connects, starts `peerhelper speak REF` with the
//	                             connection, and replaces itself with EXE (which
//	                             gets the argument "2": made for sleep): the child
//	                             then sends POST /v1/read on the connection this
//	                             process made and prints the answer
//	peerhelper hold N            opens N connections and sends nothing; after a
//	                             second prints "open K closed C failed F" (C: closed
//	                             by the daemon by then, F: refused by connect) and
//	                             keeps the open ones until its standard input ends
//	peerhelper bodies N SIZE     opens N connections, sends on each a POST /v1/read
//	                             announcing a SIZE-byte body and only its first
//	                             4 KiB; after two seconds prints "answered A (CODES)
//	                             pending P failed F" and keeps the pending ones
//	                             until its standard input ends
//	peerhelper trust FILE        (Windows) adds the DER certificate in FILE to the
//	                             current user's trusted roots; distrust removes it
//	peerhelper selfapprove REF   starts $OPX_BIN read REF, which the policy asks the
//	                             user about, finds the question with $OPX_BIN
//	                             approve, answers it itself and from a child shell,
//	                             printing "question ID", "self CODE OUTPUT" and
//	                             "child CODE OUTPUT", then waits for the read and
//	                             exits with its status
//	peerhelper wtslock PID       (Windows) sends the daemon PID's session window
//	                             the lock message Windows sends as the session locks
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: peerhelper read|http|post|handoff|speak ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "read", "opx":
		args := os.Args[2:]
		if os.Args[1] == "read" {
			args = []string{"read", os.Args[2]}
		}
		cmd := exec.Command(os.Getenv("OPX_BIN"), args...)
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
	case "hold":
		n, _ := strconv.Atoi(os.Args[2])
		hold(n)
	case "bodies":
		if len(os.Args) != 4 {
			os.Exit(2)
		}
		n, _ := strconv.Atoi(os.Args[2])
		size, _ := strconv.Atoi(os.Args[3])
		bodies(n, size)
	case "trust", "distrust":
		roots(os.Args[1], os.Args[2])
	case "selfapprove":
		selfApprove(os.Args[2])
	case "wtslock":
		wtsLock(os.Args[2])
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
	fmt.Fprintf(os.Stderr, "Opx-Settings: %s\n", resp.Header.Get("Opx-Settings"))
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

// hold opens n connections and keeps the ones the daemon leaves open until
// standard input ends.
func hold(n int) {
	var conns []net.Conn
	failed := 0
	for range n {
		c, err := net.Dial("unix", os.Getenv("OPX_SOCKET_PATH"))
		if err != nil {
			failed++
			continue
		}
		conns = append(conns, c)
	}
	closed := closedWithin(conns, time.Second)
	fmt.Printf("open %d closed %d failed %d\n", len(conns)-closed, closed, failed)
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// closedWithin counts the connections the other end closes within d: a
// read that ends before the deadline with anything but a timeout.
func closedWithin(conns []net.Conn, d time.Duration) int {
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var wg sync.WaitGroup
	closed := 0
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(deadline)
			var b [1]byte
			_, err := c.Read(b[:])
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.SetReadDeadline(time.Time{})
				return
			}
			mu.Lock()
			closed++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return closed
}

// bodies sends n requests that announce a size-byte body and send 4 KiB of
// it, and reports how the daemon answered within two seconds.
func bodies(n, size int) {
	var conns []*tls.Conn
	failed := 0
	first := `{"ref":"op://Flood/x/y","pad":"` + strings.Repeat("x", 4<<10) + `"`
	for range n {
		c, err := net.Dial("unix", os.Getenv("OPX_SOCKET_PATH"))
		if err != nil {
			failed++
			continue
		}
		tc := tls.Client(c, tlsConfig())
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = fmt.Fprintf(tc, "POST /v1/read HTTP/1.1\r\nHost: opx-authd\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			os.Getenv("OPX_TOKEN"), size, first)
		if err != nil {
			failed++
			tc.Close()
			continue
		}
		tc.SetDeadline(time.Time{})
		conns = append(conns, tc)
	}
	deadline := time.Now().Add(2 * time.Second)
	var mu sync.Mutex
	var wg sync.WaitGroup
	codes := map[int]int{}
	pending := 0
	for _, tc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc.SetReadDeadline(deadline)
			resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
			mu.Lock()
			defer mu.Unlock()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				pending++
				return
			}
			if err != nil {
				failed++
				return
			}
			resp.Body.Close()
			codes[resp.StatusCode]++
		}()
	}
	wg.Wait()
	var parts []string
	answered := 0
	for code, k := range codes {
		parts = append(parts, fmt.Sprintf("%d:%d", code, k))
		answered += k
	}
	sort.Strings(parts)
	fmt.Printf("answered %d (%s) pending %d failed %d\n", answered, strings.Join(parts, " "), pending, failed)
	io.Copy(io.Discard, os.Stdin)
	for _, tc := range conns {
		tc.Close()
	}
}

// selfApprove is the program whose read waits for approval trying to
// approve it: itself, and through a process it starts.
func selfApprove(ref string) {
	bin := os.Getenv("OPX_BIN")
	read := exec.Command(bin, "read", ref)
	read.Stdout, read.Stderr = os.Stdout, os.Stderr
	if err := read.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	id := ""
	mine := "(pid " + strconv.Itoa(os.Getpid())
	for deadline := time.Now().Add(20 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, _ := exec.Command(bin, "approve").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.Contains(line, mine) {
				id = f[0]
			}
		}
	}
	fmt.Printf("question %s\n", id)
	try := func(name string, c *exec.Cmd) {
		out, err := c.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		fmt.Printf("%s %d %q\n", name, code, out)
	}
	try("self", exec.Command(bin, "approve", id))
	try("child", exec.Command("/bin/sh", "-c", `"$0" approve "$1"`, bin, id))
	err := read.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	}
}
