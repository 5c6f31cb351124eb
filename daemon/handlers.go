package daemon

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/audit"
	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/internal/console"
	"github.com/opxhq/opx/internal/printable"
	"github.com/opxhq/opx/policy"
	"github.com/opxhq/opx/self"
	"github.com/opxhq/opx/session"
)

// route is one endpoint: its method and handler.
type route struct {
	method string
	h      func(w http.ResponseWriter, r *http.Request)
}

// routes returns the API handler. Every request is authenticated first; the
// handlers then check their method and decode a bounded body.
func (s *server) routes() http.Handler {
	table := map[string]route{
		"/v1/read":             {http.MethodPost, s.handleRead},
		"/v1/reads":            {http.MethodPost, s.handleReads},
		"/v1/resolve":          {http.MethodPost, s.handleResolve},
		"/v1/status":           {http.MethodGet, s.handleStatus},
		"/v1/session/unlock":   {http.MethodPost, s.handleUnlock},
		"/v1/session/lock":     {http.MethodPost, s.handleLock},
		"/v1/backend/verify":   {http.MethodPost, s.handleVerify},
		"/v1/backend/health":   {http.MethodPost, s.handleHealth},
		"/v1/daemon/stop":      {http.MethodPost, s.handleStop},
		"/v1/cache/forget":     {http.MethodPost, s.handleForget},
		"/v1/approvals":        {http.MethodGet, s.handleApprovals},
		"/v1/approvals/answer": {http.MethodPost, s.handleApprove},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				// The panic value may hold request data: log only where.
				s.log.Error().Str("path", r.URL.Path).Msg("handler panicked")
				writeError(w, api.Errorf(api.CodeInternal, "internal error"))
			}
		}()
		if e := s.checkPeer(r); e != nil {
			writeError(w, e)
			return
		}
		if !tokenMatches(r.Header.Get("Authorization"), s.token) {
			msg := "invalid bearer token"
			if r.Header.Get("Authorization") == "" {
				msg = "missing bearer token"
			}
			s.log.Warn().Str("path", r.URL.Path).Msg(msg)
			s.audit.AuthFailure(auditPeer(peerFrom(r.Context())), msg)
			writeError(w, api.Errorf(api.CodeUnauthorized, "%s", msg))
			return
		}
		// One snapshot of the policy per request (the file is read once),
		// which every decision of the request uses.
		pol := s.policy.Current()
		r = r.WithContext(context.WithValue(r.Context(), snapshotKey{}, pol))
		w.Header().Set(api.PathsHeader, s.pathsHeader)
		if pol.AllowsAny(requesterOf(peerFrom(r.Context())), s.policyEnv) {
			w.Header().Set(api.SettingsHeader, s.settingsHeader.of(s))
		} else {
			// Enough to tell a fake daemon from a real one; not the
			// servers or the op program (issue 21: a program the
			// policy allows no ref learns nothing of where secrets are).
			w.Header().Set(api.SettingsHeader, s.settingsHeader.limited(s))
		}
		rt, ok := table[r.URL.Path]
		if !ok {
			writeError(w, api.Errorf(api.CodeNotFound, "no endpoint %s", r.URL.Path))
			return
		}
		if r.Method != rt.method {
			w.Header().Set("Allow", rt.method)
			writeError(w, api.Errorf(api.CodeMethod, "%s wants %s, not %s", r.URL.Path, rt.method, r.Method))
			return
		}
		rt.h(w, r)
	})
}

// readRequest is a request to /v1/read, /v1/reads or /v1/resolve once its
// body is decoded and the fields they all have are checked: the account and
// the max age it reads with, and the policy snapshot and the place its refs
// are decided against.
type readRequest struct {
	s       *server
	r       *http.Request
	account string
	// id is the identity op reads as: backend.Desktop for the daemon's
	// own, else the request's, with its own copy of the token (close
	// wipes it).
	id     backend.OPIdentity
	maxAge time.Duration
	pol    *policy.Snapshot
	at     *where
	// w is the response, for the interim answer a read that waits for
	// the user sends; asking, the refs the policy asks the user about
	// (allow returned errAsking for them), until settle.
	w      http.ResponseWriter
	asking []string
}

