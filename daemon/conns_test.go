package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
)

// One process gets at most api.MaxConnsPerProcess connections; the next
// is refused (and logged once), another process is not affected, and a
// closed connection's place is given back.
func TestConnTableCapsOneProcess(t *testing.T) {
	var logged []refusal
	tab := newConnTable(func(r refusal) { logged = append(logged, r) })
	var held []*procConns
	for i := range api.MaxConnsPerProcess {
		p, ok := tab.admit(100)
		if !ok {
			t.Fatalf("connection %d of one process refused; the limit is %d", i+1, api.MaxConnsPerProcess)
		}
		held = append(held, p)
	}
	for range 3 {
		if _, ok := tab.admit(100); ok {
			t.Fatalf("connection %d of one process admitted; the limit is %d", api.MaxConnsPerProcess+1, api.MaxConnsPerProcess)
		}
	}
	if _, ok := tab.admit(200); !ok {
		t.Error("another process was refused while one process held its limit")
	}
	if st := tab.status(); st.Refused != 3 || st.Open != api.MaxConnsPerProcess+1 {
		t.Errorf("status = %+v, want 3 refused and %d open", st, api.MaxConnsPerProcess+1)
	}
	if len(logged) != 1 || logged[0].PID != 100 || logged[0].Conns != 1 {
		t.Errorf("log lines = %+v; want one, at the first refusal", logged)
	}
	tab.release(held[0])
	if _, ok := tab.admit(100); !ok {
		t.Error("a place given back was not taken again")
	}
}

// Request bodies pending before the policy decides are bounded per
// process (refused at once) and for every process together (waited for).
func TestConnTableBoundsPendingBodies(t *testing.T) {
	tab := newConnTable(nil)
	ctx := context.Background()
	a, _ := tab.admit(1)
	rel, e := tab.reserveBody(ctx, a, api.MaxBodyBytesPerProcess)
	if e != nil {
		t.Fatalf("a process's first body of the whole share: %v", e)
	}
	if _, e := tab.reserveBody(ctx, a, 1); e == nil || e.Code != api.CodeRateLimited {
		t.Fatalf("a byte past one process's share = %v, want rate_limited", e)
	}
	rel()
	rel2, e := tab.reserveBody(ctx, a, 1)
	if e != nil {
		t.Fatalf("after the release: %v", e)
	}
	rel2()
	if st := tab.status(); st.BodiesRefused != 1 {
		t.Errorf("bodies refused = %d, want 1", st.BodiesRefused)
	}

	// Every process together: the share of eight fills the daemon's bound;
	// a ninth waits, and gets its room once one is released.
	var rels []func()
	for pid := 10; pid < 10+api.MaxBodyBytesTotal/api.MaxBodyBytesPerProcess; pid++ {
		p, _ := tab.admit(pid)
		r, e := tab.reserveBody(ctx, p, api.MaxBodyBytesPerProcess)
		if e != nil {
			t.Fatalf("process %d: %v", pid, e)
		}
		rels = append(rels, r)
	}
	late, _ := tab.admit(99)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, e := tab.reserveBody(short, late, 1); e == nil {
		t.Fatal("a body past the daemon's bound was not made to wait")
	}
	got := make(chan *api.Error, 1)
	go func() {
		r, e := tab.reserveBody(ctx, late, 1)
		if r != nil {
			r()
		}
		got <- e
	}()
	rels[0]()
	if e := <-got; e != nil {
		t.Errorf("after room was released: %v", e)
	}
	for _, r := range rels[1:] {
		r()
	}
}

// When every process together holds api.MaxConns, a process that holds
// next to none still gets a connection from the reserve; those that filled
// the daemon do not.
func TestConnTableKeepsAReserveForOthers(t *testing.T) {
	tab := newConnTable(nil)
	for pid := 1; pid <= api.MaxConns/api.MaxConnsPerProcess; pid++ {
		for range api.MaxConnsPerProcess - 1 {
			if _, ok := tab.admit(pid); !ok {
				t.Fatalf("process %d refused below every limit", pid)
			}
		}
	}
	for tab.openNow() < api.MaxConns {
		tab.admit(1000 + tab.openNow()) // one each
	}
	if _, ok := tab.admit(1); ok {
		t.Error("a process holding many connections got one past the daemon's limit")
	}
	if _, ok := tab.admit(99999); !ok {
		t.Error("a process holding none was refused when the daemon was full")
	}
}
