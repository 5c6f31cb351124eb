package daemon

// Who may do what: the peer check every request passes first, the policy's
// decision on each ref and on each other action, and their audit records.

import (
	"cmp"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/audit"
	"github.com/opxhq/opx/backend"
	"github.com/opxhq/opx/policy"
)

// checkPeer refuses a connection whose peer credentials could not be read,
// that comes from another user (another uid; on Windows, another user SID
// in the peer's token), or whose peer could not be identified (fail
// closed). A foreign user is named as such even when the rest of the
// identification failed too.
func (s *server) checkPeer(r *http.Request) *api.Error {
	fd := -1
	if v, err := strconv.Atoi(r.Header.Get(api.ConnFDHeader)); err == nil && v >= 0 {
		fd = v
	}
	p := peerOf(r.Context(), fd)
	refuse := func(format string, args ...any) *api.Error {
		e := api.Errorf(api.CodeForbidden, format, args...)
		e.Peer = true
		return e
	}
	switch {
	case p == nil:
		s.audit.AuthFailure(nil, "peer credentials unknown")
		return refuse("connection refused: the peer's credentials are unknown")
	case p.PID == 0 && p.Err != nil:
		// The reason names pids, paths and namespaces: nothing secret,
		// and what the user needs to see why.
		s.log.Warn().Err(p.Err).Msg("connection refused: the peer could not be identified")
		s.audit.AuthFailure(auditPeer(p), "peer not identified: "+p.Err.Error())
		return refuse("connection refused: the daemon could not identify this process: %v", p.Err)
	case p.UID != s.euid:
		s.log.Warn().Int("peer_uid", p.UID).Int("peer_pid", p.PID).Str("peer_path", p.Path).Msg("connection from another user refused")
		s.audit.AuthFailure(auditPeer(p), fmt.Sprintf("peer uid %d is not the daemon's uid %d", p.UID, s.euid))
		return refuse("connection refused: uid %d is not the daemon's user", p.UID)
	case p.SID != s.sid && (p.SID != "" || p.Err == nil):
		// Windows: the peer's token is another user's.
		s.log.Warn().Str("peer_sid", p.SID).Int("peer_pid", p.PID).Str("peer_path", p.Path).Msg("connection from another user refused")
		s.audit.AuthFailure(auditPeer(p), fmt.Sprintf("peer user %s is not the daemon's user %s", p.SID, s.sid))
		return refuse("connection refused: user %s is not the daemon's user", p.SID)
	case p.Err != nil:
		s.log.Warn().Err(p.Err).Int("peer_pid", p.PID).Msg("connection refused: the peer could not be identified")
		s.audit.AuthFailure(auditPeer(p), "peer not identified: "+p.Err.Error())
		return refuse("connection refused: the daemon could not identify this process: %v", p.Err)
	}
	return nil
}

// requesterOf is the program the policy judges for the request.
func requesterOf(p *Peer) policy.Requester {
	if p == nil {
		return policy.Requester{}
	}
	return policy.Requester{PID: p.Requester.PID, Path: p.Requester.Path, ExeSHA256: p.Requester.ExeSHA256}
}

// auditRequester is the requester as the audit log records it: with how it
// was found, so that a parent judged for the opx client is on record as
// such, beside the client itself (peer_info).
func auditRequester(p *Peer) audit.Requester {
	if p == nil {
		return audit.Requester{}
	}
	r := audit.Requester{PID: p.Requester.PID, Path: p.Requester.Path, ExeSHA256: p.Requester.ExeSHA256}
	if p.Requester.ViaClient {
		r.Via = fmt.Sprintf("parent of the opx client (pid %d)", p.PID)
	}
	return r
}

// authorize applies the policy snapshot pol to ref, read in the account
// and from the server at says, for the request's requester, before any
// cache lookup, and records the decision. A read the policy allows but the
// audit log cannot record is refused; one it asks about is refused here
// (readRequest.allow asks).
func (s *server) authorize(r *http.Request, pol *policy.Snapshot, at *where, ref string) *api.Error {
	d := s.decide(r, pol, at, ref)
	if d.Ask {
		d = policy.Decision{Rule: d.Rule, Reason: d.Reason + ", and this request cannot wait for an answer"}
	}
	return s.record(r, pol, at, ref, d, nil)
}

// decide is the policy's decision on ref for the request's requester.
func (s *server) decide(r *http.Request, pol *policy.Snapshot, at *where, ref string) policy.Decision {
	return pol.Decide(requesterOf(peerFrom(r.Context())), at.read(ref), s.policyEnv)
}