// openRead decodes the body of a read endpoint into body (an
// *api.ReadRequest, *api.ReadsRequest or *api.ResolveRequest) and checks
// its account and max_age_seconds.
func (s *server) openRead(w http.ResponseWriter, r *http.Request, body any) (*readRequest, *api.Error) {
	if e := s.decodeBody(w, r, body); e != nil {
		return nil, e
	}
	var account string
	var age *float64
	var sealed *api.SealedIdentity
	switch b := body.(type) {
	case *api.ReadRequest:
		account, age, sealed = b.Account, b.MaxAgeSeconds, b.OPIdentity
	case *api.ReadsRequest:
		account, age, sealed = b.Account, b.MaxAgeSeconds, b.OPIdentity
	case *api.ResolveRequest:
		account, age, sealed = b.Account, b.MaxAgeSeconds, b.OPIdentity
	default:
		return nil, api.Errorf(api.CodeInternal, "%T is not a read request", body)
	}
	if e := validAccount(account); e != nil {
		return nil, e
	}
	if e := validMaxAge(age); e != nil {
		return nil, e
	}
	// The token is sealed in the body: its one clear copy is opened here
	// and wiped as soon as the identity has its own.
	opID, e := s.sealer.Open(sealed)
	if e != nil {
		return nil, e
	}
	defer opID.Wipe()
	rd := s.newReadRequest(r, account, maxAge(age))
	rd.w = w
	if id := backend.NewOPIdentity(opID); id.Fingerprint != s.opIdentity.Fingerprint {
		rd.id = id
		rd.at.identityKind, rd.at.identity = id.Kind, id.Fingerprint
	} else {
		id.Wipe() // the daemon's own: read as the daemon
	}
	return rd, nil
}

// close wipes the request's copy of its identity's token.
func (rd *readRequest) close() {
	if rd != nil {
		rd.id.Wipe()
	}
}

// newReadRequest is a read of r's refs for account, no older than maxAge
// (as core.resolve takes it).
func (s *server) newReadRequest(r *http.Request, account string, maxAge time.Duration) *readRequest {
	return &readRequest{s: s, r: r, account: account, id: backend.Desktop, maxAge: maxAge, pol: s.snapshot(r), at: s.whereOf(account)}
}

// allow returns why ref may not be read, or nil: it is not valid for this
// daemon's backend, or the policy denies it (the audit log records the
// decision).
//
// A ref the policy asks the user about gets errAsking, and waits in
// rd.asking for settle; one an answer opx approve --for remembers is
// allowed.
func (rd *readRequest) allow(ref string) *api.Error {
	if e := rd.s.check(ref); e != nil {
		return e
	}
	d := rd.s.decide(rd.r, rd.pol, rd.at, ref)
	if d.Ask {
		if rd.w == nil {
			return rd.s.authorize(rd.r, rd.pol, rd.at, ref) // refuses
		}
		until, ok := rd.s.asker.remembered(rd, ref)
		if !ok {
			rd.asking = append(rd.asking, ref)
			return errAsking
		}
		d = policy.Decision{Allow: true, Rule: d.Rule, Reason: "approved by the user until " + until.Format(time.TimeOnly) + " (opx approve --for)"}
		p := peerFrom(rd.r.Context())
		rd.s.audit.Approval(*auditPeer(p), auditRequester(p), audit.Question{Refs: []string{ref}, Account: rd.at.account, Server: rd.serverOf(ref)},
			audit.StepRemembered, "yes", "remembered", nil, time.Until(until))
	}
	return rd.s.record(rd.r, rd.pol, rd.at, ref, d, nil)
}

// settle asks the user about the refs in rd.asking, once for all of them,
// records each decision, and returns each ref's refusal (none: allowed).
// While it waits it sends the client an interim answer (102, with
// api.WaitingHeader) naming the question, so that it can say so.
func (rd *readRequest) settle() map[string]*api.Error {
	if len(rd.asking) == 0 {
		return nil
	}
	asking := rd.asking
	rd.asking = nil
	waiting := func(id string) {
		rd.w.Header().Set(api.WaitingHeader, "approval "+id)
		rd.w.WriteHeader(http.StatusProcessing)
		rd.w.Header().Del(api.WaitingHeader)
	}
	refused := rd.s.asker.ask(rd, asking, waiting)
	out := make(map[string]*api.Error, len(asking))
	for _, ref := range asking {
		d := policy.Decision{Allow: refused == nil, Rule: -1, Reason: "approved by the user"}
		if refused != nil {
			d.Reason = refused.Message
		}
		out[ref] = rd.s.record(rd.r, rd.pol, rd.at, ref, d, refused)
	}
	return out
}

// read resolves refs (unique, each allowed) and remembers the account when
// a read of it succeeded. The caller wipes the values (wipeValues).
func (rd *readRequest) read(refs []string) []outcome {
	if len(refs) == 0 {
		return nil
	}
	outs := rd.s.core.resolve(rd.r.Context(), rd.account, rd.id, refs, rd.maxAge)
	if rd.id.Kind == api.IdentityDesktop {
		// An unlock checks the daemon's own sign-in for the accounts it
		// read: not those a caller's service account read.
		rd.s.rememberRead(rd.account, outs)
	}
	return outs
}

// wipeValues zeroes the values of outs once they are answered.
func wipeValues(outs []outcome) {
	for _, out := range outs {
		clear(out.value)
	}
}

