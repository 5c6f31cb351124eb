package mask

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// reference conceals values in input the slow and obvious way: find every
// occurrence of every value, merge occurrences that overlap or touch, and
// replace each merged run by the marker.
func reference(values [][]byte, input []byte) []byte {
	type iv struct{ start, end int }
	var occ []iv // in order of start
	for i := range input {
		for _, v := range values {
			if len(v) > 0 && bytes.HasPrefix(input[i:], v) {
				occ = append(occ, iv{i, i + len(v)})
			}
		}
	}
	var out []byte
	at := 0
	for k := 0; k < len(occ); {
		cur := occ[k]
		for k++; k < len(occ) && occ[k].start <= cur.end; k++ {
			cur.end = max(cur.end, occ[k].end)
		}
		out = append(out, input[at:cur.start]...)
		out = append(out, Marker...)
		at = cur.end
	}
	return append(out, input[at:]...)
}

// conceal runs input through a Writer in the given chunks, without idle
// flushes, and closes it.
func conceal(t testing.TB, m *Matcher, chunks [][]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(m, &out)
	w.idle = time.Hour
	for _, c := range chunks {
		if n, err := w.Write(c); err != nil || n != len(c) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func split(input []byte, r *rand.Rand) [][]byte {
	var chunks [][]byte
	for len(input) > 0 {
		n := 1 + r.IntN(len(input))
		if r.IntN(3) == 0 {
			n = min(n, 1+r.IntN(3))
		}
		chunks = append(chunks, input[:n])
		input = input[n:]
	}
	return chunks
}

func bs(values ...string) [][]byte {
	var out [][]byte
	for _, v := range values {
		out = append(out, []byte(v))
	}
	return out
}

func TestConcealsWhatAUserWouldExpect(t *testing.T) {
	for _, c := range []struct {
		values []string
		in     []string // the writes
		want   string
	}{
		{[]string{"s3cr3t-value"}, []string{"token=s3cr3t-value\n"}, "token=" + Marker + "\n"},
		{[]string{"abcdef"}, []string{"abc", "def"}, Marker},
		{[]string{"abcdef"}, []string{"xxabc", "de", "fyy\n"}, "xx" + Marker + "yy\n"},
		{[]string{"alpha1", "beta22"}, []string{"alpha1 and beta22 and alpha1\n"}, Marker + " and " + Marker + " and " + Marker + "\n"},
		{[]string{"abcdef"}, []string{"abcdeabcdef"}, "abcde" + Marker},
		{[]string{"abcdef"}, []string{"abcde", "x"}, "abcdex"},
		{[]string{"abcd", "cdef"}, []string{"abcdef"}, Marker},
		{[]string{"abc", "abcdef"}, []string{"abcdefg"}, Marker + "g"},
		{[]string{"bc", "abcd"}, []string{"abcd"}, Marker},
		{[]string{"password"}, []string{"no secrets here\n"}, "no secrets here\n"},
		{[]string{"aaaa"}, []string{"aaaaaa"}, Marker},
		{[]string{"line1\nline2"}, []string{"key:\nline1\nline2\n"}, "key:\n" + Marker + "\n"},
	} {
		m := NewMatcher(bs(c.values...))
		var chunks [][]byte
		for _, s := range c.in {
			chunks = append(chunks, []byte(s))
		}
		if got := string(conceal(t, m, chunks)); got != c.want {
			t.Errorf("values %q, writes %q: got %q, want %q", c.values, c.in, got, c.want)
		}
	}
}

// The streaming Writer, over any chunking, with the dense or the sparse
// automaton, writes what the reference does.
func TestStreamingMatchesTheReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := "abc\n"
	word := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return b
	}
	for round := range 3000 {
		var values [][]byte
		for range 1 + r.IntN(4) {
			values = append(values, word(1+r.IntN(5)))
		}
		input := word(r.IntN(40))
		want := reference(values, input)
		for _, limit := range []int{maxDense, 0} {
			m := newMatcher(values, limit)
			if got := conceal(t, m, split(input, r)); !bytes.Equal(got, want) {
				t.Fatalf("round %d, values %q, input %q (dense %v): got %q, want %q", round, values, input, m.delta != nil, got, want)
			}
		}
	}
}

func FuzzConceal(f *testing.F) {
	f.Add([]byte("abcdef"), []byte("cde"), []byte("xxabcdefxcdex"), uint64(1))
	f.Add([]byte("aa"), []byte("a\na"), []byte("aaa\naa\n"), uint64(7))
	f.Fuzz(func(t *testing.T, v1, v2, input []byte, seed uint64) {
		if len(v1) > 64 || len(v2) > 64 || len(input) > 4096 {
			return
		}
		values := [][]byte{v1, v2}
		want := reference(values, input)
		r := rand.New(rand.NewPCG(seed, seed))
		for _, limit := range []int{maxDense, 0} {
			if got := conceal(t, newMatcher(values, limit), split(input, r)); !bytes.Equal(got, want) {
				t.Fatalf("values %q, input %q: got %q, want %q", values, input, got, want)
			}
		}
	})
}

// A prompt that happens to end like the start of a value is written after
// the idle time, and the rest of the value, when it comes, is concealed.
func TestIdleFlushWritesHeldBytes(t *testing.T) {
	m := NewMatcher(bs("secret-value"))
	var out syncBuffer
	w := NewWriter(m, &out)
	w.idle = 20 * time.Millisecond
	w.Write([]byte("Enter secret: secret"))
	if got := out.String(); got != "Enter secret: " {
		t.Fatalf("before the idle time: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "Enter secret: secret" {
		if time.Now().After(deadline) {
			t.Fatalf("held bytes never written: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.Write([]byte("-value done\n"))
	w.Close()
	if got, want := out.String(), "Enter secret: secret"+Marker+" done\n"; got != want {
		t.Errorf("after the pause: %q, want %q", got, want)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// slowWriter blocks every write that contains 'X', as a terminal or pipe
// whose reader is slow does.
type slowWriter struct {
	syncBuffer
	delay time.Duration
}

func (s *slowWriter) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, 'X') >= 0 {
		time.Sleep(s.delay)
	}
	return s.syncBuffer.Write(p)
}

// An idle timer that fired while a Write held the lock must not flush what
// that Write has just held back: the start of a value.
func TestIdleFlushDoesNotLeakWhatAWriteJustHeld(t *testing.T) {
	m := NewMatcher(bs("secret-value"))
	out := &slowWriter{delay: 150 * time.Millisecond}
	w := NewWriter(m, out)
	w.idle = 40 * time.Millisecond
	w.Write([]byte("aaa secr"))        // held; the timer is armed
	w.Write([]byte("X line secret-v")) // the slow write outlasts the timer
	time.Sleep(10 * time.Millisecond)  // the stale timer has had its go
	w.Write([]byte("alue\n"))
	w.Close()
	if got, want := out.String(), "aaa secrX line "+Marker+"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// What a Writer holds back never exceeds the longest value, even when
// occurrences keep touching each other.
func TestHoldBackStaysBounded(t *testing.T) {
	m := NewMatcher(bs("ab", "abcdef"))
	var out bytes.Buffer
	w := NewWriter(m, &out)
	w.idle = time.Hour
	for range 10000 {
		w.Write([]byte("ab"))
		if len(w.pend) > m.MaxLen()-1 {
			t.Fatalf("%d bytes held back, more than the longest value", len(w.pend))
		}
	}
	if out.String() != Marker {
		t.Errorf("got %q before the end, want the one marker", out.String())
	}
	w.Close()
	if out.String() != Marker {
		t.Errorf("got %q, want one marker", out.String())
	}
}
