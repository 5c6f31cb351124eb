package backend

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opxhq/opx/api"
)

// Multi routes each ref by its scheme: op:// to the 1Password CLI, vault://
// to Vault, bao:// to OpenBao. A Vault or OpenBao ref whose server is not
// configured gets an error that says how to configure it.
type Multi struct {
	op         *OPCLI
	vault, bao *Vault
	usedVault  atomic.Bool
	usedBao    atomic.Bool
	usedOP     atomic.Bool
}

// NewMulti returns the router over the three backends.
func NewMulti(op *OPCLI, vault, bao *Vault) *Multi {
	return &Multi{op: op, vault: vault, bao: bao}
}

// Name implements Backend.
func (m *Multi) Name() string { return "multi" }

// BatchWindow implements Windowed, for the op CLI's sake.
func (m *Multi) BatchWindow() time.Duration { return defaultWindow }

func (m *Multi) route(scheme string) Backend {
	switch scheme {
	case api.SchemeOP:
		return m.op
	case api.SchemeVault:
		return m.vault
	case api.SchemeBao:
		return m.bao
	}
	return nil
}

// Server implements ServerNamer.
func (m *Multi) Server(scheme string) (string, string, bool) {
	switch scheme {
	case api.SchemeVault:
		return m.vault.Server(scheme)
	case api.SchemeBao:
		return m.bao.Server(scheme)
	}
	return "", "", false
}

// Check implements Backend.
func (m *Multi) Check(ref api.Ref) error {
	switch ref.Scheme {
	case api.SchemeVault:
		if !m.vault.Configured() {
			return notConfigured(api.SchemeVault)
		}
	case api.SchemeBao:
		if !m.bao.Configured() {
			return notConfigured(api.SchemeBao)
		}
	}
	return nil
}

// Read implements Backend: one read per backend, run side by side.
func (m *Multi) Read(ctx context.Context, account string, refs []string) []Result {
	out := make([]Result, len(refs))
	groups := map[string][]int{}
	for i, raw := range refs {
		r, err := api.ParseRef(raw)
		if err != nil {
			out[i].Err = err
			continue
		}
		groups[r.Scheme] = append(groups[r.Scheme], i)
	}
	var wg sync.WaitGroup
	for scheme, idx := range groups {
		switch scheme {
		case api.SchemeVault:
			m.usedVault.Store(true)
		case api.SchemeBao:
			m.usedBao.Store(true)
		case api.SchemeOP:
			m.usedOP.Store(true)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := make([]string, len(idx))
			for j, i := range idx {
				sub[j] = refs[i]
			}
			for j, r := range m.route(scheme).Read(ctx, account, sub) {
				out[idx[j]] = r
			}
		}()
	}
	wg.Wait()
	return out
}

// Validate implements Backend: every backend read through so far (the
// 1Password CLI when none was).
func (m *Multi) Validate(ctx context.Context, accounts []string) error {
	any := false
	if m.usedVault.Load() {
		any = true
		if err := m.vault.Validate(ctx, nil); err != nil {
			return err
		}
	}
	if m.usedBao.Load() {
		any = true
		if err := m.bao.Validate(ctx, nil); err != nil {
			return err
		}
	}
	if m.usedOP.Load() || !any {
		return m.op.Validate(ctx, accounts)
	}
	return nil
}

// Leases implements LeaseHolder: Vault's and OpenBao's.
func (m *Multi) Leases() []api.Lease { return append(m.vault.Leases(), m.bao.Leases()...) }

// RevokeLeases implements LeaseHolder.
func (m *Multi) RevokeLeases() int { return m.vault.RevokeLeases() + m.bao.RevokeLeases() }

// Usage is the op calls per account, for status.
func (m *Multi) Usage() []api.OPUsage { return m.op.Usage() }

// Calls implements Backend: op processes and HTTP reads together.
func (m *Multi) Calls() uint64 { return m.op.Calls() + m.vault.Calls() + m.bao.Calls() }

// Close implements Backend.
func (m *Multi) Close() error {
	m.vault.Close()
	m.bao.Close()
	return nil
}
