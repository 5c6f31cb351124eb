package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/session"
)

func newTestCore(t testing.TB, b backend.Backend, cfg coreConfig) (*core, *session.Session) {
	t.Helper()
	if cfg.TTL == 0 {
		cfg.TTL = time.Minute
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = 10000
	}
	if cfg.BackendTimeout == 0 {
		cfg.BackendTimeout = 10 * time.Second
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = 4
	}
	var c *core
	s := session.New(true, time.Hour, func(string) { c.wipe() })
	c = newCore(cfg, b, s, zerolog.Nop())
	t.Cleanup(func() { c.close(); s.Close() })
	return c, s
}

func value(t *testing.T, o outcome) string {
	t.Helper()
	if o.err != nil {
		t.Fatalf("outcome error %s: %s", o.err.Code, o.err.Message)
	}
	return string(o.value)
}

func TestCoreCoalescesConcurrentReadsOfOneRef(t *testing.T) {
	fake := backend.NewFake(200 * time.Millisecond)
	c, _ := newTestCore(t, fake, coreConfig{})
	const n = 50
	var wg sync.WaitGroup
	got := make([]outcome, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/f"}, -1)[0]
		}()
	}
	wg.Wait()
	want := backend.FakeValue("", "op://v/i/f")
	for i, o := range got {
		if v := value(t, o); v != want {
			t.Fatalf("reader %d got %q, want %q", i, v, want)
		}
	}
	if calls := fake.Calls(); calls != 1 {
		t.Errorf("backend calls = %d, want 1", calls)
	}
	if co := c.coalesced.Load(); co != n-1 {
		t.Errorf("coalesced = %d, want %d", co, n-1)
	}
}

func TestCoreBatchesTheMissesOfOneRequest(t *testing.T) {
	fake := backend.NewFake(50 * time.Millisecond)
	c, _ := newTestCore(t, fake, coreConfig{})
	refs := make([]string, 100)
	for i := range refs {
		refs[i] = fmt.Sprintf("op://v/item%d/f", i)
	}
	outs := c.resolve(context.Background(), "acct", backend.Desktop, refs, -1)
	for i, o := range outs {
		if v, want := value(t, o), backend.FakeValue("acct", refs[i]); v != want {
			t.Fatalf("ref %s = %q, want %q", refs[i], v, want)
		}
	}
	if calls := fake.Calls(); calls != 1 {
		t.Errorf("backend calls = %d, want 1 for one request", calls)
	}
	// All cached now: a second read makes no call.
	for _, o := range c.resolve(context.Background(), "acct", backend.Desktop, refs, -1) {
		if !o.fromCache {
			t.Fatal("second read was not served from the cache")
		}
	}
	if calls := fake.Calls(); calls != 1 {
		t.Errorf("backend calls after cached read = %d, want 1", calls)
	}
}

func TestCoreJoinsConcurrentRequestsInOneWindow(t *testing.T) {
	fake := backend.NewFake(100 * time.Millisecond)
	c, _ := newTestCore(t, fake, coreConfig{})
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			value(t, c.resolve(context.Background(), "", backend.Desktop, []string{fmt.Sprintf("vault://kv/app%d#k", i)}, -1)[0])
		}()
	}
	close(start)
	wg.Wait()
	if calls := fake.Calls(); calls > 2 {
		t.Errorf("20 concurrent requests made %d backend calls, want at most 2", calls)
	}
}

func TestCoreCallerHangingUpDoesNotFailOthers(t *testing.T) {
	fake := backend.NewFake(200 * time.Millisecond)
	c, _ := newTestCore(t, fake, coreConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan outcome, 1)
	go func() { first <- c.resolve(ctx, "", backend.Desktop, []string{"op://v/i/f"}, -1)[0] }()
	time.Sleep(20 * time.Millisecond) // the first request owns the fetch
	second := make(chan outcome, 1)
	go func() { second <- c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/f"}, -1)[0] }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if o := <-first; o.err == nil {
		t.Error("cancelled caller got a value, want an error")
	}
	if v := value(t, <-second); v != backend.FakeValue("", "op://v/i/f") {
		t.Errorf("second caller got %q", v)
	}
	if calls := fake.Calls(); calls != 1 {
		t.Errorf("backend calls = %d, want 1", calls)
	}
}

