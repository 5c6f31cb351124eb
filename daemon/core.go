package daemon

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jellydator/ttlcache/v3"
	"github.com/rs/zerolog"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/scrub"
	"github.com/opxhq/opx/session"
)

// who is whom a read is for: a 1Password account as requests name it (""
// for the default one), read as an identity: "" for the daemon's own (op's
// sign-in, or the service account its environment names), else the
// fingerprint of the service account or Connect server the request names.
// The same ref read for two of them is two secrets, fetched in two batches.
type who struct {
	account  string
	identity string
}

// cacheKey identifies a cached value.
type cacheKey struct {
	who who
	ref string
}

// secret is a cached value. It is wiped (zeroed) when it leaves the cache;
// readers copy it under the lock, so a wipe never races a read. It is kept
// small (56 bytes and the value), since the cache holds one per entry: the
// times are integers, not time.Time (24 bytes each).
type secret struct {
	mu      sync.Mutex
	wiped   bool
	noStale bool         // never served stale nor refreshed ahead (a one-time password)
	reads   atomic.Int32 // reads it answered, with the one that fetched it
	b       []byte
	at      int64         // when it was fetched, in Unix nanoseconds
	exp     time.Duration // when it stops being served, after core.base
}

// newSecret returns a secret holding v (its own copy when copied is true)
// fetched at now and served for ttl.
func (c *core) newSecret(v []byte, copied bool, now time.Time, ttl time.Duration) *secret {
	if copied {
		v = bytes.Clone(v)
	}
	return &secret{b: v, at: now.UnixNano(), exp: now.Sub(c.base) + ttl}
}

// outcome is what a reader gets of s: a copy of the value and its times.
func (c *core) outcome(s *secret, fromCache bool) outcome {
	v, ok := s.copyValue()
	if !ok {
		return outcome{}
	}
	return outcome{ok: true, value: v, fromCache: fromCache, at: time.Unix(0, s.at), exp: c.base.Add(s.exp)}
}

// copyValue returns a copy of the value, or false when it was wiped.
func (s *secret) copyValue() ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wiped {
		return nil, false
	}
	v := make([]byte, len(s.b))
	copy(v, s.b)
	return v, true
}

func (s *secret) wipe() {
	s.mu.Lock()
	clear(s.b)
	s.b, s.wiped = nil, true
	s.mu.Unlock()
}

// call is one fetch of one key, shared by every request that wants the key
// while it runs.
type call struct {
	key   cacheKey
	epoch uint64
	done  chan struct{}

	// Set before done is closed, read-only after.
	val   *secret
	err   error
	gen   uint64 // the account's lock generation val was fetched under
	stale bool   // val is an expired value served because the backend failed

	refresh bool // fetched ahead of expiry, for the cache alone

	// waiters counts the requests that still have to copy val; the last
	// one out wipes it. Guarded by core.mu.
	waiters int
	closed  bool
}

// outcome is what a request gets for one ref.
type outcome struct {
	ok        bool
	value     []byte // the caller's own copy; it zeroes it when done
	fromCache bool
	stale     bool // expired, served because the backend failed
	at, exp   time.Time
	err       *api.Error
}

// coreConfig configures a core.
type coreConfig struct {
	TTL            time.Duration
	Capacity       int
	BackendTimeout time.Duration
	MaxConcurrent  int  // backend calls running at once
	LockOnAuthFail bool // lock an account's reads on its backend auth failure
	// StaleIfError is how long after it expires a value may still be
	// served, marked stale, when the backend fails or times out.
	StaleIfError time.Duration
	// RefreshAhead fetches a value read at least twice again in the
	// background shortly before it expires.
	RefreshAhead bool
	// OnAuthFailure, if set, hears of each batch that failed
	// authentication at the backend.
	OnAuthFailure func(backend, account, msg string)
	// OnAccountLock, if set, hears of each account locked after an
	// authentication failure (with LockOnAuthFail).
	OnAccountLock func(account, reason string, wiped int)
}

