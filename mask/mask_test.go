package mask

import (
	"bytes"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// reference conceals values in input the slow and obvious way: find every
// occurrence of every value, merge occurrences that overlap or touch, and
// replace each merged run by the marker.
func reference(values [][]byte, input []byte) []byte {
	var occ []span // in order of start
	for i := range input {
		for _, v := range values {
			if len(v) > 0 && bytes.HasPrefix(input[i:], v) {
				occ = append(occ, span{i, i + len(v)})
			}
		}
	}
	return replaceRuns(input, occ)
}

// span is the bytes [start, end) of a stream.
type span struct{ start, end int }

// replaceRuns replaces each run of spans of input that overlap or touch
// (occ in order of start) by the marker.
func replaceRuns(input []byte, occ []span) []byte {
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

// sequence is a control sequence as a terminal Writer skips it: CSI
// (ESC [, parameters, a final byte), an escape sequence (ESC, intermediate
// bytes, a final byte) or a two-byte one; an ESC that starts none of them
// is skipped alone. Unfinished ones are skipped as far as they go.
var sequence = regexp.MustCompile(`\x1b(\[[\x20-\x3f]*[\x40-\x7e]?|[\x20-\x2f]+[\x30-\x7e]?|[\x30-\x4f\x51-\x57\x59\x5a\x5c\x60-\x7e])?`)

// referenceTerminal is reference for a terminal Writer: values are found in
// the text outside control sequences, each occurrence spans the stream
// from its first byte to its last, sequences between included, and
// occurrences that overlap or touch in the stream become one marker.
func referenceTerminal(values [][]byte, input []byte) []byte {
	var text []byte
	var at []int // stream position of each byte of text
	skip := sequence.FindAllIndex(input, -1)
	for i := 0; i < len(input); i++ {
		if len(skip) > 0 && i == skip[0][0] {
			i = skip[0][1] - 1
			skip = skip[1:]
			continue
		}
		text = append(text, input[i])
		at = append(at, i)
	}
	var occ []span
	for i := range text {
		for _, v := range values {
			if len(v) > 0 && bytes.HasPrefix(text[i:], v) {
				occ = append(occ, span{at[i], at[i+len(v)-1] + 1})
			}
		}
	}
	return replaceRuns(input, occ)
}

// beyondBounds reports whether input has a control sequence near maxSeq
// bytes long, or sequences near maxGap bytes between two bytes of text,
// where a terminal Writer stops following its reference.
func beyondBounds(input []byte) bool {
	gap, end := 0, 0
	for _, m := range sequence.FindAllIndex(input, -1) {
		if m[1]-m[0] >= maxSeq-4 {
			return true
		}
		if m[0] > end {
			gap = 0
		}
		if gap += m[1] - m[0]; gap >= maxGap-maxSeq {
			return true
		}
		end = m[1]
	}
	return false
}

// conceal runs input through a Writer in the given chunks, without idle
// flushes, and closes it.
func conceal(t testing.TB, m *Matcher, chunks [][]byte) []byte {
	t.Helper()
	return concealWith(t, NewWriter(m, nil), chunks)
}

// concealTerminal is conceal with a terminal Writer.
func concealTerminal(t testing.TB, m *Matcher, chunks [][]byte) []byte {
	t.Helper()
	return concealWith(t, NewTerminalWriter(m, nil), chunks)
}

func concealWith(t testing.TB, w *Writer, chunks [][]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w.w = &out
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

// What a Windows pseudo console sends: a value split by the frames it
// paints, coloured, or in a window title, is concealed.
func TestTerminalWriterConcealsBetweenSequences(t *testing.T) {
	for _, c := range []struct {
		in   []string // the writes
		want string
	}{
		{[]string{"\x1b[?25la s3c\x1b[?25h", "\x1b[?25lr3t b\r\n\x1b[?25h"}, "\x1b[?25la " + Marker + " b\r\n\x1b[?25h"},
		{[]string{"\x1b[31ms3cr3t\x1b[0m\r\n"}, "\x1b[31m" + Marker + "\x1b[0m\r\n"},
		{[]string{"s3\x1b[1;1H\x1b7cr\x1b(B3t"}, Marker},
		{[]string{"\x1b]0;s3cr3t\x07"}, "\x1b]0;" + Marker + "\x07"},
		{[]string{"s3c", "\x1b[K\r\nr3t"}, "s3c\x1b[K\r\nr3t"}, // a line break is text
		{[]string{"\x1b[", "31ms3cr3t"}, "\x1b[31m" + Marker},
		{[]string{"s3cr3\x1b[", "Kt\x1b[m"}, Marker + "\x1b[m"},
	} {
		m := NewMatcher(bs("s3cr3t"))
		var chunks [][]byte
		for _, s := range c.in {
			chunks = append(chunks, []byte(s))
		}
		if got := string(concealTerminal(t, m, chunks)); got != c.want {
			t.Errorf("writes %q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// The terminal Writer, over any chunking, with the dense or the sparse
// automaton, writes what its reference does.
func TestTerminalStreamingMatchesTheReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	word := func(alphabet string, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return b
	}
	for round := range 3000 {
		var values [][]byte
		for range 1 + r.IntN(3) {
			values = append(values, word("ab1\n", 1+r.IntN(5)))
		}
		input := word("ab1\n\x1b[;m(]", r.IntN(40))
		want := referenceTerminal(values, input)
		for _, limit := range []int{maxDense, 0} {
			m := newMatcher(values, limit)
			if got := concealTerminal(t, m, split(input, r)); !bytes.Equal(got, want) {
				t.Fatalf("round %d, values %q, input %q (dense %v): got %q, want %q", round, values, input, m.delta != nil, got, want)
			}
		}
	}
}

func FuzzConceal(f *testing.F) {
	f.Add([]byte("abcdef"), []byte("cde"), []byte("xxabcdefxcdex"), uint64(1))
	f.Add([]byte("aa"), []byte("a\na"), []byte("aaa\naa\n"), uint64(7))
	f.Add([]byte("s3cr3t"), []byte("ab"), []byte("\x1b[?25ls3c\x1b[?25h\x1b[?25lr3t\x1b]0;ab\x07"), uint64(3))
	f.Fuzz(func(t *testing.T, v1, v2, input []byte, seed uint64) {
		if len(v1) > 64 || len(v2) > 64 || len(input) > 4096 {
			return
		}
		values := [][]byte{v1, v2}
		want, wantTerminal := reference(values, input), referenceTerminal(values, input)
		if beyondBounds(input) {
			wantTerminal = nil // the reference knows no bounds
		}
		r := rand.New(rand.NewPCG(seed, seed))
		for _, limit := range []int{maxDense, 0} {
			if got := conceal(t, newMatcher(values, limit), split(input, r)); !bytes.Equal(got, want) {
				t.Fatalf("values %q, input %q: got %q, want %q", values, input, got, want)
			}
			if wantTerminal == nil {
				continue
			}
			if got := concealTerminal(t, newMatcher(values, limit), split(input, r)); !bytes.Equal(got, wantTerminal) {
				t.Fatalf("terminal: values %q, input %q: got %q, want %q", values, input, got, wantTerminal)
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

// Nor does it for a terminal Writer when a partial match is followed by
// control sequences without end.
func TestTerminalHoldBackStaysBounded(t *testing.T) {
	m := NewMatcher(bs("abcdef"))
	var out bytes.Buffer
	w := NewTerminalWriter(m, &out)
	w.idle = time.Hour
	w.Write([]byte("abc"))
	for range 10000 {
		w.Write([]byte("\x1b[?25l\x1b[?25h"))
		if len(w.pend) > m.MaxLen()+maxGap {
			t.Fatalf("%d bytes held back, more than the longest value and maxGap", len(w.pend))
		}
	}
	w.Write([]byte("def"))
	w.Close()
	if strings.Contains(out.String(), Marker) || !strings.HasPrefix(out.String(), "abc\x1b[?25l") {
		t.Errorf("got %.40q..., want the partial match given up and written", out.String())
	}
}