func TestCoreTTLExpiryFetchesAgain(t *testing.T) {
	fake := backend.NewFake(0)
	c, _ := newTestCore(t, fake, coreConfig{TTL: 50 * time.Millisecond})
	ref := []string{"op://v/i/f"}
	value(t, c.resolve(context.Background(), "", backend.Desktop, ref, -1)[0])
	if o := c.resolve(context.Background(), "", backend.Desktop, ref, -1)[0]; !o.fromCache {
		t.Fatal("read within the TTL was not a cache hit")
	}
	time.Sleep(80 * time.Millisecond)
	if o := c.resolve(context.Background(), "", backend.Desktop, ref, -1)[0]; o.fromCache {
		t.Fatal("read after the TTL was served from the cache")
	}
	if calls := fake.Calls(); calls != 2 {
		t.Errorf("backend calls = %d, want 2", calls)
	}
}

func TestCoreLockWipesAndRefuses(t *testing.T) {
	fake := backend.NewFake(0)
	c, s := newTestCore(t, fake, coreConfig{})
	value(t, c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/f"}, -1)[0])
	it := c.cache.Get(cacheKey{who{}, "op://v/i/f"})
	if it == nil {
		t.Fatal("value not cached")
	}
	held := it.Value()
	raw := held.b // the bytes the cache held, checked after the wipe
	s.Lock(session.ReasonManual)
	if n := c.cache.Len(); n != 0 {
		t.Errorf("cache size after lock = %d, want 0", n)
	}
	if _, ok := held.copyValue(); ok {
		t.Error("cached secret still readable after lock")
	}
	for _, b := range raw {
		if b != 0 {
			t.Fatal("cached secret not zeroed")
		}
	}
	o := c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/f"}, -1)[0]
	if o.err == nil || o.err.Code != api.CodeSessionLocked {
		t.Fatalf("read while locked = %+v, want session_locked", o.err)
	}
	s.Unlock()
	value(t, c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/f"}, -1)[0])
}

func TestCoreLockDuringFetchKeepsNothing(t *testing.T) {
	fake := backend.NewFake(150 * time.Millisecond)
	c, s := newTestCore(t, fake, coreConfig{})
	done := make(chan outcome, 1)
	go func() { done <- c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/f"}, -1)[0] }()
	time.Sleep(30 * time.Millisecond)
	s.Lock(session.ReasonManual)
	o := <-done
	if o.err == nil || o.err.Code != api.CodeSessionLocked {
		t.Fatalf("fetch across a lock = %+v, want session_locked", o.err)
	}
	if n := c.cache.Len(); n != 0 {
		t.Errorf("cache size = %d after a fetch that straddled a lock, want 0", n)
	}
}

func TestCoreCapacityEvictsAndWipes(t *testing.T) {
	fake := backend.NewFake(0)
	c, _ := newTestCore(t, fake, coreConfig{Capacity: 10})
	refs := make([]string, 25)
	for i := range refs {
		refs[i] = fmt.Sprintf("op://v/i%d/f", i)
	}
	for _, o := range c.resolve(context.Background(), "", backend.Desktop, refs, -1) {
		value(t, o)
	}
	if n := c.cache.Len(); n != 10 {
		t.Errorf("cache size = %d, want the cap 10", n)
	}
}

func TestCoreBackendTimeout(t *testing.T) {
	fake := backend.NewFake(time.Second)
	c, _ := newTestCore(t, fake, coreConfig{BackendTimeout: 50 * time.Millisecond})
	o := c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/f"}, -1)[0]
	if o.err == nil || o.err.Code != api.CodeBackendTimeout {
		t.Fatalf("slow backend = %+v, want backend_timeout", o.err)
	}
	if n := c.cache.Len(); n != 0 {
		t.Errorf("an error was cached")
	}
}

// scripted is a backend whose answers a test chooses per ref.
type scripted struct {
	calls  atomic.Uint64
	answer func(ref string) backend.Result
}

func (s *scripted) Name() string                             { return "scripted" }
func (s *scripted) Check(api.Ref) error                      { return nil }
func (s *scripted) Validate(context.Context, []string) error { return nil }
func (s *scripted) Calls() uint64                            { return s.calls.Load() }
func (s *scripted) Close() error                             { return nil }
func (s *scripted) Read(_ context.Context, _ string, refs []string) []backend.Result {
	s.calls.Add(1)
	out := make([]backend.Result, len(refs))
	for i, r := range refs {
		out[i] = s.answer(r)
	}
	return out
}

func TestCorePerRefErrorsAndAuthLock(t *testing.T) {
	b := &scripted{answer: func(ref string) backend.Result {
		switch ref {
		case "op://v/missing/f":
			return backend.Result{Err: api.Errorf(api.CodeNotFound, "no such item")}
		case "op://v/auth/f":
			return backend.Result{Err: api.Errorf(api.CodeUnauthorized, "not signed in")}
		}
		return backend.Result{Value: []byte("ok:" + ref)}
	}}
	c, s := newTestCore(t, b, coreConfig{LockOnAuthFail: true})
	outs := c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/good/f", "op://v/missing/f"}, -1)
	if v := value(t, outs[0]); v != "ok:op://v/good/f" {
		t.Errorf("good ref = %q", v)
	}
	if outs[1].err == nil || outs[1].err.Code != api.CodeNotFound {
		t.Errorf("missing ref = %+v, want not_found", outs[1].err)
	}
	if o := c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/good/f"}, -1)[0]; !o.fromCache {
		t.Error("good ref of a batch with an error was not cached")
	}
	value(t, c.resolve(context.Background(), "team", backend.Desktop, []string{"op://v/good/f"}, -1)[0])
	c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/auth/f"}, -1)
	if s.Locked() {
		t.Error("an auth failure of one account locked the whole session")
	}
	if o := c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/good/f"}, -1)[0]; o.err == nil || o.err.Code != api.CodeSessionLocked {
		t.Errorf("read of the account that failed auth = %+v, want session_locked", o)
	}
	if o := c.resolve(context.Background(), "team", backend.Desktop, []string{"op://v/good/f"}, -1)[0]; !o.fromCache {
		t.Errorf("another account's cached value = %+v, want it served from the cache", o)
	}
	if n := c.cache.Len(); n != 1 {
		t.Errorf("cache holds %d values, want only the other account's 1", n)
	}
	c.unlockAccount("")
	value(t, c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/good/f"}, -1)[0])
}

// A fetch for an account that runs while the account is locked is not
// stored, even once the account is unlocked again.
func TestCoreAccountLockDropsFetchInFlight(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	b := &scripted{answer: func(ref string) backend.Result {
		started <- struct{}{}
		<-release
		return backend.Result{Value: []byte("v")}
	}}
	c, _ := newTestCore(t, b, coreConfig{LockOnAuthFail: true})
	done := make(chan outcome, 1)
	go func() {
		done <- c.resolve(context.Background(), "team", backend.Desktop, []string{"op://v/i/f"}, -1)[0]
	}()
	<-started
	c.lockAccount("team", "not signed in; sign in with: opx login 1password --account team")
	c.unlockAccount("team")
	close(release)
	if o := <-done; o.ok || o.err == nil || o.err.Code != api.CodeSessionLocked {
		t.Errorf("read whose account locked while it ran = %+v, want session_locked", o)
	}
	if n := c.cache.Len(); n != 0 {
		t.Errorf("a value fetched across an account lock was cached")
	}
}

func TestCoreShortTTLFromBackend(t *testing.T) {
	b := &scripted{answer: func(string) backend.Result {
		return backend.Result{Value: []byte("123456"), TTL: 40 * time.Millisecond}
	}}
	c, _ := newTestCore(t, b, coreConfig{TTL: time.Hour})
	value(t, c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/otp?attribute=otp"}, -1)[0])
	time.Sleep(60 * time.Millisecond)
	if o := c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/otp?attribute=otp"}, -1)[0]; o.fromCache {
		t.Error("value served past the TTL its backend gave")
	}
}

func TestCoreEmptyValueIsAValue(t *testing.T) {
	b := &scripted{answer: func(string) backend.Result { return backend.Result{Value: []byte{}} }}
	c, _ := newTestCore(t, b, coreConfig{})
	for range 2 {
		o := c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/empty"}, -1)[0]
		if o.err != nil || len(o.value) != 0 {
			t.Fatalf("empty value = %+v", o)
		}
	}
	if n := b.Calls(); n != 1 {
		t.Errorf("backend calls = %d, want 1 (empty value cached)", n)
	}
}

// A request's max age sends an older cached value back to the backend,
// and the fresh value replaces it for everyone; requests that want a
// fresh value at once share one backend call.
func TestCoreMaxAge(t *testing.T) {
	fake := backend.NewFake(50 * time.Millisecond)
	c, _ := newTestCore(t, fake, coreConfig{})
	ref := []string{"op://v/i/f"}
	ctx := context.Background()
	value(t, c.resolve(ctx, "", backend.Desktop, ref, -1)[0])
	if o := c.resolve(ctx, "", backend.Desktop, ref, time.Hour)[0]; !o.fromCache || fake.Calls() != 1 {
		t.Fatalf("max age 1h: from cache %v, %d backend calls", o.fromCache, fake.Calls())
	}
	time.Sleep(5 * time.Millisecond)
	if o := c.resolve(ctx, "", backend.Desktop, ref, time.Millisecond)[0]; o.fromCache || fake.Calls() != 2 {
		t.Fatalf("max age 1ms on a 5ms-old value: from cache %v, %d backend calls", o.fromCache, fake.Calls())
	}
	if o := c.resolve(ctx, "", backend.Desktop, ref, -1)[0]; !o.fromCache || fake.Calls() != 2 {
		t.Errorf("the fresh value did not replace the cached one: from cache %v, %d calls", o.fromCache, fake.Calls())
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { value(t, c.resolve(ctx, "", backend.Desktop, ref, 0)[0]) })
	}
	wg.Wait()
	if calls := fake.Calls(); calls != 3 {
		t.Errorf("10 concurrent reads with max age 0 made %d backend calls, want 1", calls-2)
	}
}

// A lock that comes after a fetched value is stored and before its waiters
// copy it: the waiters get the lock's error, not the value.
func TestCoreLockBetweenStoreAndServe(t *testing.T) {
	for _, tc := range []struct {
		name string
		lock func(c *core, s *session.Session)
	}{
		{"account", func(c *core, _ *session.Session) { c.lockAccount("team", "not signed in") }},
		{"session", func(_ *core, s *session.Session) { s.Lock(session.ReasonManual) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &scripted{answer: func(string) backend.Result { return backend.Result{Value: []byte("v")} }}
			c, s := newTestCore(t, b, coreConfig{LockOnAuthFail: true})
			c.testHookAfterStore = func() { tc.lock(c, s) }
			o := c.resolve(context.Background(), "team", backend.Desktop, []string{"op://v/i/f"}, -1)[0]
			if o.ok || o.err == nil || o.err.Code != api.CodeSessionLocked {
				t.Errorf("read locked between store and serve = %+v, want session_locked", o)
			}
		})
	}
}

// With --stale-if-error, a failed fetch is answered with the expired value,
// marked stale, within the window; a value the backend gave a short life
// (a one-time password) never is, nor is anything after "not found".
func TestCoreStaleIfError(t *testing.T) {
	var fail atomic.Value // the error every read gets; nil for none
	b := &scripted{answer: func(ref string) backend.Result {
		if e, _ := fail.Load().(*api.Error); e != nil {
			return backend.Result{Err: e}
		}
		if strings.Contains(ref, "otp") {
			return backend.Result{Value: []byte("123456"), TTL: 30 * time.Millisecond}
		}
		return backend.Result{Value: []byte("v:" + ref)}
	}}
	c, _ := newTestCore(t, b, coreConfig{TTL: 30 * time.Millisecond, StaleIfError: time.Hour})
	refs := []string{"op://v/i/f", "op://v/i/otp"}
	for _, o := range c.resolve(context.Background(), "", backend.Desktop, refs, -1) {
		value(t, o)
	}
	time.Sleep(50 * time.Millisecond)
	fail.Store(api.Errorf(api.CodeBackendTimeout, "op did not answer"))
	outs := c.resolve(context.Background(), "", backend.Desktop, refs, -1)
	if o := outs[0]; !o.ok || !o.stale || string(o.value) != "v:op://v/i/f" {
		t.Errorf("expired value while the backend fails = %+v, want it, stale", o)
	}
	if o := outs[1]; o.ok || o.err == nil {
		t.Errorf("one-time password while the backend fails = %+v, want the error", o)
	}
	fail.Store(api.Errorf(api.CodeNotFound, "no such item"))
	if o := c.resolve(context.Background(), "", backend.Desktop, refs[:1], -1)[0]; o.ok {
		t.Errorf("value served stale after not_found: %+v", o)
	}
}

// A value read twice is fetched again before it expires, in the
// background; once the session locks, no refresh is made.
func TestCoreRefreshAhead(t *testing.T) {
	b := &scripted{answer: func(ref string) backend.Result { return backend.Result{Value: []byte("v")} }}
	c, s := newTestCore(t, b, coreConfig{TTL: 200 * time.Millisecond, RefreshAhead: true})
	read := func() outcome {
		return c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/f"}, -1)[0]
	}
	value(t, read()) // fetched
	if o := read(); !o.fromCache {
		t.Fatalf("second read = %+v", o)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.refreshes.Load() == 0 || b.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no refresh: %d refreshes, %d backend calls", c.refreshes.Load(), b.calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The refreshed value is in the cache before the old one expires.
	time.Sleep(10 * time.Millisecond)
	if o := read(); !o.fromCache {
		t.Errorf("read after the refresh = %+v, want it from the cache", o)
	}
	read() // the refreshed value's second read: a refresh is due again
	s.Lock(session.ReasonManual)
	calls := b.calls.Load()
	time.Sleep(300 * time.Millisecond)
	if n := b.calls.Load(); n != calls {
		t.Errorf("%d backend calls after the lock, want none", n-calls)
	}
}

// appLocking is a backend of 1Password accounts whose app a test locks:
// a locked account's every ref fails as op fails then (unauthorized). It
// counts the calls per account.
type appLocking struct {
	mu     sync.Mutex
	locked map[string]bool
	calls  map[string]int
}

func newAppLocking() *appLocking {
	return &appLocking{locked: map[string]bool{}, calls: map[string]int{}}
}

func (a *appLocking) setLocked(account string, locked bool) {
	a.mu.Lock()
	a.locked[account] = locked
	a.mu.Unlock()
}

func (a *appLocking) callsFor(account string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[account]
}

func (a *appLocking) Name() string                             { return "applocking" }
func (a *appLocking) Check(api.Ref) error                      { return nil }
func (a *appLocking) Validate(context.Context, []string) error { return nil }
func (a *appLocking) Close() error                             { return nil }
func (a *appLocking) Calls() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.calls {
		n += c
	}
	return uint64(n)
}

func (a *appLocking) Read(_ context.Context, account string, refs []string) []backend.Result {
	a.mu.Lock()
	a.calls[account]++
	locked := a.locked[account]
	a.mu.Unlock()
	out := make([]backend.Result, len(refs))
	for i, ref := range refs {
		if locked {
			out[i].Err = api.Errorf(api.CodeUnauthorized, "1Password CLI: error initializing client: authorization timeout; the 1Password app is locked or did not authorize op: unlock the 1Password app, then run: opx unlock")
			continue
		}
		out[i].Value = []byte(account + ":" + ref)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// When 1Password's app locks for one account, the first op answer that
// says so locks that account: its cached values are wiped at once (a read
// of one gets session_locked, not the value), a refresh ahead of expiry
// that came due for it asks op nothing until opx unlock, and another
// account's steady reader goes on being served and refreshed. Issue 27.
func TestCoreLockedAppLocksItsAccountsValues(t *testing.T) {
	b := newAppLocking()
	c, s := newTestCore(t, b, coreConfig{TTL: 200 * time.Millisecond, RefreshAhead: true, LockOnAuthFail: true})
	read := func(account, ref string) outcome {
		return c.resolve(context.Background(), account, backend.Desktop, []string{ref}, -1)[0]
	}
	// Both accounts' values are read twice: each has a refresh due.
	for range 2 {
		value(t, read("team", "op://v/i/f"))
		value(t, read("", "op://v/i/f"))
	}
	b.setLocked("team", true)
	if o := read("team", "op://v/other/f"); o.err == nil || o.err.Code != api.CodeUnauthorized || !strings.Contains(o.err.Message, "unlock the 1Password app") {
		t.Fatalf("read of an uncached ref while team's app is locked = %+v, want unauthorized", o)
	}
	if s.Locked() {
		t.Error("one account's locked app locked the whole session")
	}
	if o := read("team", "op://v/i/f"); o.ok || o.err == nil || o.err.Code != api.CodeSessionLocked || !strings.Contains(o.err.Message, "account team") {
		t.Errorf("cached value of the locked account = %+v, want session_locked and no value", o)
	}
	for _, it := range c.cache.Items() {
		if it.Key().who.account == "team" {
			t.Errorf("the locked account's value for %s is still cached", it.Key().ref)
		}
	}
	if l := c.lockedAccounts(); len(l) != 1 || l[0].Account != "team" || !strings.Contains(l[0].Reason, "authorization timeout") {
		t.Errorf("locked accounts = %+v, want team, with op's answer", l)
	}
	// A steady reader of each account, past two lifetimes of a value: the
	// default account is served and refreshed ahead, team asks op nothing.
	teamCalls, refreshes := b.callsFor("team"), c.refreshes.Load()
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if v := value(t, read("", "op://v/i/f")); v != ":op://v/i/f" {
			t.Fatalf("default account read = %q", v)
		}
		if o := read("team", "op://v/i/f"); o.ok {
			t.Fatal("the locked account's value was served")
		}
	}
	if n := b.callsFor("team"); n != teamCalls {
		t.Errorf("%d op calls for the locked account after its lock, want none", n-teamCalls)
	}
	if c.refreshes.Load() == refreshes {
		t.Error("the default account's steady reader had no refresh ahead while team was locked")
	}
	b.setLocked("team", false)
	c.unlockAccount("team")
	if v := value(t, read("team", "op://v/i/f")); v != "team:op://v/i/f" || b.callsFor("team") != teamCalls+1 {
		t.Errorf("read after unlock = %q with %d op calls, want it fetched again with one", v, b.callsFor("team")-teamCalls)
	}
}

// With no reader at all, the refresh ahead of expiry that meets the locked
// app locks the account and wipes its values; no refresh follows it.
func TestCoreRefreshThatMeetsALockedAppLocks(t *testing.T) {
	b := newAppLocking()
	c, _ := newTestCore(t, b, coreConfig{TTL: 200 * time.Millisecond, RefreshAhead: true, LockOnAuthFail: true})
	for range 2 {
		value(t, c.resolve(context.Background(), "team", backend.Desktop, []string{"op://v/i/f"}, -1)[0])
	}
	b.setLocked("team", true)
	waitFor(t, "the refresh to lock team", func() bool { return len(c.lockedAccounts()) == 1 })
	if n := c.cache.Len(); n != 0 {
		t.Errorf("%d values cached after the refresh met the locked app, want none", n)
	}
	calls := b.callsFor("team")
	time.Sleep(400 * time.Millisecond)
	if n := b.callsFor("team"); n != calls {
		t.Errorf("%d op calls for team after its lock, want none", n-calls)
	}
}

// With --no-lock-on-auth-failure, an authentication failure fails its own
// reads and locks nothing: the account's cached values are still served.
func TestCoreAuthFailureWithoutLockOnAuthFailure(t *testing.T) {
	b := newAppLocking()
	c, _ := newTestCore(t, b, coreConfig{})
	value(t, c.resolve(context.Background(), "team", backend.Desktop, []string{"op://v/i/f"}, -1)[0])
	b.setLocked("team", true)
	if o := c.resolve(context.Background(), "team", backend.Desktop, []string{"op://v/other/f"}, -1)[0]; o.err == nil || o.err.Code != api.CodeUnauthorized {
		t.Fatalf("read while the app is locked = %+v, want unauthorized", o)
	}
	if o := c.resolve(context.Background(), "team", backend.Desktop, []string{"op://v/i/f"}, -1)[0]; !o.fromCache {
		t.Errorf("cached value after an auth failure without the lock = %+v, want it served", o)
	}
	if l := c.lockedAccounts(); len(l) != 0 {
		t.Errorf("locked accounts = %+v, want none", l)
	}
}
