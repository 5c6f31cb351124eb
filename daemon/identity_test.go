package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/backend"
)

// identityBackend answers each ref with the fingerprint of the identity
// its batch was read as, and counts its calls per identity.
type identityBackend struct {
	mu    sync.Mutex
	calls map[string]int
}

func (b *identityBackend) Name() string                             { return "identity" }
func (b *identityBackend) Check(api.Ref) error                      { return nil }
func (b *identityBackend) Validate(context.Context, []string) error { return nil }
func (b *identityBackend) Close() error                             { return nil }
func (b *identityBackend) BatchWindow() time.Duration               { return 20 * time.Millisecond }
func (b *identityBackend) Calls() uint64                            { return 0 }
func (b *identityBackend) Read(ctx context.Context, account string, refs []string) []backend.Result {
	id, ok := backend.OPIdentityFrom(ctx)
	who := "daemon"
	if ok {
		who = id.Kind + ":" + id.Fingerprint
	}
	time.Sleep(50 * time.Millisecond)
	b.mu.Lock()
	b.calls[who]++
	b.mu.Unlock()
	out := make([]backend.Result, len(refs))
	for i, ref := range refs {
		out[i].Value = []byte(who + " " + ref)
	}
	return out
}

// TestCoreKeysByIdentity: reads of one ref as two service accounts are two
// values from two batches, never each other's; fifty concurrent reads as
// one are one batch; and a read as the daemon's own identity shares
// neither.
func TestCoreKeysByIdentity(t *testing.T) {
	b := &identityBackend{calls: map[string]int{}}
	c, _ := newTestCore(t, b, coreConfig{})
	a := backend.NewOPIdentity(&api.OPIdentity{ServiceAccountToken: api.Secret("ops_token_a")})
	z := backend.NewOPIdentity(&api.OPIdentity{ServiceAccountToken: api.Secret("ops_token_z")})
	conn := backend.NewOPIdentity(&api.OPIdentity{ConnectHost: "http://127.0.0.1:8080", ConnectToken: api.Secret("ops_token_a")})
	if a.Fingerprint == z.Fingerprint || a.Fingerprint == conn.Fingerprint {
		t.Fatal("two identities share a fingerprint")
	}
	const ref = "op://v/i/f"
	const n = 50
	ids := []backend.OPIdentity{a, z, conn, backend.Desktop}
	got := make([][]outcome, len(ids))
	var wg sync.WaitGroup
	for k, id := range ids {
		got[k] = make([]outcome, n)
		for i := range n {
			wg.Go(func() {
				refs := []string{ref, "op://v/i/" + string(rune('a'+i%5))}
				got[k][i] = c.resolve(context.Background(), "", id, refs, -1)[0]
			})
		}
	}
	wg.Wait()
	for k, id := range ids {
		want := "daemon " + ref
		if id.Fingerprint != "" {
			want = id.Kind + ":" + id.Fingerprint + " " + ref
		}
		for i, o := range got[k] {
			if v := value(t, o); v != want {
				t.Fatalf("identity %d, reader %d got %q, want %q", k, i, v, want)
			}
		}
	}
	for who, calls := range b.calls {
		if calls != 1 {
			t.Errorf("%s: %d backend calls for %d concurrent readers, want 1", who, calls, n)
		}
	}
	if len(b.calls) != len(ids) {
		t.Errorf("backend calls by identity = %v, want one for each of %d", b.calls, len(ids))
	}
	// The cache answers each identity with its own value.
	for k, id := range ids {
		o := c.resolve(context.Background(), "", id, []string{ref}, -1)[0]
		if !o.fromCache || value(t, o) != value(t, got[k][0]) {
			t.Errorf("identity %d from the cache: %q (cached %v), want %q", k, o.value, o.fromCache, got[k][0].value)
		}
	}
}

// unauthorizedBackend answers every ref unauthorized, as a signed-out op
// or a Vault token that no longer logs in does.
type unauthorizedBackend struct{ identityBackend }

func (b *unauthorizedBackend) Read(ctx context.Context, account string, refs []string) []backend.Result {
	out := make([]backend.Result, len(refs))
	for i := range out {
		out[i].Err = api.Errorf(api.CodeUnauthorized, "not signed in")
	}
	return out
}

// TestOnlyOnePasswordLocksAnAccount: an authentication failure of a
// vault:// or bao:// read (a Vault token that no longer logs in) does not
// lock the 1Password account of the same name: account locks follow
// 1Password's sign-in, which --lock-on-auth-failure is about. An op://
// read's does.
func TestOnlyOnePasswordLocksAnAccount(t *testing.T) {
	b := &unauthorizedBackend{identityBackend{calls: map[string]int{}}}
	c, _ := newTestCore(t, b, coreConfig{LockOnAuthFail: true})
	for _, ref := range []string{"vault://secret/app#k", "bao://secret/app#k"} {
		if o := c.resolve(context.Background(), "", backend.Desktop, []string{ref}, -1)[0]; o.err == nil || o.err.Code != api.CodeUnauthorized {
			t.Fatalf("%s: %+v, want unauthorized", ref, o.err)
		}
	}
	if locked := c.lockedAccounts(); len(locked) != 0 {
		t.Fatalf("a Vault or OpenBao failure locked %+v", locked)
	}
	c.resolve(context.Background(), "", backend.Desktop, []string{"op://v/i/f"}, -1)
	if locked := c.lockedAccounts(); len(locked) != 1 {
		t.Errorf("a 1Password failure locked %+v, want the default account", locked)
	}
}
