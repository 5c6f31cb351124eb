//go:build bench && unix

package e2e

// TestBenchReport is `make bench`: it measures the whole binary as users run
// it and prints a Markdown table. It asserts nothing about speed.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opxhq/opx/e2e/harness"
)

func TestBenchReport(t *testing.T) {
	if harness.RaceEnabled {
		t.Skip("the report measures a normal build; run it without -race")
	}
	type row struct{ what, value, target string }
	var rows []row

	e := newEnv(t)
	d := e.StartDaemon("", "--backend=fake", "--cache-size=20000")
	e.MustOpx("read", "op://v/i/cached")
	// The cost of one process (hello-world floor, version, cached reads,
	// bursts) is TestBenchStartup's table.

	idle := rssKB(t, d.Process.Pid)
	idleAnon := rssKBField(t, d.Process.Pid, "RssAnon:")
	for batch := range 10 {
		args := []string{"read"}
		for i := range 1000 {
			args = append(args, fmt.Sprintf("op://bench/item%d/field%d", batch, i))
		}
		e.MustOpx(args...)
	}
	full := rssKB(t, d.Process.Pid)
	time.Sleep(3 * time.Second) // the daemon gives memory back 2 s after its last connection
	settled := rssKB(t, d.Process.Pid)
	settledAnon := rssKBField(t, d.Process.Pid, "RssAnon:")
	settledFile := rssKBField(t, d.Process.Pid, "RssFile:")
	rows = append(rows,
		row{"daemon RSS, idle (of which anonymous)", fmt.Sprintf("%.1f MB (%.1f MB)", float64(idle)/1024, float64(idleAnon)/1024), "≤ 20 MB"},
		row{"daemon RSS, 10,000 cached refs (right after the reads / 3 s later)", fmt.Sprintf("%.1f / %.1f MB", float64(full)/1024, float64(settled)/1024), "≤ 16 MB settled"},
		row{"… of which the binary's mapped pages / anonymous memory, settled", fmt.Sprintf("%.1f / %.1f MB", float64(settledFile)/1024, float64(settledAnon)/1024), ""})

	// One short line through opx run's masker and back: cat echoes what
	// the bench writes; the same with --no-masking (opx becomes cat) is
	// the reference.
	roundTrip := func(masking string) time.Duration {
		cmd := exec.Command(harness.Bins().Opx, "run", masking, "--env", "A=op://v/i/a", "--", "cat")
		cmd.Env = e.Environ()
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer in.Close()
		r := bufio.NewReader(out)
		var d []time.Duration
		for i := range 301 {
			start := time.Now()
			fmt.Fprintf(in, "line %d\n", i)
			if _, err := r.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			d = append(d, time.Since(start))
		}
		return medianOf(d)
	}
	masked, plain := roundTrip("--no-masking=false"), roundTrip("--no-masking")
	rows = append(rows, row{"one short line through `opx run` and back (cat), median of 301: concealing / `--no-masking`",
		fmt.Sprintf("%d µs / %d µs (added: %d µs)", masked.Microseconds(), plain.Microseconds(), (masked - plain).Microseconds()), "added ≤ 1 ms"})

	slow := newEnv(t)
	slow.StartDaemon("", "--backend=fake", "--fake-delay=300ms")
	args := []string{"read"}
	for i := range 100 {
		args = append(args, fmt.Sprintf("op://v/item%d/f", i))
	}
	start := time.Now()
	slow.MustOpx(args...)
	rows = append(rows, row{"one `opx read` of 100 uncached refs, fake backend at 300 ms per call", time.Since(start).Round(time.Millisecond).String(), "< 0.6 s"})
	st := slow.Status()
	rows = append(rows, row{"backend calls for those 100 refs", strconv.FormatUint(st.BackendCalls, 10), "1"})

	// The 1Password backend against the fake op at 300 ms per process.
	refs := make([]string, 20)
	for i := range refs {
		refs[i] = fmt.Sprintf("op://Bulk/item%02d/value", i)
	}
	op := newOPEnv(t)
	op.SignIn("my")
	op.Vars["FAKEOP_DELAY"] = "300ms"
	op.StartDaemon("")
	start = time.Now()
	op.MustOpx(append([]string{"read"}, refs...)...)
	rows = append(rows, row{"opcli: one `opx read` of 20 uncached refs, op at 300 ms", fmt.Sprintf("%s, %d op process(es)", time.Since(start).Round(time.Millisecond), len(op.OpCalls())), "< 0.5 s (original: 6.1 s)"})

	op2 := newOPEnv(t)
	op2.SignIn("my")
	op2.Vars["FAKEOP_DELAY"] = "300ms"
	op2.StartDaemon("")
	start = time.Now()
	var wg sync.WaitGroup
	for _, ref := range refs {
		wg.Add(1)
		go func() { defer wg.Done(); op2.MustOpx("read", ref) }()
	}
	wg.Wait()
	rows = append(rows, row{"opcli: 20 concurrent `opx read` processes, distinct uncached refs", fmt.Sprintf("%s, %d op processes", time.Since(start).Round(time.Millisecond), len(op2.OpCalls())), "≤ 2 op processes (original: 20)"})

	direct := func(concurrent bool) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for _, ref := range refs {
			if concurrent {
				wg.Add(1)
				go func() { defer wg.Done(); op.OpDirect("read", ref) }()
			} else {
				op.OpDirect("read", ref)
			}
		}
		wg.Wait()
		return time.Since(start)
	}
	op.Vars["FAKEOP_DELAY"] = "300ms"
	rows = append(rows,
		row{"the same 20 refs with `op read` directly, one after another", fmt.Sprintf("%s, 20 op processes", direct(false).Round(time.Millisecond)), "for the ratio"},
		row{"the same 20 refs with `op read` directly, 20 at once", fmt.Sprintf("%s, 20 op processes", direct(true).Round(time.Millisecond)), "for the ratio"})

	// 100 sequential op read calls through @1password/op-js, with the
	// shim first in PATH and with op alone, op at 300 ms per call.
	if _, err := exec.LookPath("node"); err == nil {
		dir := opJS(t)
		se, shims := shimEnv(t)
		se.Vars["FAKEOP_DELAY"] = "300ms"
		se.StartDaemon("")
		script := filepath.Join(se.Dir, "hundred.js")
		os.WriteFile(script, []byte(`const op = require("@1password/op-js");
for (let i = 0; i < 100; i++) { if (op.read.parse("op://Private/db/password") !== "s3cr3t-db-pass") { process.exit(2); } }
`), 0o600)
		nodeDir := "/usr/bin"
		if p, err := exec.LookPath("node"); err == nil {
			nodeDir = filepath.Dir(p)
		}
		hundred := func(path string) (time.Duration, int) {
			os.Remove(se.Vars["FAKEOP_LOG"])
			cmd := exec.Command("node", script)
			cmd.Env = append(se.Environ(), "PATH="+path, "NODE_PATH="+filepath.Join(dir, "node_modules"))
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("op-js: %v\n%s", err, out)
			}
			return time.Since(start), len(se.OpCalls())
		}
		realOP := filepath.Join(se.Dir, "realop")
		withShim, shimCalls := hundred(shims + ":" + realOP + ":" + nodeDir + ":/usr/bin:/bin")
		alone, aloneCalls := hundred(realOP + ":" + nodeDir + ":/usr/bin:/bin")
		rows = append(rows,
			row{"100 sequential `op read` through @1password/op-js, opx as op (op at 300 ms)", fmt.Sprintf("%s, %d op process(es)", withShim.Round(time.Millisecond), shimCalls), ""},
			row{"the same with op alone", fmt.Sprintf("%s, %d op processes", alone.Round(time.Millisecond), aloneCalls), "for the ratio"})
	}

	for _, r := range floodRows(t) {
		rows = append(rows, r)
	}
	for _, r := range pipelineRows(t) {
		rows = append(rows, r)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\nMachine: %s\n\n| measurement | result | target |\n|---|---|---|\n", machine())
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.what, r.value, r.target)
	}
	fmt.Print(b.String())
}