// checkCount refuses a list of n entries that is empty or longer than
// api.MaxRefs; field is its name in the request, noun what it holds.
func checkCount(n int, field, noun string) *api.Error {
	if n == 0 {
		return api.Errorf(api.CodeBadRequest, "%s is empty", field)
	}
	if n > api.MaxRefs {
		return api.Errorf(api.CodeTooLarge, "%d %s in one request; the limit is %d", n, noun, api.MaxRefs)
	}
	return nil
}

func (s *server) handleRead(w http.ResponseWriter, r *http.Request) {
	var req api.ReadRequest
	rd, e := s.openRead(w, r, &req)
	defer rd.close()
	if e == nil {
		if e = rd.allow(req.Ref); e == errAsking {
			e = rd.settle()[req.Ref]
		}
	}
	if e != nil {
		writeError(w, e)
		return
	}
	outs := rd.read([]string{req.Ref})
	defer wipeValues(outs)
	if out := outs[0]; out.err != nil {
		s.logRefError(req.Ref, out.err)
		writeError(w, out.err)
		return
	}
	buf := api.NewBuf(minSecretAnswer)
	buf.ReadResult(readResult(req.Ref, outs[0], time.Now()))
	writeSecretJSON(w, buf)
}

// handleReads answers each ref on its own: a ref refused or failed is an
// entry in the answer's errors, not the request's error. A locked session
// refuses the request before any ref is decided.
func (s *server) handleReads(w http.ResponseWriter, r *http.Request) {
	var req api.ReadsRequest
	rd, e := s.openRead(w, r, &req)
	defer rd.close()
	if e == nil {
		e = checkCount(len(req.Refs), "refs", "refs")
	}
	if e == nil && s.session.Locked() {
		e = errLocked
	}
	if e != nil {
		writeError(w, e)
		return
	}
	refs, errs := rd.readable(req.Refs, req.Servers)
	outs := rd.read(refs)
	defer wipeValues(outs)
	results := make(map[string]*api.ReadResult, len(refs))
	now := time.Now()
	for i, out := range outs {
		if out.err != nil {
			s.logRefError(refs[i], out.err)
			errs[refs[i]] = out.err
			continue
		}
		results[refs[i]] = readResult(refs[i], out, now)
	}
	buf := api.NewBuf(minSecretAnswer)
	buf.ReadsResponse(results, errs)
	writeSecretJSON(w, buf)
}

// readable returns the refs of a /v1/reads request that may be read, each
// once, and why each of the others may not.
func (rd *readRequest) readable(all []string, servers map[string]api.Server) ([]string, map[string]*api.Error) {
	errs := make(map[string]*api.Error)
	var refs []string
	seen := make(map[string]bool, len(all))
	for _, ref := range all {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		e := rd.allow(ref)
		if e == nil {
			e = rd.s.sameServer(ref, servers)
		}
		if e != nil {
			errs[ref] = e
			continue
		}
		refs = append(refs, ref)
	}
	if len(rd.asking) > 0 {
		// The refs the user was asked about, in the request's order.
		answers := rd.settle()
		refs = refs[:0]
		for ref := range seen {
			delete(seen, ref)
		}
		for _, ref := range all {
			if seen[ref] {
				continue
			}
			seen[ref] = true
			e, asked := answers[ref]
			if asked && e == nil {
				e = rd.s.sameServer(ref, servers)
			}
			switch {
			case !asked && errs[ref] == nil, asked && e == nil:
				refs = append(refs, ref)
				delete(errs, ref)
			case asked:
				errs[ref] = e
			}
		}
	}
	return refs, errs
}

// handleResolve answers every variable or none: one that is refused or
// fails makes the request's error, which names each of them.
func (s *server) handleResolve(w http.ResponseWriter, r *http.Request) {
	var req api.ResolveRequest
	rd, e := s.openRead(w, r, &req)
	defer rd.close()
	if e == nil {
		e = checkCount(len(req.Env), "env", "variables")
	}
	if e != nil {
		writeError(w, e)
		return
	}
	names := slices.Sorted(maps.Keys(req.Env))
	refs, index, failed := rd.envRefs(names, req.Env)
	var outs []outcome
	if len(failed) == 0 {
		outs = rd.read(refs)
		defer wipeValues(outs)
		for _, name := range names {
			if out := outs[index[req.Env[name]]]; out.err != nil {
				s.logRefError(req.Env[name], out.err)
				failed[name] = out.err
			}
		}
	}
	if len(failed) > 0 {
		writeError(w, resolveError(names, failed))
		return
	}
	env := make(map[string][]byte, len(names))
	var stale []string
	for _, name := range names {
		out := outs[index[req.Env[name]]]
		env[name] = out.value
		if out.stale {
			stale = append(stale, name)
		}
	}
	buf := api.NewBuf(minSecretAnswer)
	buf.ResolveResponse(env, stale...)
	writeSecretJSON(w, buf)
}