// core is the part of the daemon between the HTTP handlers and the backend:
// the cache, the table of fetches in flight, the batcher and the counters.
type core struct {
	cfg     coreConfig
	backend backend.Backend
	session *session.Session
	log     zerolog.Logger
	window  time.Duration
	base    time.Time // secrets' expiry is kept as a duration after it

	cache *ttlcache.Cache[cacheKey, *secret]

	// storeMu orders cache stores and backend call starts against wipes:
	// a store holds it for reading while it checks the session epoch and
	// sets the value, a call start while it checks the epoch and takes
	// epochCtx; a wipe (on lock) holds it for writing and cancels epochCtx.
	// So once a lock has returned, nothing fetched before it is stored, and
	// every backend call of the old epoch runs on a cancelled context.
	storeMu     sync.RWMutex
	epochCtx    context.Context
	epochCancel context.CancelFunc

	// acctLocks holds the accounts whose reads are locked after an
	// authentication failure (LockOnAuthFail), with the failure; acctGen
	// changes at each such lock, so that a fetch for the account started
	// before it is not stored. Both are guarded by storeMu; nAcctLocks lets
	// a read skip the check while no account is locked.
	acctLocks  map[string]string
	acctGen    map[string]uint64
	nAcctLocks atomic.Int32

	mu       sync.Mutex
	inflight map[cacheKey]*call
	pending  map[who]*batch // gathering misses
	busy     map[who]int    // backend calls running

	sem chan struct{} // bounds concurrent backend calls
	wg  sync.WaitGroup

	hits, misses, coalesced atomic.Uint64
	staleServed, refreshes  atomic.Uint64
	lastFetch               atomic.Int64 // how long the last backend call took, ns

	// refreshing gathers the refreshes of each account that come due
	// together into one batch. Guarded by mu, as is stopped (set by
	// close: no refresh starts after it).
	refreshing map[who][]*call
	stopped    bool
	inFlight   atomic.Int64

	// testHookAfterStore, when set, runs after a call's values are stored
	// and before its waiters are woken (tests put a lock there).
	testHookAfterStore func()
}

// batch is the misses of one account and identity gathered for one
// backend call. It holds its own copy of the identity's token, wiped when
// the call is done: the daemon keeps a request's token no longer.
type batch struct {
	who   who
	id    backend.OPIdentity
	calls []*call
	// ready is set when the window has passed; a ready batch waits only
	// for the account's running call to end.
	ready bool
}

func newCore(cfg coreConfig, b backend.Backend, s *session.Session, log zerolog.Logger) *core {
	c := &core{
		cfg:        cfg,
		backend:    b,
		session:    s,
		log:        log,
		inflight:   make(map[cacheKey]*call),
		pending:    make(map[who]*batch),
		busy:       make(map[who]int),
		acctLocks:  make(map[string]string),
		refreshing: make(map[who][]*call),
		acctGen:    make(map[string]uint64),
		sem:        make(chan struct{}, max(cfg.MaxConcurrent, 1)),
		base:       time.Now(),
	}
	c.epochCtx, c.epochCancel = context.WithCancel(context.Background())
	if w, ok := b.(backend.Windowed); ok {
		c.window = w.BatchWindow()
	}
	c.cache = ttlcache.New(
		ttlcache.WithTTL[cacheKey, *secret](cfg.TTL),
		ttlcache.WithDisableTouchOnHit[cacheKey, *secret](),
		ttlcache.WithCapacity[cacheKey, *secret](uint64(cfg.Capacity)),
	)
	c.cache.OnEviction(func(_ context.Context, _ ttlcache.EvictionReason, it *ttlcache.Item[cacheKey, *secret]) {
		it.Value().wipe()
	})
	go c.cache.Start()
	return c
}

// errLocked is the answer to every read while the session is locked.
var errLocked = api.Errorf(api.CodeSessionLocked, "the session is locked")