// floodRows measures a cached read of one process while another holds idle
// connections to the daemon, and the daemon's memory while one process has
// 300 requests of 1 MiB bodies pending (issue 21).
func floodRows(t *testing.T) []struct{ what, value, target string } {
	type row = struct{ what, value, target string }
	a, _ := buildHelpers(t)
	e := newEnv(t)
	d := e.StartDaemon("", "--backend=fake")
	ref := "op://v/i/flood"
	e.MustOpx("read", ref)
	var rows []row
	for _, n := range []int{0, 1000, 4000} {
		held := "none"
		var f *flooder
		if n > 0 {
			f = e.startFlooder(a, "hold", strconv.Itoa(n))
			held = f.line
		}
		var times []time.Duration
		for range 21 {
			start := time.Now()
			e.MustOpx("read", ref)
			times = append(times, time.Since(start))
		}
		if f != nil {
			f.release()
		}
		rows = append(rows, row{fmt.Sprintf("a cached `opx read` while another process holds %d idle connections, median of 21", n),
			fmt.Sprintf("%s (flooder: %s)", medianOf(times).Round(10*time.Microsecond), held), "about the same for 0, 1,000 and 4,000 (old main: 1.5 s at 500, fails at 3,000)"})
	}
	time.Sleep(3 * time.Second)
	before := rssKB(t, d.Process.Pid)
	f := e.startFlooder(a, "bodies", "300", "1048576")
	during := rssKB(t, d.Process.Pid)
	f.release()
	rows = append(rows, row{"daemon RSS while one process has 300 requests of 1 MiB pending (4 KiB of each sent)",
		fmt.Sprintf("%.1f MB before, %.1f MB during (flooder: %s)", float64(before)/1024, float64(during)/1024, f.line), "bounded (old main: 470 MB)"})
	return rows
}

