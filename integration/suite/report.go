//go:build unix

package suite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	vapi "github.com/hashicorp/vault/api"

	"github.com/opxhq/opx/e2e/harness"
)

// Report is the server half of `make bench`: how many HTTP requests each
// workload costs the server when it goes through opx, counted from the
// server's own audit log. It prints a Markdown table and asserts only that
// every read returned the right value; the counts are the result.
func Report(t *testing.T, kind, server string, newServer func(t *testing.T) Server) {
	s := suite{kind: kind, newServer: newServer}
	e := s.withToken(t, kind)
	e.Write("kv2/data/three", map[string]any{"data": map[string]any{"a": "1", "b": "2", "c": "3"}})
	var distinct []string
	var want strings.Builder
	for i := range 20 {
		e.Write(fmt.Sprintf("kv2/data/s%02d", i), map[string]any{"data": map[string]any{"v": fmt.Sprint(i)}})
		distinct = append(distinct, s.ref(fmt.Sprintf("kv2/s%02d#v", i)))
		fmt.Fprintf(&want, "%d\n", i)
	}
	three := []string{s.ref("kv2/three#a"), s.ref("kv2/three#b"), s.ref("kv2/three#c")}

	type row struct {
		what            string
		refs, processes int
		requests, reads int
		wall            time.Duration
	}
	var rows []row
	measure := func(what string, refs, processes int, run func()) {
		from := e.auditSize()
		start := time.Now()
		run()
		wall := time.Since(start)
		requests, reads := e.requestsAfter(from)
		rows = append(rows, row{what, refs, processes, requests, reads, wall})
	}
	read := func(refs []string, want string) {
		if r := e.Opx(append([]string{"read"}, refs...)...); r.Code != 0 || r.Stdout != want {
			t.Errorf("opx read %v = %+v, want %q", refs, r, want)
		}
	}

	measure("3 fields of one secret, one `opx read` (first read: token lookup, mount detection)", 3, 1, func() { read(three, "1\n2\n3\n") })
	measure("the same 3 fields again, within the TTL", 3, 1, func() { read(three, "1\n2\n3\n") })
	measure("20 secrets, one `opx read`", 20, 1, func() { read(distinct, want.String()) })
	e.MustOpx("lock")
	e.MustOpx("unlock")
	measure("the same 20 secrets after `opx lock` / `opx unlock` (cache wiped)", 20, 1, func() { read(distinct, want.String()) })
	e.MustOpx("lock")
	e.MustOpx("unlock")
	measure("20 concurrent `opx read` processes, one secret each", 20, 20, func() {
		harness.Parallel(20, func(i int) { read(distinct[i:i+1], fmt.Sprintf("%d\n", i)) })
	})
	e.MustOpx("lock")
	e.MustOpx("unlock")
	measure("10 concurrent `opx read` processes, the same 3 fields each", 30, 10, func() {
		harness.Parallel(10, func(int) { read(three, "1\n2\n3\n") })
	})

	var b strings.Builder
	fmt.Fprintf(&b, "\n%s in-process on loopback; %d cores, %s/%s, %s\n\n", server, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	b.WriteString("| workload | refs | opx processes | HTTP requests to the server | of which secret reads | wall |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s |\n", r.what, r.refs, r.processes, r.requests, r.reads, r.wall.Round(time.Millisecond))
	}
	b.WriteString("\nA `" + kind + " kv get` per ref makes one process and at least two requests (mount preflight, read) for every ref.\n")
	b.WriteString(shimReport(t, s, e))
	b.WriteString(leaseReport(t, s, e))
	fmt.Print(b.String())
}

// shimReport: 100 sequential `kv get -field` processes of one secret,
// through the shim (opx linked as the CLI, first in PATH) and with the
// real CLI alone: wall time and the server's requests.
func shimReport(t *testing.T, s suite, e *Env) string {
	cli := RealCLI(t, s.kind)
	realDir := linkDir(t, e.Dir, "real", s.kind, cli)
	shimDir := linkDir(t, e.Dir, "shims", s.kind, harness.Bins().Opx)
	get := []string{"kv", "get", "-field=v", "kv2/s07"}
	const n = 100
	var b strings.Builder
	fmt.Fprintf(&b, "\n| %d sequential `%s %s` | wall | per call | HTTP requests to the server |\n|---|---|---|---|\n", n, s.kind, strings.Join(get, " "))
	for _, c := range []struct {
		what, prog string
		path       string
		byHand     bool
	}{
		{"through the shim (opx as `" + s.kind + "`)", filepath.Join(shimDir, s.kind), shimDir + ":" + realDir, false},
		{"the real `" + s.kind + "` CLI alone", cli, realDir, false},
		{"through the shim, the daemon started by hand with `opx daemon --backend=multi`", filepath.Join(shimDir, s.kind), shimDir + ":" + realDir, true},
	} {
		if c.byHand {
			// As the README's "Using it" starts one: the shell that
			// runs the CLI chose no backend (issue 26: on the old main
			// every call then went to the real CLI as well).
			e.StopDaemon()
			delete(e.Vars, "OP_AUTHD_BACKEND")
			e.StartDaemonByHand("--backend=multi")
			if r := e.Run(c.prog, []string{"PATH=" + c.path}, get...); r.Code != 0 || r.Stdout != "7" {
				t.Fatalf("%s: %+v", c.what, r) // the first read, before the count
			}
		}
		from := e.auditSize()
		start := time.Now()
		for range n {
			if r := e.Run(c.prog, []string{"PATH=" + c.path}, get...); r.Code != 0 || r.Stdout != "7" {
				t.Fatalf("%s: %+v", c.what, r)
			}
		}
		wall := time.Since(start)
		requests, _ := e.requestsAfter(from)
		fmt.Fprintf(&b, "| %s | %s | %s | %d |\n", c.what, wall.Round(time.Millisecond), (wall / n).Round(10*time.Microsecond), requests)
	}
	return b.String()
}

