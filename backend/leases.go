package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vapi "github.com/hashicorp/vault/api"

	"github.com/opxhq/opx/api"
)

// leaseMeta is the lease a Vault or OpenBao read came with (a dynamic
// secret: database, cloud or message-queue credentials).
type leaseMeta struct {
	id        string
	duration  time.Duration
	renewable bool
	client    *vapi.Client // the client that read it: renewals and revocation use it
}

// heldLease is a leased secret opx keeps for its life: every field of one
// response, so that fields read at different times belong together (the
// username and password of one database user), and no new lease (no new
// user) is made while it lasts.
type heldLease struct {
	key     string // path?version
	path    string
	meta    leaseMeta
	fields  map[string]json.RawMessage
	body    []byte       // the whole response, for ?response= refs
	expires atomic.Int64 // Unix nanoseconds; renewals move it
	read    atomic.Int64 // last read, Unix nanoseconds
	final   atomic.Bool  // can no longer be renewed
	// Guarded by Vault.leasesMu: the watcher renewing it, and whether it
	// left the map (whoever takes it out drops it, once).
	watcher *vapi.LifetimeWatcher
	dropped bool
}

// leaseMargin is how long before its end a lease's values stop being
// served: a tenth of its duration, at least a second, at most half.
func leaseMargin(d time.Duration) time.Duration {
	return min(max(d/10, time.Second), d/2)
}

// left is how long the lease's values may still be served.
func (l *heldLease) left(now time.Time) time.Duration {
	return time.Unix(0, l.expires.Load()).Sub(now) - leaseMargin(l.meta.duration)
}

// serveHeld calls serve with the held lease of key, while its values may
// be served, under leasesMu (a lease is dropped, and its fields wiped, only
// after it left the map under that lock), and reports whether it did.
func (v *Vault) serveHeld(key string, now time.Time, serve func(*heldLease)) bool {
	v.leasesMu.Lock()
	defer v.leasesMu.Unlock()
	l := v.leases[key]
	if l == nil || l.left(now) <= 0 {
		return false
	}
	l.read.Store(now.UnixNano())
	serve(l)
	return true
}

// leaseEpoch is the lease generation a read starts under: RevokeLeases
// (a lock) moves it, so a lease that a read in flight brings back after it
// is revoked at once instead of held.
func (v *Vault) leaseEpoch() uint64 {
	v.leasesMu.Lock()
	defer v.leasesMu.Unlock()
	return v.leaseGen
}

// hold keeps the leased read r of key, made under lease generation gen,
// and calls serve with the lease whose fields to serve (under leasesMu):
// the one held already when it is still good (a concurrent read made
// another; that one is revoked, so that fields served together always
// come from one lease), else r's. It renews the lease while it keeps being
// read. After a lock (gen moved on) the new lease is revoked and serve is
// called with nil: the caller serves r's fields, which the daemon drops.
func (v *Vault) hold(key, path string, r *pathRead, now time.Time, gen uint64, serve func(*heldLease)) {
	fresh := &heldLease{key: key, path: path, meta: r.lease, fields: make(map[string]json.RawMessage, len(r.fields))}
	fresh.expires.Store(now.Add(r.lease.duration).UnixNano())
	fresh.read.Store(now.UnixNano())
	v.leasesMu.Lock()
	if v.leaseGen != gen {
		v.leasesMu.Unlock()
		serve(nil)
		go v.revoke(fresh)
		return
	}
	if l := v.leases[key]; l != nil && (l.meta.id == r.lease.id || l.left(now) > 0) {
		serve(l)
		v.leasesMu.Unlock()
		if l.meta.id != r.lease.id {
			go v.revoke(fresh) // a concurrent read's second lease
		}
		return
	}
	for k, f := range r.fields {
		fresh.fields[k] = append(json.RawMessage(nil), f...)
	}
	fresh.body = bytes.Clone(r.body)
	old := v.leases[key]
	if old != nil {
		old.dropped = true
	}
	v.leases[key] = fresh
	serve(fresh)
	v.leasesMu.Unlock()
	if old != nil {
		go v.dropLease(old, false) // ended: nothing to revoke
	}
	v.log.Info().Str("backend", v.kind).Str("path", path).Str("lease", leaseLabel(fresh.meta.id)).Dur("duration", fresh.meta.duration).Msg("lease held")
	v.expireAt(fresh)
	if fresh.meta.renewable {
		v.watchLease(fresh)
	}
}

// take removes l from the map and reports whether this caller did: only
// that caller drops it.
func (v *Vault) take(l *heldLease) bool {
	v.leasesMu.Lock()
	defer v.leasesMu.Unlock()
	if l.dropped {
		return false
	}
	l.dropped = true
	if v.leases[l.key] == l {
		delete(v.leases, l.key)
	}
	return true
}

// expireAt forgets l, wiping its fields, once it has ended (its renewals
// move the end).
func (v *Vault) expireAt(l *heldLease) {
	time.AfterFunc(time.Until(time.Unix(0, l.expires.Load())), func() {
		if time.Now().UnixNano() < l.expires.Load() { // renewed meanwhile
			v.expireAt(l)
			return
		}
		if v.take(l) {
			v.dropLease(l, false)
		}
	})
}