// pipelineRows simulates a CI pipeline whose jobs read with a 1Password
// service account: 10 jobs (each on a runner of its own: its own daemon)
// of 5 steps, each step a new shell running 20 `op read` of 15 distinct
// refs, through the op shim and with op alone, op at 300 ms per process.
// The fake op counts the processes and the requests 1Password would count
// (op read: 3).
func pipelineRows(t *testing.T) []struct{ what, value, target string } {
	type row = struct{ what, value, target string }
	const jobs, steps = 10, 5
	const token = "ops_eyJiZW5jaCI6InBpcGVsaW5lIn0"
	var script strings.Builder
	script.WriteString("set -e\n")
	for i := range 20 {
		fmt.Fprintf(&script, "op read op://Bulk/item%02d/value >/dev/null\n", i%15)
	}
	run := func(throughShim bool) (time.Duration, int, int) {
		envs := make([]*testEnv, jobs)
		for j := range envs {
			e, shims := shimEnv(t)
			e.Vars["OP_SERVICE_ACCOUNT_TOKEN"] = token
			e.Vars["OP_AUTHD_BACKEND"] = "opcli"
			e.Vars["FAKEOP_DELAY"] = "300ms"
			if !throughShim {
				e.Vars["PATH"] = strings.TrimPrefix(e.Vars["PATH"], shims+string(os.PathListSeparator))
			}
			envs[j] = e
		}
		start := time.Now()
		var wg sync.WaitGroup
		for _, e := range envs {
			wg.Go(func() {
				for range steps {
					cmd := exec.Command("sh", "-c", script.String())
					cmd.Env = e.Environ()
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Errorf("a step failed: %v\n%s", err, out)
						return
					}
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		procs, requests := 0, 0
		for _, e := range envs {
			procs += len(e.OpCalls())
			b, _ := os.ReadFile(filepath.Join(e.Vars["FAKEOP_STATE"], "sa-"+harness.FakeOPTokenID(token)+".requests"))
			requests += strings.Count(string(b), "\n")
			e.Opx("stop")
		}
		return took, procs, requests
	}
	shimTook, shimProcs, shimReqs := run(true)
	opTook, opProcs, opReqs := run(false)
	return []row{
		{fmt.Sprintf("CI pipeline, service account: %d jobs × %d steps × 20 `op read` of 15 refs, through the op shim", jobs, steps),
			fmt.Sprintf("%s, %d op processes, %d 1Password requests", shimTook.Round(time.Millisecond), shimProcs, shimReqs), ""},
		{"the same pipeline with op alone", fmt.Sprintf("%s, %d op processes, %d 1Password requests", opTook.Round(time.Millisecond), opProcs, opReqs), "for the ratio"},
	}
}