// leaseReport: a dynamic secret read by one process per read for 600 reads,
// through opx and straight from the server (as a `vault read` per read
// would), counting the HTTP requests, the leases created and the renewals
// from the server's audit log. Time is compressed 10×: a read every 100 ms
// for 60 s with 6 s leases stands for a read every second for 10 minutes
// with 1-minute leases.
func leaseReport(t *testing.T, s suite, e *Env) string {
	if err := e.Root.Sys().Mount("dyn", &vapi.MountInput{Type: "leased-kv"}); err != nil {
		t.Fatal(err)
	}
	e.Write("dyn/creds", map[string]any{"username": "u", "password": "p", "ttl": "6s"})
	const reads = 600
	count := func(from int64) (requests, leases, renewals int) {
		e.responsesAfter(from, func(path, op string) {
			requests++
			switch {
			case path == "dyn/creds" && op == "read":
				leases++
			case strings.HasPrefix(path, "sys/leases/renew") || strings.HasPrefix(path, "sys/renew"):
				renewals++
			}
		})
		return
	}
	from := e.auditSize()
	start := time.Now()
	for i := range reads {
		field := []string{"#username", "#password"}[i%2]
		want := map[string]string{"#username": "u\n", "#password": "p\n"}[field]
		if r := e.Opx("read", s.ref("dyn/creds"+field)); r.Code != 0 || r.Stdout != want {
			t.Fatalf("opx read of the dynamic secret = %+v", r)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 100 * time.Millisecond)))
	}
	wall := time.Since(start)
	oReq, oLeases, oRenew := count(from)

	from = e.auditSize()
	for range reads {
		if _, err := e.Root.Logical().Read("dyn/creds"); err != nil {
			t.Fatal(err)
		}
	}
	dReq, dLeases, dRenew := count(from)
	e.Root.Sys().RevokePrefix("dyn/")

	var b strings.Builder
	fmt.Fprintf(&b, "\nA dynamic secret (a leased secret, 6 s renewable leases), %d reads, one process each, a read every 100 ms (%s): 10 minutes of a read a second with 1-minute leases, compressed 10×.\n\n", reads, wall.Round(time.Second))
	b.WriteString("| reader | HTTP requests to the server | leases created | renewals |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| `opx read` | %d | %d | %d |\n", oReq, oLeases, oRenew)
	fmt.Fprintf(&b, "| a read straight from the server (as `%s read` does) | %d | %d | %d |\n", s.kind, dReq, dLeases, dRenew)
	return b.String()
}

func (e *Env) auditSize() int64 {
	fi, err := os.Stat(e.Srv.AuditLog())
	if err != nil {
		e.T.Fatal(err)
	}
	return fi.Size()
}

// responsesAfter calls f with the path and operation of each request the
// server answered after offset from of its audit log.
func (e *Env) responsesAfter(from int64, f func(path, operation string)) {
	b, err := os.ReadFile(e.Srv.AuditLog())
	if err != nil {
		e.T.Fatal(err)
	}
	for _, line := range bytes.Split(b[from:], []byte("\n")) {
		var entry struct {
			Type    string `json:"type"`
			Request struct {
				Path      string `json:"path"`
				Operation string `json:"operation"`
			} `json:"request"`
		}
		if json.Unmarshal(line, &entry) == nil && entry.Type == "response" {
			f(entry.Request.Path, entry.Request.Operation)
		}
	}
}

// requestsAfter counts the requests the server answered after offset from
// of its audit log, and how many of them read a KV v2 secret.
func (e *Env) requestsAfter(from int64) (requests, reads int) {
	e.responsesAfter(from, func(path, op string) {
		requests++
		if op == "read" && strings.HasPrefix(path, "kv2/data/") {
			reads++
		}
	})
	return requests, reads
}