// resolve reads refs (unique, each valid) for account. It answers hits from
// the cache, joins fetches already in flight, and hands the remaining misses
// to the batcher as one group so that they become one backend call. It
// returns when every ref has an outcome or ctx ends; a fetch it started goes
// on without it, for the requests that share it and for the cache.
//
// maxAge, when not negative, is the oldest a cached value may be to answer
// this request; an older one is fetched again (and replaces the cached one
// for everyone). A fetch already in flight is joined whatever maxAge says:
// its value is being fetched now.
//
// id is the identity the request reads as: backend.Desktop for the
// daemon's own, else one whose fingerprint is not the daemon's; a batch it
// starts takes a copy of it.
func (c *core) resolve(ctx context.Context, account string, id backend.OPIdentity, refs []string, maxAge time.Duration) []outcome {
	out := make([]outcome, len(refs))
	w := who{account, id.Fingerprint}
	locked, epoch := c.session.State()
	if e := c.readRefusal(locked, w); e != nil {
		for i := range out {
			out[i].err = e
		}
		return out
	}
	if c.answerFromCache(w, refs, maxAge, out) {
		for i, cl := range c.callsFor(w, id, refs, epoch, out) {
			if cl != nil {
				out[i] = c.await(ctx, cl)
			}
		}
	}
	for i := range out {
		if out[i].ok {
			c.session.Touch()
			break
		}
	}
	return out
}

// readRefusal is the answer to every read for w while the session
// (locked) or w's account is locked, else nil. Only the daemon's own
// identity has account locks: it is the one an unlock can check again.
func (c *core) readRefusal(locked bool, w who) *api.Error {
	if locked {
		return errLocked
	}
	if c.nAcctLocks.Load() > 0 && w.identity == "" {
		return c.accountLocked(w.account)
	}
	return nil
}

// answerFromCache sets out[i] for each of refs the cache holds fresh
// enough, and reports whether any is missing.
func (c *core) answerFromCache(w who, refs []string, maxAge time.Duration, out []outcome) (missing bool) {
	now := time.Now()
	for i, ref := range refs {
		key := cacheKey{w, ref}
		if s := c.lookup(key, now, maxAge); s != nil {
			if o := c.outcome(s, true); o.ok {
				out[i] = o
				c.hits.Add(1)
				// A request's identity is not kept to refresh with.
				if c.cfg.RefreshAhead && w.identity == "" && s.reads.Add(1) == 2 && !s.noStale {
					c.scheduleRefresh(key, s)
				}
				continue
			}
		}
		missing = true
	}
	return missing
}

// callsFor returns, for each of refs that out has no answer for, the fetch
// to wait for: the one of this epoch already in flight, or a new one. The
// new ones go to the batcher as one group.
func (c *core) callsFor(w who, id backend.OPIdentity, refs []string, epoch uint64, out []outcome) []*call {
	waits := make([]*call, len(refs))
	var fresh []*call
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ref := range refs {
		if out[i].ok {
			continue
		}
		c.misses.Add(1)
		key := cacheKey{w, ref}
		if cl, ok := c.inflight[key]; ok && cl.epoch == epoch {
			c.coalesced.Add(1)
			cl.waiters++
			waits[i] = cl
			continue
		}
		cl := &call{key: key, epoch: epoch, done: make(chan struct{}), waiters: 1}
		c.inflight[key] = cl
		waits[i] = cl
		fresh = append(fresh, cl)
	}
	if len(fresh) > 0 {
		c.inFlight.Add(int64(len(fresh)))
		c.enqueueLocked(w, id, fresh)
	}
	return waits
}

