// Package mask conceals secret values in a stream of bytes, such as the
// output of a command run by `opx run`.
//
// A Matcher is an Aho–Corasick automaton over the values. A Writer passes
// the stream through in one pass: every byte that lies inside an occurrence
// of any value is concealed, and each run of concealed bytes (occurrences
// that overlap or touch) becomes one marker. It holds back only bytes that
// could still be the start of a value (at most the longest value's length
// minus one), so a value split across two writes is still found, and it
// writes what it holds after a short idle time, so that a prompt without a
// newline still appears. A terminal Writer (NewTerminalWriter) also finds a
// value with control sequences between its bytes, as a Windows pseudo
// console paints it.
package mask

import (
	"io"
	"sync"
	"time"
)

// Marker replaces each run of concealed bytes.
const Marker = "<concealed by opx>"

// maxDense bounds the dense transition table (states × byte classes,
// 4 bytes each): 2^21 entries is 8 MiB. Larger value sets use the sparse
// automaton, which is slower only inside partial matches.
const maxDense = 1 << 21

// Matcher finds occurrences of a fixed set of values. It is immutable and
// safe for concurrent use by many Writers.
type Matcher struct {
	maxLen int
	marker []byte

	// The trie, sparse: the children of state s are
	// edgeByte/edgeTo[edgeStart[s]:edgeStart[s+1]].
	edgeStart []int32
	edgeByte  []byte
	edgeTo    []int32
	fail      []int32
	// outLen[s] is the length of the longest value that ends at s (a
	// suffix of the string s spells), 0 when none; depth[s] is the length
	// of that string.
	outLen []int32
	depth  []int32
	root   [256]int32

	// The dense automaton, when it fits maxDense: the move from state s on
	// byte b is delta[s*nclass+class[b]], stored as the next state's row
	// offset (next*nclass), complemented when a value ends in it. Bytes
	// that occur in no value share class 0.
	class  [256]uint16
	nclass int
	delta  []int32
}

// NewMatcher builds the automaton of values; empty values are ignored.
func NewMatcher(values [][]byte) *Matcher { return newMatcher(values, maxDense) }

// SetMarker replaces Marker with marker for this matcher's writers (opx run
// as op run conceals with op's own marker). It is set before any use.
func (m *Matcher) SetMarker(marker string) { m.marker = []byte(marker) }

func newMatcher(values [][]byte, denseLimit int) *Matcher {
	type node struct {
		kids map[byte]int32
		term int32
	}
	nodes := []node{{}}
	m := &Matcher{marker: []byte(Marker)}
	for _, v := range values {
		if len(v) == 0 {
			continue
		}
		m.maxLen = max(m.maxLen, len(v))
		s := int32(0)
		for _, b := range v {
			next, ok := nodes[s].kids[b]
			if !ok {
				if nodes[s].kids == nil {
					nodes[s].kids = make(map[byte]int32, 1)
				}
				next = int32(len(nodes))
				nodes[s].kids[b] = next
				nodes = append(nodes, node{})
			}
			s = next
		}
		nodes[s].term = int32(len(v))
	}

	// Flatten the trie in state order, children sorted by byte.
	n := len(nodes)
	m.edgeStart = make([]int32, n+1)
	m.fail = make([]int32, n)
	m.outLen = make([]int32, n)
	m.depth = make([]int32, n)
	for s := range nodes {
		m.edgeStart[s] = int32(len(m.edgeByte))
		for b := 0; b < 256; b++ {
			if t, ok := nodes[s].kids[byte(b)]; ok {
				m.edgeByte = append(m.edgeByte, byte(b))
				m.edgeTo = append(m.edgeTo, t)
			}
		}
	}
	m.edgeStart[n] = int32(len(m.edgeByte))

	// Failure links and outputs, breadth first.
	queue := make([]int32, 0, n)
	for i := m.edgeStart[0]; i < m.edgeStart[1]; i++ {
		t := m.edgeTo[i]
		m.root[m.edgeByte[i]] = t
		m.depth[t] = 1
		m.outLen[t] = nodes[t].term
		queue = append(queue, t)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for i := m.edgeStart[s]; i < m.edgeStart[s+1]; i++ {
			b, t := m.edgeByte[i], m.edgeTo[i]
			m.fail[t] = m.sparseStep(m.fail[s], b)
			m.depth[t] = m.depth[s] + 1
			m.outLen[t] = max(nodes[t].term, m.outLen[m.fail[t]])
			queue = append(queue, t)
		}
	}

	// Byte classes: every byte that occurs in a value gets its own.
	m.nclass = 1
	for _, b := range m.edgeByte {
		if m.class[b] == 0 {
			m.class[b] = uint16(m.nclass)
			m.nclass++
		}
	}
	if n*m.nclass <= denseLimit {
		m.delta = make([]int32, n*m.nclass)
		var rep [257]byte // a byte of each class
		for b := 255; b >= 0; b-- {
			rep[m.class[b]] = byte(b)
		}
		// In breadth-first order a state's failure target is filled in
		// before the state itself.
		order := append([]int32{0}, m.bfs()...)
		for _, s := range order {
			row := m.delta[int(s)*m.nclass : int(s+1)*m.nclass]
			for c := 1; c < m.nclass; c++ {
				if t := m.child(s, rep[c]); t > 0 {
					row[c] = t
				} else if s != 0 {
					row[c] = m.delta[int(m.fail[s])*m.nclass+c]
				}
			}
		}
		// Now as Write reads it: the next state's row offset,
		// complemented when a value ends in that state.
		for i, t := range m.delta {
			off := t * int32(m.nclass)
			if m.outLen[t] != 0 {
				off = ^off
			}
			m.delta[i] = off
		}
	}
	return m
}