// watchLease renews l with vault/api's LifetimeWatcher while it keeps being
// read; a lease not read for a whole lease duration is revoked; one whose
// renewal fails (revoked on the server, its token gone) is forgotten at
// once; one that reached its maximum life is served to its end, and the
// next read gets a new one.
func (v *Vault) watchLease(l *heldLease) {
	w, err := l.meta.client.NewLifetimeWatcher(&vapi.LifetimeWatcherInput{
		Secret:        &vapi.Secret{LeaseID: l.meta.id, LeaseDuration: int(l.meta.duration / time.Second), Renewable: true},
		RenewBehavior: vapi.RenewBehaviorErrorOnErrors,
	})
	if err != nil {
		l.final.Store(true)
		return
	}
	v.leasesMu.Lock()
	if l.dropped {
		v.leasesMu.Unlock()
		return
	}
	l.watcher = w
	v.leasesMu.Unlock()
	go w.Start()
	go func() {
		for {
			select {
			case err := <-w.DoneCh():
				l.final.Store(true)
				if err != nil {
					v.log.Warn().Str("backend", v.kind).Str("lease", leaseLabel(l.meta.id)).Err(err).Msg("lease renewal failed; the lease is forgotten")
					if v.take(l) {
						v.dropLease(l, false)
					}
				}
				return
			case r := <-w.RenewCh():
				now := time.Now()
				if r != nil && r.Secret != nil && r.Secret.LeaseDuration > 0 {
					l.expires.Store(now.Add(time.Duration(r.Secret.LeaseDuration) * time.Second).UnixNano())
				}
				v.leaseRenewals.Add(1)
				if now.Sub(time.Unix(0, l.read.Load())) > l.meta.duration {
					// Not read for a whole lease: nobody needs it.
					if v.take(l) {
						v.dropLease(l, true)
					}
					return
				}
			}
		}
	}()
}

// dropLease stops renewing l (taken out of the map), revokes it when
// asked, and wipes its fields.
func (v *Vault) dropLease(l *heldLease, revoke bool) {
	v.leasesMu.Lock()
	w := l.watcher
	l.watcher = nil
	v.leasesMu.Unlock()
	if w != nil {
		w.Stop()
	}
	if revoke {
		v.revoke(l)
	}
	v.leasesMu.Lock()
	for _, f := range l.fields {
		clear(f)
	}
	clear(l.body[:cap(l.body)])
	v.leasesMu.Unlock()
}

// revoke revokes l's lease on the server.
func (v *Vault) revoke(l *heldLease) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.meta.client.Sys().RevokeWithContext(ctx, l.meta.id); err != nil {
		v.log.Warn().Str("backend", v.kind).Str("lease", leaseLabel(l.meta.id)).Err(err).Msg("lease revocation failed")
		return
	}
	v.leaseRevocations.Add(1)
	v.log.Info().Str("backend", v.kind).Str("path", l.path).Str("lease", leaseLabel(l.meta.id)).Msg("lease revoked")
}

// forgetLeasesOf drops the leases client made, when the client is dropped
// (its token expired, was revoked or replaced): the server revokes a
// token's leases with it, so their values must not be served. They are
// revoked too, in case the token still works.
func (v *Vault) forgetLeasesOf(client *vapi.Client) {
	if client == nil {
		return
	}
	var gone []*heldLease
	v.leasesMu.Lock()
	for k, l := range v.leases {
		if l.meta.client == client {
			l.dropped = true
			delete(v.leases, k)
			gone = append(gone, l)
		}
	}
	v.leasesMu.Unlock()
	for _, l := range gone {
		go v.dropLease(l, true)
	}
}

// RevokeLeases revokes every lease opx holds (opx lock, stop, shutdown), so
// that no credentials it made outlive it, at once and within 10 s, and
// moves the lease generation: a read in flight brings back no lease.
func (v *Vault) RevokeLeases() int { return v.drainLeases(true) }

// drainLeases empties the lease map and drops every lease it held, all at
// once, revoking each when revoke is set; it returns when they are dropped
// and says how many there were. It moves the lease generation with the
// emptying, under one lock, so that a read in flight cannot put a lease
// back: it revokes the one it brings.
func (v *Vault) drainLeases(revoke bool) int {
	v.leasesMu.Lock()
	v.leaseGen++
	held := make([]*heldLease, 0, len(v.leases))
	for _, l := range v.leases {
		l.dropped = true // taken here: no one else drops it
		held = append(held, l)
	}
	clear(v.leases)
	v.leasesMu.Unlock()
	var wg sync.WaitGroup
	for _, l := range held {
		wg.Go(func() { v.dropLease(l, revoke) })
	}
	wg.Wait()
	return len(held)
}

// Leases lists the leases held, for status: never a value, and only the
// start of each lease id.
func (v *Vault) Leases() []api.Lease {
	v.leasesMu.Lock()
	defer v.leasesMu.Unlock()
	out := make([]api.Lease, 0, len(v.leases))
	for _, l := range v.leases {
		out = append(out, api.Lease{Backend: v.kind, Path: l.path, LeaseID: leaseLabel(l.meta.id),
			ExpiresUnix: time.Unix(0, l.expires.Load()).Unix(), Renewable: l.meta.renewable && !l.final.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// leaseLabel is the lease id up to and with 8 characters of its random
// part: enough to tell leases apart, not to act on one.
func leaseLabel(id string) string {
	i := strings.LastIndexByte(id, '/')
	if len(id)-i-1 <= 8 {
		return id
	}
	return id[:i+9] + "…"
}