// await waits for cl and takes the caller's copy of its value.
func (c *core) await(ctx context.Context, cl *call) outcome {
	defer c.release(cl)
	select {
	case <-cl.done:
	case <-ctx.Done():
		return outcome{err: api.Errorf(api.CodeBackendTimeout, "the request ended before the backend answered")}
	}
	if cl.err != nil {
		return outcome{err: toAPIError(cl.err)}
	}
	// A lock of the session or of the account may have come after the
	// value was stored and before this copy: it is not served then. The
	// check and the copy hold storeMu, which every lock takes to write.
	c.storeMu.RLock()
	defer c.storeMu.RUnlock()
	if _, epoch := c.session.State(); epoch != cl.epoch {
		return outcome{err: errLocked}
	}
	if c.genOf(cl.key.who) != cl.gen {
		return outcome{err: c.relockedError(cl.key.who.account)}
	}
	o := c.outcome(cl.val, cl.stale)
	if !o.ok { // wiped: cannot happen while we hold a waiter's place
		return outcome{err: api.Errorf(api.CodeInternal, "value dropped before it was served")}
	}
	if o.stale = cl.stale; o.stale {
		c.staleServed.Add(1)
	}
	return o
}

// release gives up one waiter's place on cl; the last one out, once the
// call is done, wipes the shared value.
func (c *core) release(cl *call) {
	c.mu.Lock()
	cl.waiters--
	last := cl.waiters == 0 && cl.closed
	c.mu.Unlock()
	if last && cl.val != nil {
		cl.val.wipe()
	}
}

// lookup returns the cached secret for key if it is still to be served,
// and, when maxAge is not negative, was fetched at most maxAge ago.
func (c *core) lookup(key cacheKey, now time.Time, maxAge time.Duration) *secret {
	it := c.cache.Get(key)
	if it == nil {
		return nil
	}
	s := it.Value()
	if now.Sub(c.base) >= s.exp {
		return nil
	}
	if maxAge >= 0 && now.UnixNano()-s.at > int64(maxAge) {
		return nil
	}
	return s
}

// enqueueLocked adds fresh calls to the account's pending batch. For a
// backend with a batch window, a new batch waits the window for misses of
// concurrent requests, and then, while a call for the same account is still
// running, goes on gathering until that call ends: a slow backend (an op
// process takes a fraction of a second) gets one call per wave of requests,
// not one per request. c.mu is held.
func (c *core) enqueueLocked(w who, id backend.OPIdentity, fresh []*call) {
	b := c.pending[w]
	if b != nil && len(b.calls)+len(fresh) > api.MaxRefs {
		c.flushLocked(b) // too big to join: send what is pending now
		b = nil
	}
	if b == nil {
		b = &batch{who: w, id: id.Copy()}
		c.pending[w] = b
		if c.window > 0 {
			time.AfterFunc(c.window, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				if c.pending[w] == b {
					b.ready = true
					if c.busy[w] == 0 {
						c.flushLocked(b)
					}
				}
			})
		}
	}
	b.calls = append(b.calls, fresh...)
	if c.window <= 0 {
		c.flushLocked(b)
	}
}

// flushLocked takes b out of pending and runs it, unless the core is
// closing (a batch window or a refresh that came due after close began):
// then its calls end with errLocked. c.mu is held.
func (c *core) flushLocked(b *batch) {
	if c.pending[b.who] == b {
		delete(c.pending, b.who)
	}
	if c.stopped {
		for _, cl := range b.calls {
			cl.err = errLocked
			c.closeLocked(cl)
		}
		c.inFlight.Add(-int64(len(b.calls)))
		b.id.Wipe()
		return
	}
	c.busy[b.who]++
	c.wg.Add(1)
	// runBatch copies every value of the batch (the cache's copy and each
	// waiter's): scrub clears what those copies leave in the thread's
	// registers and signal frame (TestExpiredSecretsLeaveTheDaemonsMemory).
	go scrub.Do(func() { c.runBatch(b) })
}

// doneLocked records the end of a call for account and sends the batch that
// was waiting for it. c.mu is held.
func (c *core) doneLocked(w who) {
	c.busy[w]--
	if c.busy[w] > 0 {
		return
	}
	delete(c.busy, w)
	if p := c.pending[w]; p != nil && p.ready {
		c.flushLocked(p)
	}
}