// bfs returns the states other than the root in breadth-first order.
func (m *Matcher) bfs() []int32 {
	var out []int32
	for i := m.edgeStart[0]; i < m.edgeStart[1]; i++ {
		out = append(out, m.edgeTo[i])
	}
	for k := 0; k < len(out); k++ {
		s := out[k]
		for i := m.edgeStart[s]; i < m.edgeStart[s+1]; i++ {
			out = append(out, m.edgeTo[i])
		}
	}
	return out
}

// child is the trie edge of s on b, or 0.
func (m *Matcher) child(s int32, b byte) int32 {
	for i := m.edgeStart[s]; i < m.edgeStart[s+1]; i++ {
		if m.edgeByte[i] == b {
			return m.edgeTo[i]
		}
		if m.edgeByte[i] > b {
			break
		}
	}
	return 0
}

// sparseStep is the automaton's move from s on b through failure links.
func (m *Matcher) sparseStep(s int32, b byte) int32 {
	for s != 0 {
		if t := m.child(s, b); t != 0 {
			return t
		}
		s = m.fail[s]
	}
	return m.root[b]
}

// MaxLen is the length of the longest value.
func (m *Matcher) MaxLen() int { return m.maxLen }

// IdleFlush is how long a Writer holds back bytes that could start a value
// before it writes them anyway. A value whose parts are written further
// apart than this is concealed only from the part after the pause.
const IdleFlush = 250 * time.Millisecond

// Writer conceals the Matcher's values in what is written to it and passes
// the rest to the underlying writer. It is safe for concurrent use.
type Writer struct {
	m   *Matcher
	w   io.Writer
	err error

	mu    sync.Mutex
	state int32
	pend  []byte // held back: the stream from position base on
	spare []byte // the other buffer hold copies into
	base  int64  // stream position of pend[0]
	pos   int64  // stream position of the next byte
	floor int64  // bytes before it were written: nothing before it is concealed any more
	// The runs of concealed bytes not yet written, in stream order, apart
	// from each other: a run is final once no occurrence can touch it.
	runs []run
	// open: the marker of runs[0] is written, and its bytes are dropped
	// as they come.
	open  bool
	timer *time.Timer
	idle  time.Duration
	due   time.Time // when the idle timer may flush

	// A terminal Writer's (NewTerminalWriter): where the stream is in a
	// control sequence, and the stream positions of the last MaxLen
	// bytes of text (those outside sequences), the nth at textAt[n%MaxLen].
	terminal bool
	seq      seqState
	seqLen   int   // bytes of the current sequence
	gap      int   // bytes of sequences since the last byte of text
	texts    int64 // bytes of text so far
	textAt   []int64
}

// run is [start, end) of the stream, to be replaced by one marker.
type run struct{ start, end int64 }

// NewWriter returns a Writer to w.
func NewWriter(m *Matcher, w io.Writer) *Writer {
	return &Writer{m: m, w: w, idle: IdleFlush}
}

// NewTerminalWriter returns a Writer to w for what a terminal emulator is
// sent, such as the output of a Windows pseudo console: there a value can
// come with control sequences between its bytes, and it is concealed all
// the same, with the sequences between. A pseudo console paints its screen
// in frames, each between "hide the cursor" and "show the cursor"
// (ESC [ ? 2 5 l ... ESC [ ? 2 5 h), and a value a program wrote in two
// parts a moment apart comes out split by them.
//
// A control sequence here is a CSI sequence (ESC [, parameter and
// intermediate bytes, a final byte) or an escape sequence (ESC,
// intermediate bytes, a final byte). The text of other strings (a window
// title: ESC ] ... BEL) is matched as text, as it is what a terminal
// shows. A value that holds an ESC byte is not found.
func NewTerminalWriter(m *Matcher, w io.Writer) *Writer {
	return &Writer{m: m, w: w, idle: IdleFlush, terminal: true, textAt: make([]int64, max(m.maxLen, 1))}
}

