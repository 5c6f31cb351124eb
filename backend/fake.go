package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/opxhq/opx/api"
)

// Fake is the deterministic backend for tests and CI. The value of a ref is
// "fake_" and the first 16 hex digits of SHA-256 of the ref, or of
// ACCOUNT + "\n" + ref when an account is given. Each Read is one backend
// call that takes the configured delay.
type Fake struct {
	delay time.Duration
	calls atomic.Uint64
}

// NewFake returns a fake backend whose calls each take delay.
func NewFake(delay time.Duration) *Fake { return &Fake{delay: delay} }

// FakeValue returns the fake backend's value for ref and account.
func FakeValue(account, ref string) string { return string(fakeValue(account, ref)) }

// fakeValue builds the value in a slice of its own (no string), so that
// the daemon can wipe its only copy.
func fakeValue(account, ref string) []byte {
	in := ref
	if account != "" {
		in = account + "\n" + ref
	}
	sum := sha256.Sum256([]byte(in))
	v := make([]byte, len("fake_")+16)
	copy(v, "fake_")
	hex.Encode(v[len("fake_"):], sum[:8])
	clear(sum[:])
	return v
}

// Name implements Backend.
func (f *Fake) Name() string { return "fake" }

// BatchWindow implements Windowed: the fake batches as the op CLI backend does.
func (f *Fake) BatchWindow() time.Duration { return defaultWindow }

// Check implements Backend: every scheme is accepted.
func (f *Fake) Check(api.Ref) error { return nil }

// Read implements Backend.
func (f *Fake) Read(ctx context.Context, account string, refs []string) []Result {
	f.calls.Add(1)
	out := make([]Result, len(refs))
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			err := api.Errorf(api.CodeBackendTimeout, "fake backend call did not finish within the backend timeout")
			for i := range out {
				out[i].Err = err
			}
			return out
		}
	}
	for i, ref := range refs {
		out[i].Value = fakeValue(account, ref)
	}
	return out
}

// Validate implements Backend: the fake is always signed in.
func (f *Fake) Validate(context.Context, []string) error { return nil }

// Calls implements Backend.
func (f *Fake) Calls() uint64 { return f.calls.Load() }

// Close implements Backend.
func (f *Fake) Close() error { return nil }

// defaultWindow is how long a process-starting backend waits for more misses
// from concurrent requests before it starts its call.
const defaultWindow = 3 * time.Millisecond