// runBatch makes the backend call for one batch, on a context of its own:
// no caller's disconnect cancels it. It answers each call of the batch,
// caches the values and wakes the waiters.
func (c *core) runBatch(b *batch) {
	defer c.wg.Done()
	defer b.id.Wipe()
	c.sem <- struct{}{}
	defer func() { <-c.sem }()

	live, gen, epochCtx := c.liveCalls(b)
	var results []backend.Result
	if len(live) > 0 {
		ctx := epochCtx
		if b.who.identity != "" {
			ctx = backend.WithOPIdentity(ctx, b.id)
		}
		results = c.fetch(ctx, b.who.account, refsOf(live))
	}
	authMsg, authFailed := c.storeResults(b.who, live, results, gen)
	if c.testHookAfterStore != nil {
		c.testHookAfterStore()
	}
	// Lock the account before any waiter has its answer: a read that
	// follows the failed one must find the account locked, not its values
	// still cached (TestCorePerRefErrorsAndAuthLock).
	//
	// A request's own identity is not locked: the daemon does not keep
	// its token to check it again at unlock. Its reads fail on their own.
	if authFailed && c.cfg.LockOnAuthFail && b.who.identity == "" {
		c.lockAccount(b.who.account, authMsg)
	}
	c.finishCalls(b)
	if authFailed && c.cfg.OnAuthFailure != nil {
		c.cfg.OnAuthFailure(c.backend.Name(), b.who.account, authMsg)
	}
}

// liveCalls returns the calls of b to make, with the account's lock
// generation and the context to make them on. A call of an epoch that a
// lock has ended is not made: its requests get session_locked (those of a
// locked account, the account's error). The rest run on the epoch's
// context, which the next lock cancels.
func (c *core) liveCalls(b *batch) (live []*call, gen uint64, epochCtx context.Context) {
	c.storeMu.RLock()
	defer c.storeMu.RUnlock()
	locked, current := c.session.State()
	var acctErr *api.Error
	if b.who.identity == "" {
		acctErr = c.accountLockError(b.who.account)
	}
	for _, cl := range b.calls {
		switch {
		case locked || cl.epoch != current:
			cl.err = errLocked
		case acctErr != nil:
			cl.err = acctErr
		default:
			live = append(live, cl)
		}
	}
	return live, c.genOf(b.who), c.epochCtx
}

// refsOf returns the ref of each call.
func refsOf(calls []*call) []string {
	refs := make([]string, len(calls))
	for i, cl := range calls {
		refs[i] = cl.key.ref
	}
	return refs
}

// storeResults gives each live call its result and caches the values
// fetched, unless a lock of the session or of the account came while the
// call ran (gen is the account's lock generation it started under): then
// the values are dropped. It holds storeMu throughout, so that no lock
// comes between that check and a store. It returns the message of an
// authentication failure among the results, if any.
func (c *core) storeResults(w who, live []*call, results []backend.Result, gen uint64) (authMsg string, authFailed bool) {
	now := time.Now()
	c.storeMu.RLock()
	defer c.storeMu.RUnlock()
	_, current := c.session.State()
	acctRelocked := c.genOf(w) != gen
	for i, cl := range live {
		r := results[i]
		switch {
		case cl.epoch != current:
			clear(r.Value)
			cl.err = errLocked
		case acctRelocked: // the account was locked while the call ran
			clear(r.Value)
			cl.err = c.relockedError(w.account)
		case r.Err != nil:
			if msg, ok := c.failCall(cl, r.Err, gen, now); ok {
				authMsg, authFailed = msg, true
			}
		default:
			c.storeValue(cl, r, gen, now)
		}
	}
	return authMsg, authFailed
}