// seqState is where a terminal Writer's stream is: in text or in a
// control sequence.
type seqState uint8

const (
	inText seqState = iota
	afterESC
	inCSI
	inEscape // an escape sequence's intermediate bytes
)

// maxSeq bounds a control sequence (real ones are a few bytes): a longer
// run of parameter bytes is taken for text.
const maxSeq = 64

// maxGap bounds the bytes of sequences between two bytes of text of a
// value: past it a partial match is given up, so that what a Writer holds
// back stays bounded (a screen's repaint between two parts of a value is
// a few hundred bytes).
const maxGap = 1024

// inSequence reports whether b, the next byte of the stream, belongs to a
// control sequence, and moves w.seq on.
func (w *Writer) inSequence(b byte) bool {
	switch w.seq {
	case afterESC:
		switch {
		case b == '[':
			w.seq = inCSI
			return true
		case b >= 0x20 && b <= 0x2f:
			w.seq = inEscape
			return true
		case b >= 0x30 && b <= 0x7e && b != ']' && b != 'P' && b != 'X' && b != '^' && b != '_':
			w.seq = inText // a two-byte sequence: ESC 7, ESC M, ...
			return true
		}
		w.seq = inText // a string (OSC, DCS, ...) or no sequence: text from here
	case inCSI:
		w.seqLen++
		switch {
		case b >= 0x40 && b <= 0x7e:
			w.seq = inText
			return true
		case b >= 0x20 && b <= 0x3f && w.seqLen < maxSeq:
			return true
		}
		w.seq = inText
	case inEscape:
		w.seqLen++
		switch {
		case b >= 0x30 && b <= 0x7e:
			w.seq = inText
			return true
		case b >= 0x20 && b <= 0x2f && w.seqLen < maxSeq:
			return true
		}
		w.seq = inText
	}
	if b == 0x1b {
		w.seq = afterESC
		w.seqLen = 1
		return true
	}
	return false
}

// textPos is the stream position of the kth last byte of text (k >= 1).
func (w *Writer) textPos(k int32) int64 {
	return w.textAt[(w.texts-int64(k))%int64(len(w.textAt))]
}

// Write conceals and passes p on. It returns len(p) unless the underlying
// writer failed, and the first such error from then on.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	m := w.m
	start := w.pos // stream position of p[0]
	s := w.state
	floor := w.floor
	if w.terminal {
		s = w.scanTerminal(p, start, s, floor)
	} else if m.delta != nil {
		// The hot loop: one table load per byte. Entries are row offsets
		// of the next state, complemented when a value ends there.
		delta, class, nc := m.delta, &m.class, m.nclass
		row := int(s) * nc
		for i := 0; i < len(p); i++ {
			next := delta[row+int(class[p[i]])]
			if next >= 0 {
				row = int(next)
				continue
			}
			row = int(^next)
			end := start + int64(i) + 1
			w.found(end-int64(m.outLen[row/nc]), end, floor)
		}
		s = int32(row / nc)
	} else {
		for i := 0; i < len(p); i++ {
			if s == 0 {
				// Bytes that start no value.
				for i < len(p) && m.root[p[i]] == 0 {
					i++
				}
				if i == len(p) {
					break
				}
			}
			s = m.sparseStep(s, p[i])
			if l := m.outLen[s]; l != 0 {
				end := start + int64(i) + 1
				w.found(end-int64(l), end, floor)
			}
		}
	}
	w.state = s
	w.pos = start + int64(len(p))
	// Bytes before the start of the current partial match can be part of
	// no future occurrence: they are written, and a run that ends before
	// them can grow no more.
	safe := w.pos - int64(m.depth[s])
	if w.terminal && m.depth[s] > 0 {
		safe = w.textPos(m.depth[s])
	}
	w.settle(p, start, safe)
	w.hold(p, start)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// scanTerminal is Write's loop for a terminal Writer: the automaton, from
// state s, moves on the bytes of text of p and not on those of control
// sequences. It returns the state it ends in.
func (w *Writer) scanTerminal(p []byte, start int64, s int32, floor int64) int32 {
	m := w.m
	n := int64(len(w.textAt))
	for i, b := range p {
		if w.inSequence(b) {
			if w.gap++; w.gap > maxGap {
				s = 0 // the partial match is given up
			}
			continue
		}
		w.gap = 0
		pos := start + int64(i)
		w.textAt[w.texts%n] = pos
		w.texts++
		s = m.step(s, b)
		if l := m.outLen[s]; l != 0 {
			w.found(w.textPos(l), pos+1, floor)
		}
	}
	return s
}

