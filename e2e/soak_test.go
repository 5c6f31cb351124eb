//go:build soak && unix

package e2e

// TestSoak is `make soak`: 1,000 concurrent connections and 200,000 requests
// mixing every read endpoint and status against the fake backend, with cache
// entries expiring during the run. It reports figures and fails only on
// errors, lost answers or a daemon that does not come back to its idle size;
// it asserts no speed. Loopback only (a Unix socket), bounded in count and
// time.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/e2e/harness"
)

const (
	soakConns    = 1000
	soakRequests = 200_000
	soakRefs     = 5000
	soakTTL      = 2 * time.Second
	soakStale    = 1 * time.Second // values are kept this long past their TTL, for stale-if-error
	soakLimit    = 10 * time.Minute
)

func TestSoak(t *testing.T) {
	if harness.RaceEnabled {
		t.Skip("the soak measures a normal build; run it without -race")
	}
	e := newEnv(t)
	d := e.StartDaemon("", "--backend=fake", "--fake-delay=2ms", "--ttl="+soakTTL.String(), "--cache-size=20000",
		"--max-concurrent=8", "--no-enable-session-lock", "--stale-if-error="+soakStale.String())
	pid := d.Process.Pid
	pem, _ := os.ReadFile(filepath.Join(e.DataDir, "tls.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tok, _ := os.ReadFile(filepath.Join(e.DataDir, "token"))
	token := strings.TrimSpace(string(tok))
	refs := make([]string, soakRefs)
	for i := range refs {
		refs[i] = fmt.Sprintf("op://soak/item%d/field", i)
	}

	st0 := e.Status()
	rssStart := rssKB(t, pid)
	var rssPeak atomic.Int64
	rssPeak.Store(int64(rssStart))
	stopSampling := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(250 * time.Millisecond):
				if r := int64(rssKB(t, pid)); r > rssPeak.Load() {
					rssPeak.Store(r)
				}
			}
		}
	}()

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, soakConns)
	deadline := time.Now().Add(soakLimit)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range soakConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", e.Sock)
				},
				TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "opx-authd", MinVersion: tls.VersionTLS13},
				MaxIdleConnsPerHost: 1,
			}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: time.Minute}
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for sent.Add(1) <= soakRequests && time.Now().Before(deadline) {
				method, path, body, check := soakRequest(rng, refs)
				req, _ := http.NewRequest(method, "https://opx-authd"+path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
					}
					if err == nil {
						err = check(b)
					}
				}
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampling)

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	time.Sleep(soakTTL + soakStale + 3*time.Second) // entries expire, then their stale window; connections close
	st := e.Status()
	rssEnd := rssKB(t, pid)

	fmt.Printf("\nSoak on %s\n\n| measurement | result |\n|---|---|\n", machine())
	fmt.Printf("| connections | %d |\n| requests | %d |\n| errors | %d |\n", soakConns, len(all), failed.Load())
	fmt.Printf("| latency p50 / p99 | %s / %s |\n", all[len(all)/2].Round(10*time.Microsecond), all[len(all)*99/100].Round(10*time.Microsecond))
	fmt.Printf("| throughput | %.0f requests/s over %s |\n", float64(len(all))/elapsed.Seconds(), elapsed.Round(time.Millisecond))
	fmt.Printf("| daemon RSS start / peak / end | %.1f / %.1f / %.1f MB |\n", float64(rssStart)/1024, float64(rssPeak.Load())/1024, float64(rssEnd)/1024)
	fmt.Printf("| daemon goroutines before / after | %d / %d |\n", st0.Goroutines, st.Goroutines)
	windows := elapsed.Seconds() / soakTTL.Seconds()
	fmt.Printf("| backend calls | %d for %d distinct refs over %.0f TTL windows (at most %.0f refs could be fetched) |\n", st.BackendCalls, soakRefs, windows, windows*soakRefs)
	fmt.Printf("| hits / misses / coalesced | %d / %d / %d |\n\n", st.Hits, st.Misses, st.Coalesced)

	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed; first: %v", n, firstErr.Load())
	}
	if len(all) < soakRequests {
		t.Errorf("only %d of %d requests ran within %s", len(all), soakRequests, soakLimit)
	}
	if st.Goroutines > st0.Goroutines+5 {
		t.Errorf("daemon goroutines %d after the run, %d before", st.Goroutines, st0.Goroutines)
	}
	if st.CacheSize != 0 || st.InFlight != 0 {
		t.Errorf("after the TTL and the stale window: cache %d, in flight %d; want 0 and 0", st.CacheSize, st.InFlight)
	}
}

// soakRequest picks one request of the mix and how to check its answer.
func soakRequest(rng *rand.Rand, refs []string) (method, path, body string, check func([]byte) error) {
	pick := func() string { return refs[rng.IntN(len(refs))] }
	switch n := rng.IntN(100); {
	case n < 55:
		ref := pick()
		return "POST", "/v1/read", `{"ref":"` + ref + `"}`, func(b []byte) error {
			var r api.ReadResult
			if err := json.Unmarshal(b, &r); err != nil || string(r.Value) != fv(ref) {
				return fmt.Errorf("read %s: wrong answer %.100s", ref, b)
			}
			return nil
		}
	case n < 60:
		k := 1 + rng.IntN(500)
		list := make([]string, k)
		for i := range list {
			list[i] = pick()
		}
		bb, _ := json.Marshal(api.ReadsRequest{Refs: list})
		return "POST", "/v1/reads", string(bb), func(b []byte) error {
			var r api.ReadsResponse
			if err := json.Unmarshal(b, &r); err != nil || len(r.Errors) != 0 {
				return fmt.Errorf("reads: %v %.200s", err, b)
			}
			for _, ref := range list {
				if res := r.Results[ref]; res == nil || string(res.Value) != fv(ref) {
					return fmt.Errorf("reads: wrong or missing %s", ref)
				}
			}
			return nil
		}
	case n < 80:
		env := map[string]string{}
		for i := range 1 + rng.IntN(20) {
			env[fmt.Sprintf("V%d", i)] = pick()
		}
		bb, _ := json.Marshal(api.ResolveRequest{Env: env})
		return "POST", "/v1/resolve", string(bb), func(b []byte) error {
			var r api.ResolveResponse
			if err := json.Unmarshal(b, &r); err != nil || len(r.Env) != len(env) {
				return fmt.Errorf("resolve: %v %.200s", err, b)
			}
			for name, ref := range env {
				if string(r.Env[name]) != fv(ref) {
					return fmt.Errorf("resolve: wrong %s", name)
				}
			}
			return nil
		}
	default:
		return "GET", "/v1/status", "", func(b []byte) error {
			if !json.Valid(b) {
				return fmt.Errorf("status: not JSON")
			}
			return nil
		}
	}
}