// envRefs returns the refs of env's variables (names, sorted) that may be
// read, each once, with the position of each variable's ref in them, and
// why each of the other variables may not be read.
func (rd *readRequest) envRefs(names []string, env map[string]string) (refs []string, index map[string]int, failed map[string]*api.Error) {
	failed = make(map[string]*api.Error) // by name
	index = make(map[string]int)         // ref -> position in refs
	for _, name := range names {
		if !validEnvName(name) {
			failed[name] = api.Errorf(api.CodeBadRequest, "invalid variable name")
			continue
		}
		ref := env[name]
		if e := rd.allow(ref); e != nil {
			failed[name] = e
			continue
		}
		if _, ok := index[ref]; !ok {
			index[ref] = len(refs)
			refs = append(refs, ref)
		}
	}
	if len(rd.asking) > 0 {
		answers := rd.settle()
		for _, name := range names {
			e, asked := answers[env[name]]
			if !asked {
				continue
			}
			if e != nil {
				failed[name] = e
				continue
			}
			delete(failed, name)
			if _, ok := index[env[name]]; !ok {
				index[env[name]] = len(refs)
				refs = append(refs, env[name])
			}
		}
	}
	return refs, index, failed
}

// resolveError names every variable that failed; the code is theirs when
// they share one, else backend_error.
func resolveError(names []string, failed map[string]*api.Error) *api.Error {
	var code string
	var parts []string
	for _, name := range names {
		e, ok := failed[name]
		if !ok {
			continue
		}
		if code == "" {
			code = e.Code
		} else if code != e.Code {
			code = api.CodeBackendError
		}
		parts = append(parts, name+": "+e.Message)
	}
	return api.Errorf(code, "%d of %d variables failed: %s", len(parts), len(names), strings.Join(parts, "; "))
}

// handleStatus answers GET /v1/status. A program the policy allows no ref
// learns only that the daemon runs (version, pid), whether it is locked, and
// the policy's state: the rest (servers, leases, accounts, the policy's
// rules and hash) tells where secrets are.
func (s *server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !s.snapshot(r).AllowsAny(requesterOf(peerFrom(r.Context())), s.policyEnv) {
		// The policy's state and reason stay: when it fails closed, every
		// program is refused, and status must still say why.
		type state struct {
			State  string `json:"state"`
			Reason string `json:"reason,omitempty"`
		}
		pol := s.snapshot(r)
		writeJSON(w, http.StatusOK, struct {
			Limited bool   `json:"limited"`
			Version string `json:"version"`
			PID     int    `json:"pid"`
			Session state  `json:"session"`
			Policy  state  `json:"policy"`
		}{true, s.info.Version, os.Getpid(), state{State: s.session.Status().State}, state{pol.State, pol.Reason}})
		return
	}
	c := s.core.counters()
	ps := s.policyStatus()
	st := api.Status{
		Version:       s.info.Version,
		PID:           os.Getpid(),
		Backend:       s.backend.Name(),
		SocketPath:    s.paths.SocketPath,
		UptimeSeconds: int64(time.Since(s.started) / time.Second),
		TTLSeconds:    int64(s.cfg.TTL / time.Second),
		CacheSize:     c.cacheSize,
		CacheCapacity: s.cfg.CacheSize,
		Hits:          c.hits,
		Misses:        c.misses,
		Coalesced:     c.coalesced,
		StaleServed:   c.staleServed,
		Refreshes:     c.refreshes,
		BackendCalls:  c.backendCalls,
		InFlight:      c.inFlight,
		Goroutines:    runtime.NumGoroutine(),
		Connections:   s.conns.status(),
		Session:       s.sessionStatus(),
		Policy:        ps,
		Ask:           s.asker.status(ps.AskRules > 0 || ps.Default == policy.DefaultAsk),
		Audit:         s.auditStatus(),
		Paths: api.Paths{
			Config: s.paths.ConfigFile,
			Policy: s.paths.PolicyFile,
			Socket: s.paths.SocketPath,
			Data:   s.paths.DataDir,
			Log:    s.paths.LogFile,
		},
		Settings: s.settings(),
	}
	if u, ok := s.backend.(interface{ Usage() []api.OPUsage }); ok {
		st.OPCalls = u.Usage()
	}
	if lh, ok := s.backend.(backend.LeaseHolder); ok {
		st.Leases = lh.Leases()
	}
	writeJSON(w, http.StatusOK, st)
}

