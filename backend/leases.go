package backend

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
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
	expires atomic.Int64 // Unix nanoseconds; renewals move it
	read    atomic.Int64 // last read, Unix nanoseconds
	final   atomic.Bool  // can no longer be renewed
	watcher *vapi.LifetimeWatcher
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

// hold keeps the leased read r of key, unless a lease for key is held
// already (a concurrent read made the same lease; keep one), and renews it
// while it keeps being read. It returns the lease whose fields to serve.
func (v *Vault) hold(key, path string, r *pathRead, now time.Time) *heldLease {
	v.leasesMu.Lock()
	if l := v.leases[key]; l != nil && l.meta.id == r.lease.id {
		v.leasesMu.Unlock()
		return l
	}
	l := &heldLease{key: key, path: path, meta: r.lease, fields: make(map[string]json.RawMessage, len(r.fields))}
	for k, f := range r.fields {
		l.fields[k] = append(json.RawMessage(nil), f...)
	}
	l.expires.Store(now.Add(r.lease.duration).UnixNano())
	l.read.Store(now.UnixNano())
	old := v.leases[key]
	v.leases[key] = l
	v.leasesMu.Unlock()
	if old != nil {
		v.dropLease(old, true) // its life is over for opx: a new one replaced it
	}
	v.log.Info().Str("backend", v.kind).Str("path", path).Str("lease", leaseLabel(l.meta.id)).Dur("duration", l.meta.duration).Msg("lease held")
	if l.meta.renewable {
		v.watchLease(l)
	}
	return l
}

// watchLease renews l with vault/api's LifetimeWatcher while it keeps being
// read; a lease not read for a whole lease duration is revoked, and one
// that can no longer be renewed is served to its end, then read anew.
func (v *Vault) watchLease(l *heldLease) {
	w, err := l.meta.client.NewLifetimeWatcher(&vapi.LifetimeWatcherInput{
		Secret:        &vapi.Secret{LeaseID: l.meta.id, LeaseDuration: int(l.meta.duration / time.Second), Renewable: true},
		RenewBehavior: vapi.RenewBehaviorIgnoreErrors,
	})
	if err != nil {
		l.final.Store(true)
		return
	}
	v.leasesMu.Lock()
	l.watcher = w
	v.leasesMu.Unlock()
	go w.Start()
	go func() {
		for {
			select {
			case err := <-w.DoneCh():
				l.final.Store(true)
				if err != nil {
					v.log.Warn().Str("backend", v.kind).Str("lease", leaseLabel(l.meta.id)).Err(err).Msg("lease renewal ended")
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
					v.leasesMu.Lock()
					if v.leases[l.key] == l {
						delete(v.leases, l.key)
					}
					v.leasesMu.Unlock()
					v.dropLease(l, true)
					return
				}
			}
		}
	}()
}

// dropLease stops renewing l, revokes it when asked, and wipes its fields.
func (v *Vault) dropLease(l *heldLease, revoke bool) {
	v.leasesMu.Lock()
	w := l.watcher
	l.watcher = nil
	v.leasesMu.Unlock()
	if w != nil {
		w.Stop()
	}
	if revoke {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.meta.client.Sys().RevokeWithContext(ctx, l.meta.id); err != nil {
			v.log.Warn().Str("backend", v.kind).Str("lease", leaseLabel(l.meta.id)).Err(err).Msg("lease revocation failed")
		} else {
			v.leaseRevocations.Add(1)
			v.log.Info().Str("backend", v.kind).Str("path", l.path).Str("lease", leaseLabel(l.meta.id)).Msg("lease revoked")
		}
	}
	v.leasesMu.Lock()
	for _, f := range l.fields {
		clear(f)
	}
	v.leasesMu.Unlock()
}

// RevokeLeases revokes every lease opx holds (opx lock, stop, shutdown), so
// that no credentials it made outlive it.
func (v *Vault) RevokeLeases() int {
	v.leasesMu.Lock()
	held := make([]*heldLease, 0, len(v.leases))
	for _, l := range v.leases {
		held = append(held, l)
	}
	clear(v.leases)
	v.leasesMu.Unlock()
	for _, l := range held {
		v.dropLease(l, true)
	}
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
