package daemon

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/opxhq/opx/api"
)

// identifySlots is how many connections of one process are identified at
// once: a process that floods the daemon waits for its own slots, and every
// other process has slots of its own.
const identifySlots = 2

// Past api.MaxConns, a process holding fewer than reserveUnder connections
// still gets one, until connReserve more are open.
const (
	reserveUnder = 8
	connReserve  = 1024
)

// refusalLogEvery spaces the log lines about one process's refused
// connections or bodies.
const refusalLogEvery = 10 * time.Second

// connTable counts the connections of each process (by the pid its peer
// credentials name), so that one process cannot take the daemon for itself:
// its connections past api.MaxConnsPerProcess are refused at once, its
// identifications run identifySlots at a time, and the request bodies it
// has pending are bounded (api.MaxBodyBytesPerProcess, and
// api.MaxBodyBytesTotal for every process together).
type connTable struct {
	log func(refusal)

	mu     sync.Mutex
	byPID  map[int]*procConns
	open   int
	bodies *semaphore.Weighted

	refused, bodiesRefused atomic.Uint64
}

// procConns is one process's entry: guarded by connTable.mu but slots.
type procConns struct {
	pid       int
	open      int
	bodyBytes int64
	slots     chan struct{} // identifications under way
	// Refusals not logged yet, and when the last line was.
	unlogged, unloggedBodies uint64
	logged                   time.Time
}

// refusal is what the daemon logs about refused connections or bodies of
// one process.
type refusal struct {
	PID                 int
	Open                int // the process's connections open now
	Total               int // every process's
	Conns, Bodies       uint64
	PendingBodyBytes    int64
	ConnLimit, AllLimit int
}

func newConnTable(log func(refusal)) *connTable {
	return &connTable{log: log, byPID: map[int]*procConns{}, bodies: semaphore.NewWeighted(api.MaxBodyBytesTotal)}
}

// admit counts a new connection of process pid (0: credentials unknown),
// or reports false when the process or the daemon holds too many.
func (t *connTable) admit(pid int) (*procConns, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.byPID[pid]
	if p == nil {
		p = &procConns{pid: pid, slots: make(chan struct{}, identifySlots)}
		t.byPID[pid] = p
	}
	// Past api.MaxConns, only a process that holds few connections gets
	// one more, from a reserve: the processes that filled the daemon do
	// not lock out one that asks for a read.
	full := t.open >= api.MaxConns && (p.open >= reserveUnder || t.open >= api.MaxConns+connReserve)
	if p.open >= api.MaxConnsPerProcess || full {
		t.refused.Add(1)
		p.unlogged++
		t.logLocked(p)
		if p.open == 0 && p.bodyBytes == 0 {
			delete(t.byPID, pid)
		}
		return nil, false
	}
	p.open++
	t.open++
	return p, true
}

// release gives a closed connection's place back.
func (t *connTable) release(p *procConns) {
	if p == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p.open--
	t.open--
	t.forgetLocked(p)
}

// forgetLocked drops p once it holds nothing, logging what was refused
// since the last line. t.mu is held.
func (t *connTable) forgetLocked(p *procConns) {
	if p.open > 0 || p.bodyBytes > 0 {
		return
	}
	if p.unlogged+p.unloggedBodies > 0 {
		p.logged = time.Time{}
		t.logLocked(p)
	}
	if t.byPID[p.pid] == p {
		delete(t.byPID, p.pid)
	}
}

// logLocked tells the log of p's refusals, at most every refusalLogEvery
// (the rest are counted into the next line). t.mu is held.
func (t *connTable) logLocked(p *procConns) {
	now := time.Now()
	if t.log == nil || now.Sub(p.logged) < refusalLogEvery {
		return
	}
	t.log(refusal{PID: p.pid, Open: p.open, Total: t.open, Conns: p.unlogged, Bodies: p.unloggedBodies,
		PendingBodyBytes: p.bodyBytes, ConnLimit: api.MaxConnsPerProcess, AllLimit: api.MaxConns})
	p.unlogged, p.unloggedBodies, p.logged = 0, 0, now
}

// openNow is the number of connections open.
func (t *connTable) openNow() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.open
}

// reserveBody holds n bytes of request body for p until release is called:
// it refuses at once when p has api.MaxBodyBytesPerProcess pending already,
// and waits (until ctx ends) while every process together has
// api.MaxBodyBytesTotal.
func (t *connTable) reserveBody(ctx context.Context, p *procConns, n int64) (release func(), e *api.Error) {
	if t == nil || p == nil || n <= 0 {
		return func() {}, nil
	}
	t.mu.Lock()
	if p.bodyBytes+n > api.MaxBodyBytesPerProcess {
		pending := p.bodyBytes
		t.bodiesRefused.Add(1)
		p.unloggedBodies++
		t.logLocked(p)
		t.mu.Unlock()
		e := api.Errorf(api.CodeRateLimited, "this process has %d bytes of request bodies pending already; the daemon buffers at most %d for one process: wait for its other requests", pending, api.MaxBodyBytesPerProcess)
		e.RetryAfterSeconds = 1
		return nil, e
	}
	p.bodyBytes += n
	t.mu.Unlock()
	giveBack := func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		p.bodyBytes -= n
		t.forgetLocked(p)
	}
	if err := t.bodies.Acquire(ctx, n); err != nil {
		giveBack()
		return nil, api.Errorf(api.CodeBadRequest, "the request ended while it waited for room to read its body (%d bytes are pending from every process)", api.MaxBodyBytesTotal)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			t.bodies.Release(n)
			giveBack()
		})
	}, nil
}

// status is the table's counters for /v1/status.
func (t *connTable) status() api.Connections {
	if t == nil {
		return api.Connections{}
	}
	return api.Connections{Open: t.openNow(), Refused: t.refused.Load(), BodiesRefused: t.bodiesRefused.Load()}
}

// String describes r for the log.
func (r refusal) String() string {
	return fmt.Sprintf("process %d: %d connections refused and %d request bodies refused", r.PID, r.Conns, r.Bodies)
}