// sessionStatus is the session's state with the accounts locked after an
// authentication failure.
func (s *server) sessionStatus() api.SessionStatus {
	st := s.session.Status()
	st.LockedAccounts = s.core.lockedAccounts()
	if f := s.follows.Load(); f != nil {
		st.Follows = *f
	}
	return st
}

// settings are the daemon's effective settings for status: where op is
// found now (it is looked up at every call), and the Vault and OpenBao
// addresses config.json holds now.
func (s *server) settings() api.Settings {
	set := api.Settings{
		BackendTimeoutSeconds: s.cfg.BackendTimeout.Seconds(),
		MaxConcurrent:         s.cfg.MaxConcurrent,
		LockOnAuthFailure:     s.cfg.LockOnAuthFailure,
		StaleIfErrorSeconds:   s.cfg.StaleIfError.Seconds(),
		RefreshAhead:          s.cfg.RefreshAhead,
		RevokeLeasesOnLock:    s.cfg.RevokeLeasesOnLock,
		OPBudget:              s.cfg.OPBudget.String(),
		OPPath:                s.cfg.OPPath,
		Service:               s.cfg.Service,
		ExitWhenIdleSeconds:   s.cfg.ExitWhenIdle.Seconds(),
	}
	if found, err := self.LookPath(cmp.Or(s.cfg.OPPath, "op")); err == nil {
		set.OPFound = found
		if s.cfg.Backend == "opcli" || s.cfg.Backend == "multi" {
			set.OPVersion = s.opVersion(found)
		}
	}
	if c, err := api.LoadVaultConfig(api.SchemeVault, s.paths.ConfigFile); err == nil {
		set.VaultAddress = c.Address
	}
	if c, err := api.LoadVaultConfig(api.SchemeBao, s.paths.ConfigFile); err == nil {
		set.BaoAddress = c.Address
	}
	return set
}

