package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
)

// Query is what every read asks besides its refs. The zero Query reads
// from the default account, takes what the daemon's cache holds, and
// leaves the choice of Vault or OpenBao server to the daemon.
type Query struct {
	// Account is the 1Password account to read op:// refs from (shorthand,
	// email or ID); "" means the default account. It is part of the cache
	// key.
	Account string
	// MaxAge, when set, is the oldest a cached value may be, in seconds;
	// 0 fetches every value again.
	MaxAge *float64
	// OPIdentity is the 1Password service account or Connect server the
	// caller's op would sign in as (api.OPIdentityFromEnv gives the one of
	// an environment); nil reads as the daemon's own identity. It is part
	// of the cache key of op:// refs.
	OPIdentity *api.OPIdentity
	// Servers names, by scheme ("vault", "bao"), the server the caller
	// expects (api.ReadsRequest.Servers): a daemon reading another server
	// answers with an error rather than another server's value.
	Servers map[string]api.Server
}

// Result is what Reads got for one ref: its value, or why there is none.
type Result struct {
	// Value is the secret. It is the caller's: clear it when done.
	Value []byte
	// ResolvedAt is when the daemon fetched the value from the backend.
	ResolvedAt time.Time
	// Stale reports whether the value had expired and was served because
	// the backend failed or timed out (the daemon's --stale-if-error).
	Stale bool
	// Err, when not nil, is why the ref has no value (not found, refused,
	// the backend failed); Value is nil then.
	Err *Error
}

// Read returns the value of one ref. The value is the caller's: clear it
// when done.
func (c *Client) Read(ctx context.Context, q Query, ref string) ([]byte, error) {
	res, err := c.Reads(ctx, q, []string{ref})
	if err != nil {
		return nil, err
	}
	if r := res[ref]; r.Err != nil {
		return nil, r.Err
	}
	return res[ref].Value, nil
}

// Reads reads refs, in one round trip per api.MaxRefs distinct refs (the
// most the daemon takes in one), and returns a Result for each distinct
// ref. The error is for the requests as a whole (no daemon, a locked
// session, a refused process): then there are no results. A ref that
// failed on its own has its Result's Err set.
func (c *Client) Reads(ctx context.Context, q Query, refs []string) (map[string]*Result, error) {
	unique := make([]string, 0, len(refs))
	seen := make(map[string]bool, len(refs))
	for _, ref := range refs {
		if !seen[ref] {
			seen[ref] = true
			unique = append(unique, ref)
		}
	}
	sealed, err := c.sealIdentity(ctx, q.OPIdentity)
	if err != nil {
		return nil, err
	}
	res := make(map[string]*Result, len(unique))
	for chunk := range slices.Chunk(unique, api.MaxRefs) {
		var out api.ReadsResponse
		req := api.ReadsRequest{Refs: chunk, Account: q.Account, OPIdentity: sealed, MaxAgeSeconds: q.MaxAge, Servers: q.Servers}
		if err := c.do(ctx, http.MethodPost, "/v1/reads", req, &out); err != nil {
			forget(res)
			return nil, err
		}
		for _, ref := range chunk {
			res[ref] = c.resultOf(ref, out)
		}
	}
	return res, nil
}

// resultOf is ref's Result in a daemon's answer.
func (c *Client) resultOf(ref string, out api.ReadsResponse) *Result {
	if e, ok := out.Errors[ref]; ok {
		return &Result{Err: c.withHint(&Error{Code: e.Code, Message: e.Message, Policy: e.Policy})}
	}
	r, ok := out.Results[ref]
	if !ok {
		return &Result{Err: &Error{Code: api.CodeInternal, Message: ref + ": no answer from the daemon"}}
	}
	v, err := api.Decode(r.Value, r.Encoding)
	if err != nil {
		return &Result{Err: &Error{Code: api.CodeInternal, Message: ref + ": malformed value from the daemon"}}
	}
	return &Result{Value: v, ResolvedAt: time.Unix(r.ResolvedAtUnix, 0), Stale: r.Stale}
}

// forget clears the values of res.
func forget(res map[string]*Result) {
	for _, r := range res {
		clear(r.Value)
	}
}

// Resolve resolves an environment of NAME to ref, in one round trip per
// api.MaxRefs variables. When variables fail, every failure is in the
// error, from every round trip, and no value is returned. The values are
// the caller's: clear them when done.
func (c *Client) Resolve(ctx context.Context, q Query, env map[string]string) (map[string][]byte, error) {
	names := make([]string, 0, len(env))
	for name := range env {
		names = append(names, name)
	}
	slices.Sort(names)
	sealed, err := c.sealIdentity(ctx, q.OPIdentity)
	if err != nil {
		return nil, err
	}
	vals := make(map[string][]byte, len(env))
	var failed *Error
	for chunk := range slices.Chunk(names, api.MaxRefs) {
		part := make(map[string]string, len(chunk))
		for _, name := range chunk {
			part[name] = env[name]
		}
		var out api.ResolveResponse
		if err := c.do(ctx, http.MethodPost, "/v1/resolve", api.ResolveRequest{Env: part, Account: q.Account, OPIdentity: sealed, MaxAgeSeconds: q.MaxAge}, &out); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code == "" || len(names) <= api.MaxRefs {
				return nil, err
			}
			if failed == nil {
				failed = e
			} else {
				if failed.Code != e.Code {
					failed.Code = api.CodeBackendError
				}
				failed.Message += "; " + e.Message
			}
			continue
		}
		if len(out.Stale) > 0 && c.opts.Warn != nil {
			verb := "get"
			if len(out.Stale) == 1 {
				verb = "gets"
			}
			c.opts.Warn(fmt.Sprintf("the backend failed; %s %s a stale value (expired, served by the daemon's --stale-if-error)",
				strings.Join(out.Stale, ", "), verb))
		}
		for name, v := range out.Env {
			b, err := api.Decode(v, out.Encodings[name])
			if err != nil {
				for _, v := range vals {
					clear(v)
				}
				return nil, &Error{Message: fmt.Sprintf("malformed value for %s from the daemon", name)}
			}
			vals[name] = b
		}
	}
	if failed != nil {
		for _, v := range vals {
			clear(v)
		}
		return nil, failed
	}
	return vals, nil
}

// sealIdentity seals id's token for the daemon (api.SealedIdentity), with
// the key of the bearer token this client loaded; nil stays nil.
func (c *Client) sealIdentity(ctx context.Context, id *api.OPIdentity) (*api.SealedIdentity, error) {
	if id.Kind() == api.IdentityDesktop {
		return nil, nil
	}
	if e := id.Check(); e != nil {
		return nil, &Error{Code: e.Code, Message: e.Message}
	}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sealer == nil || c.sealerToken != c.token {
		s, err := api.NewIdentitySealer([]byte(c.token))
		if err != nil {
			return nil, &Error{Message: fmt.Sprintf("seal the 1Password identity: %v", err), Err: err}
		}
		c.sealer, c.sealerToken = s, c.token
	}
	sid, err := c.sealer.Seal(id)
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("seal the 1Password identity: %v", err), Err: err}
	}
	return sid, nil
}
