package mask

import (
	"io"
	"math/rand/v2"
	"testing"
)

// fiftyValues are 50 secrets of 16 to 40 letters and digits, the kind opx
// run conceals, and logText is output that contains a few of them.
func fiftyValues(r *rand.Rand) [][]byte {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var values [][]byte
	for range 50 {
		v := make([]byte, 16+r.IntN(25))
		for i := range v {
			v[i] = chars[r.IntN(len(chars))]
		}
		values = append(values, v)
	}
	return values
}

func logText(r *rand.Rand, values [][]byte, n int) []byte {
	words := []string{"GET", "/api/v1/items", "200", "OK", "user=alice", "took", "12ms", "INFO", "starting", "worker", "id=4f2a9c", "connected", "to", "db.internal:5432", "retry", "in", "5s", "{\"status\":\"ok\"}"}
	var out []byte
	for len(out) < n {
		for range 8 {
			if r.IntN(200) == 0 {
				out = append(out, values[r.IntN(len(values))]...)
			} else {
				out = append(out, words[r.IntN(len(words))]...)
			}
			out = append(out, ' ')
		}
		out = append(out, '\n')
	}
	return out[:n]
}

// BenchmarkConceal50Values is the masker's throughput on log output with 50
// values, in 32 KiB writes (a pipe's usual read size).
func BenchmarkConceal50Values(b *testing.B) {
	for _, kind := range []string{"dense", "sparse"} {
		b.Run(kind, func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			values := fiftyValues(r)
			input := logText(r, values, 4<<20)
			limit := maxDense
			if kind == "sparse" {
				limit = 0
			}
			m := newMatcher(values, limit)
			w := NewWriter(m, io.Discard)
			b.SetBytes(int64(len(input)))
			b.ResetTimer()
			for b.Loop() {
				for p := input; len(p) > 0; {
					n := min(len(p), 32<<10)
					w.Write(p[:n])
					p = p[n:]
				}
			}
			w.Close()
		})
	}
}

// BenchmarkShortLine is the cost of passing one short line through.
func BenchmarkShortLine(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	w := NewWriter(NewMatcher(fiftyValues(r)), io.Discard)
	line := []byte("server listening on :8080\n")
	b.ReportAllocs()
	for b.Loop() {
		w.Write(line)
	}
}