// opVersion is what `path --version` prints, asked again only when the
// program at path changes (an upgrade), so status stays cheap.
func (s *server) opVersion(path string) string {
	stamp := path
	if fi, err := os.Stat(path); err == nil {
		stamp += "|" + fi.ModTime().String() + "|" + strconv.FormatInt(fi.Size(), 10)
	}
	s.opVer.Lock()
	defer s.opVer.Unlock()
	if s.opVer.stamp == stamp {
		return s.opVer.version
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	console.HideChild(cmd)
	out, err := cmd.Output()
	v := strings.TrimSpace(string(out))
	if err != nil || len(v) > 64 || strings.ContainsAny(v, "\n\r") {
		v = ""
	}
	s.opVer.stamp, s.opVer.version = stamp, v
	return v
}

// openSessionAction decodes the empty body of POST /v1/session/unlock,
// /v1/session/lock or /v1/daemon/stop and authorizes action.
func (s *server) openSessionAction(w http.ResponseWriter, r *http.Request, action string) *api.Error {
	var req struct{}
	if e := s.decodeBody(w, r, &req); e != nil {
		return e
	}
	return s.authorizeSession(r, action)
}

// handleUnlock lifts the session lock and the account locks of
// --lock-on-auth-failure. Each account concerned (all those in use for a
// locked session, else the locked ones) is checked with the backend on its
// own: those that pass are unlocked, those that fail stay (or become)
// locked, named in the answer, so that one signed-out account does not keep
// the others locked.
func (s *server) handleUnlock(w http.ResponseWriter, r *http.Request) {
	if e := s.openSessionAction(w, r, audit.ActionUnlock); e != nil {
		writeError(w, e)
		return
	}
	sessionLocked := s.session.Locked()
	accounts, wasLocked := s.accountsToUnlock(sessionLocked)
	if len(accounts) == 0 {
		writeJSON(w, http.StatusOK, api.SessionResponse{Success: true, State: api.StateUnlocked, Message: "the session is already unlocked"})
		return
	}
	res := s.checkAccounts(r.Context(), accounts, wasLocked)
	if len(res.passed) == 0 {
		writeJSON(w, http.StatusOK, api.SessionResponse{Success: false, State: s.session.Status().State,
			Message: "unlock failed: " + strings.Join(res.failed, "; ")})
		return
	}
	what := s.unlock(sessionLocked, res.passed)
	if len(res.failed) > 0 {
		msg := what
		if len(res.stillLocked) > 0 {
			msg += ", but still locked: " + strings.Join(res.stillLocked, "; ")
		}
		if len(res.notChecked) > 0 {
			msg += ", but the backend's check failed for " + strings.Join(res.notChecked, "; ")
		}
		writeJSON(w, http.StatusOK, api.SessionResponse{Success: false, State: s.session.Status().State, Message: msg})
		return
	}
	writeJSON(w, http.StatusOK, api.SessionResponse{Success: true, State: api.StateUnlocked, Message: what})
}

// accountsToUnlock returns the accounts an unlock checks, sorted (none when
// nothing is locked), and which of them are locked now.
func (s *server) accountsToUnlock(sessionLocked bool) ([]string, map[string]bool) {
	check := map[string]bool{}
	wasLocked := map[string]bool{}
	for _, l := range s.core.lockedAccounts() {
		check[l.Account], wasLocked[l.Account] = true, true
	}
	if sessionLocked {
		for _, a := range s.accountsInUse() {
			check[a] = true
		}
		if len(check) == 0 {
			check[""] = true
		}
	}
	return slices.Sorted(maps.Keys(check)), wasLocked
}

// unlockCheck is what the backend said of the accounts an unlock checked:
// those that passed, and, as "account: why", those that failed, and of
// these the ones locked for it and the ones left as they were.
type unlockCheck struct {
	passed                          []string
	failed, stillLocked, notChecked []string
}

// checkAccounts checks each account with the backend on its own and
// unlocks those that pass.
func (s *server) checkAccounts(ctx context.Context, accounts []string, wasLocked map[string]bool) unlockCheck {
	var res unlockCheck
	refused := map[string]*api.Error{}
	for _, a := range accounts {
		if err := s.backend.Validate(ctx, []string{a}); err != nil {
			refused[a] = toAPIError(err)
			s.log.Warn().Str("account", a).Err(err).Msg("unlock: the backend refused the account")
			res.failed = append(res.failed, accountName(a)+": "+refused[a].Message)
			continue
		}
		s.core.unlockAccount(a)
		res.passed = append(res.passed, a)
	}
	for _, a := range accounts {
		e := refused[a]
		if e == nil {
			continue
		}
		// A locked account stays locked, with the new reason. When the
		// session opens for the others, an account that now fails its
		// sign-in is locked as a read would lock it
		// (--lock-on-auth-failure); other failures (op missing, a
		// timeout) lock nothing: its reads say so themselves.
		if wasLocked[a] || len(res.passed) > 0 && s.cfg.LockOnAuthFailure && e.Code == api.CodeUnauthorized {
			s.core.lockAccount(a, e.Message)
			res.stillLocked = append(res.stillLocked, accountName(a)+": "+e.Message)
		} else {
			res.notChecked = append(res.notChecked, accountName(a)+": "+e.Message)
		}
	}
	return res
}

// unlock opens the session when it is locked (else the accounts passed
// are open already), logs and audits it, and says what it opened.
func (s *server) unlock(sessionLocked bool, passed []string) string {
	if sessionLocked {
		s.session.Unlock()
		s.log.Info().Msg("session unlocked")
		s.audit.Session(audit.SessionUnlock, "opx unlock")
		return "session unlocked"
	}
	names := make([]string, len(passed))
	for i, a := range passed {
		names[i] = accountName(a)
	}
	s.log.Info().Strs("accounts", passed).Msg("accounts unlocked")
	s.audit.Session(audit.SessionUnlock, "opx unlock: "+strings.Join(names, ", "))
	return strings.Join(names, ", ") + " unlocked"
}

func (s *server) handleLock(w http.ResponseWriter, r *http.Request) {
	if e := s.openSessionAction(w, r, audit.ActionLock); e != nil {
		writeError(w, e)
		return
	}
	n := s.core.cache.Len()
	if !s.session.Lock(session.ReasonManual) {
		writeJSON(w, http.StatusOK, api.SessionResponse{Success: true, State: api.StateLocked, Message: "the session is already locked"})
		return
	}
	writeJSON(w, http.StatusOK, api.SessionResponse{Success: true, State: api.StateLocked, Message: fmt.Sprintf("session locked; %d cached values wiped", n)})
}

// handleForget drops the cached values of one scheme's refs, so that the
// next read of each asks the backend: the vault shim calls it after a
// write it passed to the real CLI. Like lock, it needs a requester the
// policy allows some ref, and goes ahead when the audit log cannot record
// it (it only wipes).
func (s *server) handleForget(w http.ResponseWriter, r *http.Request) {
	var req api.ForgetRequest
	if e := s.decodeBody(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	if !slices.Contains(api.Schemes, req.Scheme) {
		writeError(w, api.Errorf(api.CodeBadRequest, "unknown scheme %q (want op, vault or bao)", req.Scheme))
		return
	}
	if e := s.authorizeSession(r, audit.ActionForget); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, api.ForgetResponse{Dropped: s.core.forgetScheme(req.Scheme)})
}

// handleApprovals lists the questions waiting for the user's answer, to a
// program the policy allows some ref (as lock needs).
func (s *server) handleApprovals(w http.ResponseWriter, r *http.Request) {
	if e := s.authorizeSession(r, audit.ActionApprove); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, api.ApprovalsResponse{Pending: s.asker.list()})
}