// failCall gives cl the backend's error, or, when the backend failed or
// did not answer, the cached value while it may still be served stale. It
// returns the message of an authentication failure. storeMu is held for
// reading.
func (c *core) failCall(cl *call, err error, gen uint64, now time.Time) (authMsg string, authFailed bool) {
	cl.err = err
	// Account locks follow 1Password's sign-in: a Vault or OpenBao login
	// that fails says nothing of the 1Password account of the same name.
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeUnauthorized && strings.HasPrefix(cl.key.ref, api.SchemeOP+"://") {
		authMsg, authFailed = ae.Message, true
	}
	if staleable(err) {
		if v := c.staleValue(cl.key, now); v != nil {
			cl.val, cl.gen, cl.stale, cl.err = v, gen, true, nil
			c.log.Warn().Str("ref", cl.key.ref).Str("error", toAPIError(err).Message).Bool("refresh", cl.refresh).Msg("backend failed; the cached value stays, served stale once expired")
		}
	}
	return authMsg, authFailed
}

// storeValue gives cl the value r fetched and caches a copy of it.
// storeMu is held for reading.
func (c *core) storeValue(cl *call, r backend.Result, gen uint64, now time.Time) {
	ttl, keep := c.cfg.TTL, c.cfg.TTL+c.cfg.StaleIfError
	short := r.TTL > 0 // a life of its own (a one-time password): never stale
	if short {
		ttl = min(ttl, r.TTL)
		keep = ttl
	}
	// The waiters get their own secret: the cache may evict (and wipe)
	// its copy at any time. The cache keeps it past its expiry for as
	// long as it may be served stale.
	cl.val, cl.gen = c.newSecret(r.Value, false, now, ttl), gen
	kept := c.newSecret(r.Value, true, now, ttl)
	kept.noStale = short
	if !cl.refresh {
		kept.reads.Store(1) // the read that fetched it
	}
	c.cache.Delete(cl.key) // wipes a replaced value through the eviction hook
	c.cache.Set(cl.key, kept, keep)
}

// finishCalls ends the calls of b, whose answers are set: they leave the
// table of fetches in flight, their waiters wake, and a value no waiter is
// left to copy is wiped. The account's next batch, if it was waiting for
// this one, is sent.
func (c *core) finishCalls(b *batch) {
	var orphans []*call
	c.mu.Lock()
	for _, cl := range b.calls {
		c.closeLocked(cl)
		if cl.waiters == 0 {
			orphans = append(orphans, cl)
		}
	}
	c.doneLocked(b.who)
	c.mu.Unlock()
	for _, cl := range orphans { // every waiter hung up
		if cl.val != nil {
			cl.val.wipe()
		}
	}
	c.inFlight.Add(-int64(len(b.calls)))
}

// closeLocked takes cl, answered, out of the table of fetches in flight
// and wakes its waiters. c.mu is held.
func (c *core) closeLocked(cl *call) {
	if c.inflight[cl.key] == cl {
		delete(c.inflight, cl.key)
	}
	cl.closed = true
	close(cl.done)
}

// refreshGather is how long refreshes that come due wait for others of
// their account, to share one backend call.
const refreshGather = 10 * time.Millisecond

// refreshLead is how long before s expires it is fetched again: a fifth of
// its life, or three times the last backend call when that is longer, and
// at most half its life.
func (c *core) refreshLead(s *secret) time.Duration {
	life := c.base.Add(s.exp).Sub(time.Unix(0, s.at))
	lead := max(life/5, 3*time.Duration(c.lastFetch.Load()))
	return min(lead, life/2)
}

// scheduleRefresh arranges for key's value s, read a second time, to be
// fetched again shortly before it expires.
func (c *core) scheduleRefresh(key cacheKey, s *secret) {
	due := time.Until(c.base.Add(s.exp)) - c.refreshLead(s)
	time.AfterFunc(max(due, 0), func() { c.refreshDue(key, s) })
}