// step is the automaton's move from s on b.
func (m *Matcher) step(s int32, b byte) int32 {
	if m.delta == nil {
		return m.sparseStep(s, b)
	}
	next := m.delta[int(s)*m.nclass+int(m.class[b])]
	if next < 0 {
		next = ^next
	}
	return next / int32(m.nclass)
}

// found records that a value (the longest ending here, which covers every
// shorter one) spans the stream from from to end.
func (w *Writer) found(from, end, floor int64) {
	if from = max(from, floor); from < end {
		w.add(run{from, end})
	}
}

// add merges an occurrence into the pending runs: it joins every run it
// overlaps or touches. Occurrences come in order of their end, so those are
// the last runs.
func (w *Writer) add(r run) {
	k := len(w.runs)
	for k > 0 && w.runs[k-1].end >= r.start {
		k--
		r.start = min(r.start, w.runs[k].start)
		r.end = max(r.end, w.runs[k].end)
	}
	w.runs = append(w.runs[:k], r)
}

// settle writes what is decided now that nothing can start before safe:
// the bytes before safe that no run covers, and the marker of a run as soon
// as its start is certain. The bytes of a run are dropped as they come,
// even while the run can still grow, so that what is held back is never
// more than the current partial match.
func (w *Writer) settle(p []byte, start, safe int64) {
	for len(w.runs) > 0 {
		r := w.runs[0]
		if !w.open {
			if r.start >= safe {
				break
			}
			w.emit(p, start, r.start)
			w.write(w.m.marker)
			w.open = true
		}
		w.base = max(w.base, r.end)
		w.floor = max(w.floor, w.base)
		if r.end >= safe {
			return // it may grow yet; all it covers so far is dropped
		}
		w.runs = append(w.runs[:0], w.runs[1:]...)
		w.open = false
	}
	limit := safe
	if len(w.runs) > 0 {
		limit = min(limit, w.runs[0].start)
	}
	w.emit(p, start, limit)
}

// emit writes the stream from w.base up to limit, taking bytes from pend
// (before start) and from p (from start on).
func (w *Writer) emit(p []byte, start, limit int64) {
	if limit <= w.base {
		return
	}
	if w.base < start {
		from := w.base - (start - int64(len(w.pend)))
		to := min(limit, start) - (start - int64(len(w.pend)))
		w.write(w.pend[from:to])
		w.base = min(limit, start)
	}
	if limit > w.base {
		w.write(p[w.base-start : limit-start])
		w.base = limit
	}
	w.floor = max(w.floor, w.base)
}

// hold keeps the bytes from w.base on (after this Write's p) in pend, and
// arms the idle timer when there are any.
func (w *Writer) hold(p []byte, start int64) {
	keep := int(w.pos - w.base)
	old := w.pend
	pendStart := start - int64(len(old))
	next := w.spare[:0]
	if w.base < start {
		next = append(next, old[w.base-pendStart:]...)
		next = append(next, p...)
	} else {
		next = append(next, p[w.base-start:]...)
	}
	clear(old)
	w.pend, w.spare = next, old[:0]
	if keep == 0 {
		if w.timer != nil {
			w.timer.Stop()
		}
		return
	}
	w.due = time.Now().Add(w.idle)
	if w.timer == nil {
		w.timer = time.AfterFunc(w.idle, w.flushIdle)
	} else {
		w.timer.Reset(w.idle)
	}
}

// flushIdle is the idle timer's: it flushes unless a Write came since the
// timer was armed (it may have waited for the lock while that Write held
// bytes back just now; the timer that Write armed comes later).
func (w *Writer) flushIdle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if time.Now().Before(w.due) {
		return
	}
	w.flushLocked()
}

// Flush writes everything held back: a pending run of concealed bytes as a
// marker, and the bytes that might have started a value as they are.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	return w.err
}

func (w *Writer) flushLocked() {
	for _, r := range w.runs {
		if !w.open {
			w.emit(nil, w.pos, r.start)
			w.write(w.m.marker)
		}
		w.base = max(w.base, r.end)
		w.open = false
	}
	w.runs = w.runs[:0]
	w.emit(nil, w.pos, w.pos)
	clear(w.pend)
	w.pend = w.pend[:0]
	w.floor = w.pos
	if w.timer != nil {
		w.timer.Stop()
	}
}

// Close flushes and stops the idle timer; it does not close the underlying
// writer.
func (w *Writer) Close() error { return w.Flush() }

func (w *Writer) write(b []byte) {
	if w.err != nil || len(b) == 0 {
		return
	}
	_, w.err = w.w.Write(b)
}