// handleApprove answers a question: for opx approve. It needs a program
// the policy allows some ref, and never one whose read the question is
// about, nor a process that program (or its opx client) started.
func (s *server) handleApprove(w http.ResponseWriter, r *http.Request) {
	var req api.ApproveRequest
	if e := s.decodeBody(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	if req.RememberSeconds < 0 || req.RememberSeconds > maxRemember.Seconds() || req.RememberSeconds != req.RememberSeconds {
		writeError(w, api.Errorf(api.CodeBadRequest, "remember_seconds %v: want 0 to %v", req.RememberSeconds, maxRemember.Seconds()))
		return
	}
	if req.RememberSeconds > 0 && !req.Allow {
		writeError(w, api.Errorf(api.CodeBadRequest, "remember_seconds goes with allow: a refusal is not remembered"))
		return
	}
	if e := s.authorizeSession(r, audit.ActionApprove); e != nil {
		writeError(w, e)
		return
	}
	q := s.asker.find(req.ID)
	if q == nil {
		writeError(w, api.Errorf(api.CodeNotFound, "no question %q is waiting (answered, timed out, or never asked): opx approve lists those that are", printable.String(req.ID)))
		return
	}
	p := peerFrom(r.Context())
	if p == nil || q.startedBy(p.PID) {
		s.log.Warn().Str("question", q.id).Msg("the program the question is about, or a process it started, tried to answer it")
		e := api.Errorf(api.CodeForbidden, "this process may not answer question %s: it is about the reads of the program that started it (or of this process itself)", q.id)
		e.Policy = true
		writeError(w, e)
		return
	}
	remember := time.Duration(req.RememberSeconds * float64(time.Second))
	if !s.asker.answer(q, req.Allow, "opx approve", p, remember) {
		writeError(w, api.Errorf(api.CodeNotFound, "question %s was answered or timed out meanwhile", q.id))
		return
	}
	msg := "refused"
	if req.Allow {
		msg = "allowed"
		if remember > 0 {
			msg += fmt.Sprintf(", and remembered for this program and these refs until %s (or opx lock)", time.Now().Add(remember).Format(time.TimeOnly))
		}
	}
	writeJSON(w, http.StatusOK, api.ApproveResponse{Message: msg})
}

// handleStop stops the daemon gracefully, for opx stop and opx restart:
// it answers, then the server stops taking connections, lets the requests
// in flight finish, wipes the cache and exits. Like lock, it needs a
// requester the policy allows some ref.
func (s *server) handleStop(w http.ResponseWriter, r *http.Request) {
	if e := s.openSessionAction(w, r, audit.ActionStop); e != nil {
		writeError(w, e)
		return
	}
	p := peerFrom(r.Context())
	s.log.Info().Int("requester_pid", requesterOf(p).PID).Str("requester", requesterOf(p).Path).Msg("stop requested")
	writeJSON(w, http.StatusOK, api.StopResponse{Success: true, PID: os.Getpid(), Message: "stopping once the requests in flight have finished"})
	s.requestStop()
}

// handleHealth runs the backend's own checks for opx doctor: its program
// or server reachable, and each account concerned (the request's, those
// read so far, the locked ones) signed in. It reads no secret of the
// user's: a Vault or OpenBao login whose credentials are refs is not made
// for it. Like lock, it needs a requester the policy allows some ref, and
// nothing is checked while the session is locked.
func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	var req api.HealthRequest
	if e := s.decodeBody(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	if e := validAccount(req.Account); e != nil {
		writeError(w, e)
		return
	}
	if e := s.authorizeSession(r, audit.ActionCheck); e != nil {
		writeError(w, e)
		return
	}
	if s.session.Locked() {
		writeJSON(w, http.StatusOK, api.HealthResponse{Checks: []api.Check{{Name: "backend", OK: true, Warn: true,
			Detail: "not checked while the session is locked", Fix: "run: opx unlock"}}})
		return
	}
	accounts := map[string]bool{req.Account: true}
	for _, a := range s.accountsInUse() {
		accounts[a] = true
	}
	for _, l := range s.core.lockedAccounts() {
		accounts[l.Account] = true
	}
	checks := backend.Diagnose(r.Context(), s.backend, slices.Sorted(maps.Keys(accounts)))
	writeJSON(w, http.StatusOK, api.HealthResponse{Checks: checks})
}

// handleVerify tries a Vault or OpenBao login for opx login, so that the
// client needs no Vault client of its own. It needs a requester the policy
// allows some ref, and the credential refs it reads pass the policy as reads
// of that requester.
func (s *server) handleVerify(w http.ResponseWriter, r *http.Request) {
	var req api.VerifyRequest
	if e := s.decodeBody(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	if req.Kind != api.SchemeVault && req.Kind != api.SchemeBao {
		writeError(w, api.Errorf(api.CodeBadRequest, "kind %q: want vault or bao", req.Kind))
		return
	}
	login := &audit.Login{Kind: req.Kind, Address: req.Config.Address, Namespace: req.Config.Namespace, Method: cmp.Or(req.Config.Method, "token")}
	if e := s.authorizeAction(r, audit.ActionVerify, login); e != nil {
		writeError(w, e)
		return
	}
	if other, err := api.LoadVaultConfig(api.OtherServer(req.Kind), s.paths.ConfigFile); err == nil {
		if err := api.LoginCycle(req.Kind, req.Config, other); err != nil {
			writeError(w, api.Errorf(api.CodeBadRequest, "%v", err))
			return
		}
	}
	rd := s.newReadRequest(r, "", -1)
	resolve := func(ctx context.Context, ref string) ([]byte, error) {
		if e := rd.allow(ref); e != nil {
			return nil, e
		}
		out := s.core.resolve(ctx, "", backend.Desktop, []string{ref}, -1)[0]
		if out.err != nil {
			return nil, out.err
		}
		return out.value, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
	defer cancel()
	name, err := backend.VerifyLogin(ctx, req.Kind, req.Config, req.Token, resolve)
	if err != nil {
		e := toAPIError(err)
		s.log.Warn().Str("backend", req.Kind).Str("method", req.Config.Method).Str("code", e.Code).Msg("login check failed")
		writeError(w, e)
		return
	}
	s.log.Info().Str("backend", req.Kind).Str("method", req.Config.Method).Str("address", req.Config.Address).Msg("login checked")
	writeJSON(w, http.StatusOK, api.VerifyResponse{DisplayName: name})
}

func (s *server) policyStatus() api.PolicyStatus {
	snap := s.policy.Current()
	st := api.PolicyStatus{Path: snap.Path, State: snap.State, Hash: snap.Hash, Reason: snap.Reason}
	if snap.State == policy.StateLoaded {
		st.Loaded, st.Rules, st.DefaultDeny = true, len(snap.Policy.Allow), snap.Policy.DefaultDeny
		st.Default = snap.Policy.Default
		if st.Default == "" {
			st.Default = map[bool]string{true: policy.DefaultDeny, false: policy.DefaultAllow}[st.DefaultDeny]
		}
		for _, r := range snap.Policy.Allow {
			if r.Ask {
				st.AskRules++
			}
		}
	}
	return st
}

func (s *server) auditStatus() api.AuditStatus {
	if s.audit == nil {
		return api.AuditStatus{Healthy: true}
	}
	healthy, err := s.audit.Health()
	if healthy {
		s.auditDown.Store(false)
	}
	st := api.AuditStatus{Enabled: true, Healthy: healthy, Path: s.audit.Path()}
	if err != nil {
		st.Error = err.Error()
	}
	return st
}

// check validates ref for this daemon's backend.
func (s *server) check(raw string) *api.Error {
	ref, err := api.ParseRef(raw)
	if err == nil {
		err = s.backend.Check(ref)
	}
	if err != nil {
		return toAPIError(err)
	}
	return nil
}

// sameServer refuses ref when the client expects its scheme's refs from
// another server than the one the daemon reads them from. It is asked
// after the policy (a program the policy denies learns nothing of the
// daemon's server by guessing it), and the message names only the
// client's own server.
func (s *server) sameServer(ref string, want map[string]api.Server) *api.Error {
	scheme, _, _ := strings.Cut(ref, "://")
	w, ok := want[scheme]
	if !ok {
		return nil
	}
	if n, isNamer := s.backend.(backend.ServerNamer); isNamer {
		addr, ns, ok := n.Server(scheme)
		if ok && api.SameServer(api.Server{Address: addr, Namespace: ns}, w) {
			return nil
		}
	}
	where := w.Address
	if w.Namespace != "" {
		where += " (namespace " + w.Namespace + ")"
	}
	return api.Errorf(api.CodeBadRequest, "%s: the daemon does not read %s:// refs from %s", ref, scheme, where)
}

// logRefError logs a failed ref at debug level (refs are names, not
// secrets; messages never hold values).
func (s *server) logRefError(ref string, e *api.Error) {
	s.log.Debug().Str("ref", ref).Str("code", e.Code).Str("error", e.Message).Msg("read failed")
}

func readResult(ref string, out outcome, now time.Time) *api.ReadResult {
	left := out.exp.Sub(now)
	return &api.ReadResult{
		Ref:              ref,
		Value:            out.value,
		FromCache:        out.fromCache,
		ExpiresInSeconds: max(int64((left+time.Second-1)/time.Second), 0),
		ResolvedAtUnix:   out.at.Unix(),
		Stale:            out.stale,
	}
}