// refreshDue starts the refresh of key, unless its value s was replaced,
// evicted or wiped (a lock) meanwhile, the session or the account is
// locked, or a fetch of key is already running.
func (c *core) refreshDue(key cacheKey, s *secret) {
	if it := c.cache.Get(key); it == nil || it.Value() != s {
		return
	}
	locked, epoch := c.session.State()
	if c.readRefusal(locked, key.who) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.inflight[key]; ok || c.stopped {
		return
	}
	cl := &call{key: key, epoch: epoch, done: make(chan struct{}), refresh: true}
	c.inflight[key] = cl
	c.inFlight.Add(1)
	c.refreshes.Add(1)
	pending := c.refreshing[key.who]
	c.refreshing[key.who] = append(pending, cl)
	if len(pending) == 0 {
		time.AfterFunc(refreshGather, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			calls := c.refreshing[key.who]
			delete(c.refreshing, key.who)
			if len(calls) > 0 {
				// Only the daemon's own identity is refreshed ahead.
				c.enqueueLocked(key.who, backend.Desktop, calls) // closing: flushLocked ends them
			}
		})
	}
}

// staleable reports whether a failed read may be answered with an expired
// value: the backend failed or did not answer, not "no such secret", "not
// allowed" or "not signed in".
func staleable(err error) bool {
	switch toAPIError(err).Code {
	case api.CodeBackendError, api.CodeBackendTimeout, api.CodeRateLimited:
		return true
	}
	return false
}

// staleValue returns a copy of key's cached value, for the waiters of a
// call that failed, when it expired less than StaleIfError ago (or has not
// expired: a fetch that max-age asked for failed). storeMu is held for
// reading, so a lock cannot come between.
func (c *core) staleValue(key cacheKey, now time.Time) *secret {
	if c.cfg.StaleIfError <= 0 {
		return nil
	}
	it := c.cache.Get(key)
	if it == nil {
		return nil
	}
	s := it.Value()
	if s.noStale || now.Sub(c.base)-s.exp >= c.cfg.StaleIfError {
		return nil
	}
	v, ok := s.copyValue()
	if !ok {
		return nil
	}
	return &secret{b: v, at: s.at, exp: s.exp, noStale: true}
}

// accountName names account in messages.
func accountName(account string) string {
	if account == "" {
		return "the default account"
	}
	return "account " + account
}

// genOf is the lock generation of w's account: 0 for a request's own
// identity, which has no account locks.
func (c *core) genOf(w who) uint64 {
	if w.identity != "" {
		return 0
	}
	return c.acctGen[w.account]
}

// accountLocked returns the error for a read of a locked account, or nil.
func (c *core) accountLocked(account string) *api.Error {
	c.storeMu.RLock()
	defer c.storeMu.RUnlock()
	return c.accountLockError(account)
}

// accountLockError is accountLocked for a caller that holds storeMu.
func (c *core) accountLockError(account string) *api.Error {
	reason, ok := c.acctLocks[account]
	if !ok {
		return nil
	}
	return api.Errorf(api.CodeSessionLocked, "reads for %s are locked: %s", accountName(account), api.ThenUnlock(reason))
}

// relockedError is the answer to a read of account whose value was fetched
// before a lock of the account that came while it ran: the lock's error
// while it lasts, and once the account is unlocked again, a request to read
// again. storeMu is held.
func (c *core) relockedError(account string) *api.Error {
	if e := c.accountLockError(account); e != nil {
		return e
	}
	return api.Errorf(api.CodeSessionLocked, "%s was locked while this read ran; read it again", accountName(account))
}

// lockAccount locks the reads of account after an authentication failure
// (reason, which says how to sign in again) and wipes its cached values;
// the other accounts go on. It reports whether the account was unlocked.
func (c *core) lockAccount(account, reason string) bool {
	c.storeMu.Lock()
	if _, ok := c.acctLocks[account]; ok {
		c.acctLocks[account] = reason // the latest failure says most
		c.storeMu.Unlock()
		return false
	}
	c.acctLocks[account] = reason
	c.acctGen[account]++
	c.nAcctLocks.Add(1)
	n := 0
	for _, it := range c.cache.Items() {
		if it.Key().who == (who{account: account}) {
			it.Value().wipe()
			c.cache.Delete(it.Key())
			n++
		}
	}
	c.storeMu.Unlock()
	if c.cfg.OnAccountLock != nil {
		c.cfg.OnAccountLock(account, reason, n)
	}
	return true
}