// record writes decision d on ref to the audit log and returns the
// refusal, if it refuses: refused when given, else one naming the policy's
// reason. An allowed read the audit log cannot record is refused.
func (s *server) record(r *http.Request, pol *policy.Snapshot, at *where, ref string, d policy.Decision, refused *api.Error) *api.Error {
	p := peerFrom(r.Context())
	req := requesterOf(p)
	decision := audit.Allow
	if !d.Allow {
		decision = audit.Deny
	}
	dec := audit.Decision{Action: audit.ActionRead, Ref: ref, Account: at.account,
		Verdict: decision, Reason: d.Reason, PolicyPath: pol.Path}
	if at.identity != "" && strings.HasPrefix(ref, api.SchemeOP+"://") {
		dec.IdentityKind, dec.Identity = at.identityKind, backend.ShortFingerprint(at.identity)
	}
	if err := s.audit.Access(*auditPeer(p), auditRequester(p), dec); err != nil {
		s.auditFailed(err)
		if d.Allow {
			return api.Errorf(api.CodeAuditUnavailable, "%s: the audit log cannot record this read, so it is refused: %v", ref, err)
		}
	}
	if d.Allow {
		return nil
	}
	s.log.Warn().Str("requester", req.Path).Int("requester_pid", req.PID).Str("ref", ref).Str("reason", d.Reason).Msg("access denied by policy")
	if refused != nil {
		return refused
	}
	e := api.Errorf(api.CodeForbidden, "%s: %s may not read this ref (%s)", ref, cmp.Or(req.Path, "this program"), d.Reason)
	e.Policy = true
	return e
}

// authorizeSession lets a requester lock or unlock the session only if the
// policy allows it at least one ref. A lock goes ahead even when the audit
// log cannot record it (locking only takes secrets away); an unlock does
// not.
func (s *server) authorizeSession(r *http.Request, action string) *api.Error {
	return s.authorizeAction(r, action, nil)
}

// authorizeAction is authorizeSession for an action with a login to record
// (verify: the server and method tried).
func (s *server) authorizeAction(r *http.Request, action string, login *audit.Login) *api.Error {
	pol := s.snapshot(r)
	p := peerFrom(r.Context())
	req := requesterOf(p)
	allowed := pol.AllowsAny(req, s.policyEnv)
	decision, reason := audit.Allow, "the policy allows this program to read refs"
	if pol.State == policy.StateNone {
		reason = "no policy file: everything is allowed"
	}
	if !allowed {
		decision, reason = audit.Deny, "the policy allows this program no ref"
		if pol.State == policy.StateFailedClosed {
			reason = "the policy file failed closed (" + pol.Reason + ")"
		}
	}
	// Lock, stop and forget only take secrets away: they go ahead
	// unrecorded, so their record never waits for a write that hangs.
	wipes := action == audit.ActionLock || action == audit.ActionStop || action == audit.ActionForget
	al := s.audit
	if wipes {
		al = al.NoWait()
	}
	if err := al.Access(*auditPeer(p), auditRequester(p), audit.Decision{Action: action, Login: login,
		Verdict: decision, Reason: reason, PolicyPath: pol.Path}); err != nil {
		s.auditFailed(err)
		if allowed && !wipes {
			return api.Errorf(api.CodeAuditUnavailable, "the audit log cannot record this %s, so it is refused: %v", action, err)
		}
	}
	if allowed {
		return nil
	}
	s.log.Warn().Str("requester", req.Path).Int("requester_pid", req.PID).Str("action", action).Msg("session change denied by policy")
	what := "the session"
	switch action {
	case audit.ActionStop:
		what = "the daemon"
	case audit.ActionCheck:
		what = "the backend"
	case audit.ActionForget:
		what = "cached values"
	}
	return api.Errorf(api.CodeForbidden, "%s may not %s %s: %s", cmp.Or(req.Path, "this program"), action, what, reason)
}

// auditPeer is p as the audit log records it.
func auditPeer(p *Peer) *audit.Peer {
	if p == nil {
		return &audit.Peer{}
	}
	return &audit.Peer{PID: p.PID, UID: p.UID, GID: p.GID, Path: p.Path}
}

// auditFailed logs a failed audit write once per failure spell.
func (s *server) auditFailed(err error) {
	if s.auditDown.CompareAndSwap(false, true) {
		s.log.Error().Err(err).Msg("the audit log cannot be written; reads are refused until it can")
	}
}

type snapshotKey struct{}

// snapshot is the policy in force for request r: the one routes read when
// it came in (or now, for a request that did not come through routes).
func (s *server) snapshot(r *http.Request) *policy.Snapshot {
	if snap, ok := r.Context().Value(snapshotKey{}).(*policy.Snapshot); ok {
		return snap
	}
	return s.policy.Current()
}
