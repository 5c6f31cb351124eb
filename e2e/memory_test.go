//go:build unix

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/e2e/harness"
)

// TestSecretsLeaveTheDaemonsMemory reads 20 secrets through every endpoint
// (/v1/read, /v1/reads, /v1/resolve), locks the session, and then searches
// the daemon's writable memory for the values: none may be left.
func TestSecretsLeaveTheDaemonsMemory(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"fake", "opcli"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var e *testEnv
			refs := make([]string, 20)
			values := make([][]byte, 20)
			switch kind {
			case "fake":
				e = newEnv(t)
				for i := range refs {
					refs[i] = fmt.Sprintf("op://Mem/item%d/password", i)
					values[i] = []byte(backend.FakeValue("", refs[i]))
				}
			case "opcli":
				e = newOPEnv(t)
				e.SignIn("my")
				fields := map[string]string{}
				for i := range refs {
					refs[i] = fmt.Sprintf("op://Infra/mem/f%d", i)
					b := make([]byte, 12)
					rand.Read(b)
					values[i] = []byte("opxmem-" + hex.EncodeToString(b))
					fields[fmt.Sprintf("f%d", i)] = string(values[i])
				}
				e.WriteFixture("mem", fields)
			}
			cmd := e.StartDaemon(harness.Bins().Opx, "daemon", "--backend="+kind)
			// Half in one batch (one op inject), half one by one (op read).
			want := ""
			for _, v := range values[:10] {
				want += string(v) + "\n"
			}
			if out := e.MustOpx(append([]string{"read"}, refs[:10]...)...); out != want {
				t.Fatalf("batch read = %q", out)
			}
			for i, ref := range refs[10:] {
				if out := e.MustOpx("read", ref); out != string(values[10+i])+"\n" {
					t.Fatalf("read %s = %q", ref, out)
				}
			}
			e.MustOpx(append([]string{"read"}, refs...)...)
			var env []string
			for i, ref := range refs {
				env = append(env, fmt.Sprintf("V%d=%s", i, ref))
			}
			e.MustOpx(append([]string{"resolve"}, env...)...)
			e.MustOpx("lock")

			harness.AssertNoSecrets(t, cmd.Process.Pid, values)
		})
	}
}

// TestExpiredSecretsLeaveTheDaemonsMemory has values fetched by the refresh
// ahead of their expiry, which answers no one, so that only op's output and
// the cache held them; after lock, no piece of them (harness.PieceLen bytes,
// less than a register holds) may be left in the daemon's memory, registers
// included. Such a copy, in the registers a signal frame had saved, showed
// up once in many runs: the test runs rounds, with counts and sizes that
// take op's output past the sizes where its buffers grow (512 B, 4 KiB,
// 32 KiB, and a pipe's 64 KiB), one value alone (op read), and op inject
// failing over to op read per ref (concurrent op processes).
func TestExpiredSecretsLeaveTheDaemonsMemory(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the memory scan reads /proc")
	}
	rounds := []expiryRound{
		{1, 24, false}, {2, 220, false}, {20, 31, false}, {5, 740, false}, {3, 11000, false},
		{1, 40000, false}, {2, 33000, false}, {6, 300, true}, {4, 5000, true},
	}
	// The passes repeat the rounds, each with a daemon of its own, at once.
	for pass := range 3 {
		t.Run(fmt.Sprint("pass", pass), func(t *testing.T) {
			t.Parallel()
			expiredRounds(t, pass, rounds)
		})
	}
}

// expiryRound is n values of size bytes fetched by the refresh ahead.
type expiryRound struct {
	n, size  int
	failOver bool // at the refresh, op inject fails and each ref is read alone
}

// expiredRounds runs the rounds against a daemon of its own.
func expiredRounds(t *testing.T, pass int, rounds []expiryRound) {
	e := newOPEnv(t)
	e.SignIn("my")
	e.WriteFixture("mem", map[string]string{"x": "y"})
	// A value read twice is fetched again a fifth of its TTL before it
	// expires.
	cmd := e.StartDaemon(harness.Bins().Opx, "daemon", "--backend=opcli", "--ttl=2s")
	for _, r := range rounds {
		values := refreshedValues(t, e, r.n, r.size, r.failOver)
		e.MustOpx("read", "--no-cache", "op://Infra/mem/x") // one more op exit: a SIGCHLD
		e.MustOpx("lock")
		harness.AssertNoSecretPieces(t, cmd.Process.Pid, values)
		if t.Failed() {
			t.Fatalf("pass %d, %d values of %d bytes (fail over to op read: %v)", pass, r.n, r.size, r.failOver)
		}
		e.MustOpx("unlock")
	}
}

// refreshedValues has the daemon fetch n new values of size bytes with the
// refresh ahead of expiry alone, and returns them once it did: it reads n
// old values twice (fetched, then served from the cache, which schedules
// the refresh), with the new ones in op's fixture by the second read. With
// failOver, one ref is gone at the refresh, so that op inject fails and
// each ref is read with op read.
func refreshedValues(t *testing.T, e *testEnv, n, size int, failOver bool) [][]byte {
	t.Helper()
	refs := make([]string, n)
	for i := range refs {
		refs[i] = fmt.Sprintf("op://Infra/mem/f%d", i)
	}
	read := append([]string{"read"}, refs...)
	var values [][]byte
	var before uint64
	for attempt := 1; ; attempt++ {
		fields := map[string]string{"x": "y"}
		old := ""
		for i := range refs {
			v := randomValue("opxold-", size)
			fields[fmt.Sprintf("f%d", i)] = v
			old += v + "\n"
		}
		e.WriteFixture("mem", fields)
		before = e.Status().Refreshes
		e.MustOpx(read...)
		values = make([][]byte, n)
		for i := range refs {
			values[i] = []byte(randomValue("opxnew-", size))
			fields[fmt.Sprintf("f%d", i)] = string(values[i])
		}
		if failOver {
			delete(fields, "f0")
		}
		e.WriteFixture("mem", fields)
		if e.MustOpx(read...) == old {
			break
		}
		// The old values expired before the second read (a slow machine),
		// which fetched the new ones and answered them.
		if attempt == 3 {
			t.Fatalf("%d refs were not served from the cache within the 2s TTL, %d times", n, attempt)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st := e.Status()
		if st.Refreshes >= before+uint64(n) && st.InFlight == 0 {
			return values
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d refs were not refreshed: %d refreshes, %d in flight", n, st.Refreshes-before, st.InFlight)
		}
	}
}

// randomValue returns a random value of n bytes (at least 24) that starts
// with prefix.
func randomValue(prefix string, n int) string {
	n = max(n, 24)
	b := make([]byte, n)
	rand.Read(b)
	return (prefix + hex.EncodeToString(b))[:n]
}