// unlockAccount lets the reads of account through again.
func (c *core) unlockAccount(account string) {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	if _, ok := c.acctLocks[account]; ok {
		delete(c.acctLocks, account)
		c.nAcctLocks.Add(-1)
	}
}

// lockedAccounts returns the locked accounts and why, sorted by account.
func (c *core) lockedAccounts() []api.LockedAccount {
	c.storeMu.RLock()
	defer c.storeMu.RUnlock()
	out := make([]api.LockedAccount, 0, len(c.acctLocks))
	for a, r := range c.acctLocks {
		out = append(out, api.LockedAccount{Account: a, Reason: r})
	}
	slices.SortFunc(out, func(x, y api.LockedAccount) int { return strings.Compare(x.Account, y.Account) })
	return out
}

// fetch makes one backend call for refs on a context derived from ctx (the
// epoch's), bounded by the backend timeout. It always returns one result
// per ref.
func (c *core) fetch(ctx context.Context, account string, refs []string) []backend.Result {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.BackendTimeout)
	defer cancel()
	start := time.Now()
	results := c.backend.Read(ctx, account, refs)
	c.lastFetch.Store(int64(time.Since(start)))
	c.log.Debug().Int("refs", len(refs)).Str("took", time.Since(start).Round(time.Microsecond).String()).Msg("backend call")
	if len(results) != len(refs) {
		for _, r := range results {
			clear(r.Value)
		}
		err := api.Errorf(api.CodeBackendError, "backend %s returned %d results for %d refs", c.backend.Name(), len(results), len(refs))
		results = make([]backend.Result, len(refs))
		for i := range results {
			results[i].Err = err
		}
	}
	return results
}

// wipe drops every cached value, zeroing it, and cancels the backend calls
// of the epoch that ends. It runs on lock and shutdown.
func (c *core) wipe() {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	c.epochCancel()
	c.epochCtx, c.epochCancel = context.WithCancel(context.Background())
	for _, it := range c.cache.Items() {
		it.Value().wipe()
	}
	c.cache.DeleteAll()
}

// forgetScheme drops, zeroing them, the cached values of scheme's refs
// (their server changed, or was written to), and returns how many.
func (c *core) forgetScheme(scheme string) int {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	prefix := scheme + "://"
	n := 0
	for key, it := range c.cache.Items() {
		if strings.HasPrefix(key.ref, prefix) {
			it.Value().wipe()
			c.cache.Delete(key)
			n++
		}
	}
	return n
}

// close waits for running backend calls, stops the cache and wipes it.
func (c *core) close() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.wg.Wait()
	c.cache.Stop()
	c.wipe()
}

// toAPIError gives err a wire code; an error without one is a backend error.
func toAPIError(err error) *api.Error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return api.Errorf(api.CodeBackendTimeout, "the backend did not answer in time")
	}
	return api.Errorf(api.CodeBackendError, "%v", err)
}

// counters is a snapshot of the core's counters for /v1/status.
type counters struct {
	hits, misses, coalesced, backendCalls, staleServed, refreshes uint64
	inFlight                                                      int64
	cacheSize                                                     int
}

func (c *core) counters() counters {
	return counters{
		hits:         c.hits.Load(),
		misses:       c.misses.Load(),
		coalesced:    c.coalesced.Load(),
		staleServed:  c.staleServed.Load(),
		refreshes:    c.refreshes.Load(),
		backendCalls: c.backend.Calls(),
		inFlight:     c.inFlight.Load(),
		cacheSize:    c.cache.Len(),
	}
}
