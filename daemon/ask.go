package daemon

// Asking the user (issue 25): a read a policy rule asks about waits while
// the daemon asks, through an askpass program, a desktop notification or
// opx approve, and is served only on a yes.

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/audit"
	"github.com/opxhq/opx/internal/notify"
	"github.com/opxhq/opx/internal/printable"
	"github.com/opxhq/opx/policy"
)

// maxQuestionsPerProgram bounds the questions one program may have
// waiting: past it, its reads that would ask are refused at once.
const maxQuestionsPerProgram = 4

// maxRemember bounds how long opx approve --for remembers an answer.
const maxRemember = 24 * time.Hour

// errAsking marks a ref the policy asks the user about, until the answer
// settles it. It is a refusal: a path that forgets to settle fails closed.
var errAsking = &api.Error{Code: api.CodeForbidden, Message: "the policy asks the user about this read; no answer yet", Policy: true}

// question is one question to the user: may this program read these refs
// (in this account, from this server)? Requests that ask the same while it
// is open wait for its answer together.
type question struct {
	id, key string
	prog    string // the program's key (path and content hash)
	refs    []string
	account string
	server  string // the servers of vault:// and bao:// refs, as shown
	// Who asked first, for the audit log and for the check that the
	// program (or a process it started) does not answer.
	peer      *Peer
	requester ProcInfo
	reqStart  uint64 // the requester's start time (policy.ReadProcess)
	asked     time.Time
	deadline  time.Time

	done   chan struct{} // closed once answered
	yes    bool
	how    string // the channel that answered
	cancel context.CancelFunc
}

// rememberKey is an answer opx approve --for remembers: this program, this
// ref, read where.
type rememberKey struct {
	prog, ref, account, server string
}

// asker holds the questions waiting for an answer and the answers
// remembered.
type asker struct {
	s       *server
	timeout time.Duration
	// channel asks through the askpass program or a notification, until
	// ctx ends; it returns the answer and the channel's name, or an error
	// when it could not ask (the question then waits for opx approve).
	channel func(ctx context.Context, q *question, text string) (yes bool, how string, err error)

	mu       sync.Mutex
	pending  map[string]*question // by id
	byKey    map[string]*question
	perProg  map[string]int
	remember map[rememberKey]time.Time
	lastErr  string // why the last channel could not ask, for status
}

func newAsker(s *server, timeout time.Duration) *asker {
	return &asker{s: s, timeout: timeout, pending: map[string]*question{}, byKey: map[string]*question{},
		perProg: map[string]int{}, remember: map[rememberKey]time.Time{}}
}

// programKey names the program a question is about: its path and, when a
// rule made the daemon hash it, its content.
func programKey(r ProcInfo) string { return r.Path + "\x00" + r.ExeSHA256 }

// remembered reports whether an answer opx approve --for gave still holds
// for the program reading ref at rd's place.
func (a *asker) remembered(rd *readRequest, ref string) (time.Time, bool) {
	p := peerFrom(rd.r.Context())
	if p == nil {
		return time.Time{}, false
	}
	k := rememberKey{programKey(p.Requester), ref, rd.at.account, rd.serverOf(ref)}
	a.mu.Lock()
	defer a.mu.Unlock()
	until, ok := a.remember[k]
	if ok && time.Now().After(until) {
		delete(a.remember, k)
		return time.Time{}, false
	}
	return until, ok
}

// forget drops the remembered answers and answers every open question no:
// the session was locked.
func (a *asker) forget(reason string) {
	a.mu.Lock()
	clear(a.remember)
	open := make([]*question, 0, len(a.pending))
	for _, q := range a.pending {
		open = append(open, q)
	}
	a.mu.Unlock()
	// A lock never waits for the audit log: the answers are recorded on
	// their own.
	for _, q := range open {
		go a.answer(q, false, reason, nil, 0)
	}
}

// ask asks the user whether the program of rd may read refs, once for
// all of them (joining the same question while it is open), and waits for
// the answer, the timeout, or the request's end. waiting, when set, is
// told the question's id first (the client shows it). It returns nil for a
// yes, else the refusal for every ref.
func (a *asker) ask(rd *readRequest, refs []string, waiting func(id string)) *api.Error {
	p := peerFrom(rd.r.Context())
	if p == nil {
		return api.Errorf(api.CodeForbidden, "the daemon cannot ask about a process it did not identify")
	}
	refs = slices.Clone(refs)
	slices.Sort(refs)
	prog := programKey(p.Requester)
	account, server := rd.at.account, rd.serversOf(refs)
	key := strings.Join(append([]string{prog, account, server}, refs...), "\x00")

	a.mu.Lock()
	q := a.byKey[key]
	if q == nil {
		if a.perProg[prog] >= maxQuestionsPerProgram {
			a.mu.Unlock()
			e := api.Errorf(api.CodeForbidden, "%s has %d questions waiting for an answer already; answer them (opx approve) or wait for them to time out",
				printable.String(p.Requester.Path), maxQuestionsPerProgram)
			e.Policy = true
			return e
		}
		q = a.newQuestionLocked(p, key, prog, refs, account, server)
	}
	a.mu.Unlock()
	if waiting != nil {
		waiting(q.id)
	}
	select {
	case <-q.done:
	case <-rd.r.Context().Done():
		return api.Errorf(api.CodeForbidden, "the request ended before the user answered")
	}
	if q.yes {
		return nil
	}
	e := api.Errorf(api.CodeForbidden, "%s", q.refusal())
	e.Policy = true
	return e
}

// newQuestionLocked opens a question and starts asking. a.mu is held.
func (a *asker) newQuestionLocked(p *Peer, key, prog string, refs []string, account, server string) *question {
	now := time.Now()
	q := &question{id: newQuestionID(), key: key, prog: prog, refs: refs, account: account, server: server,
		peer: p, requester: p.Requester, asked: now, deadline: now.Add(a.timeout), done: make(chan struct{})}
	if _, start, err := policy.ReadParent(p.Requester.PID); err == nil {
		q.reqStart = start
	}
	for a.pending[q.id] != nil {
		q.id = newQuestionID()
	}
	a.pending[q.id], a.byKey[key] = q, q
	a.perProg[prog]++
	ctx, cancel := context.WithDeadline(context.Background(), q.deadline)
	q.cancel = cancel
	a.s.audit.Approval(*auditPeer(p), auditRequester(p), q.record(), audit.StepAsked, "", "", nil, 0)
	a.s.log.Info().Str("question", q.id).Str("requester", p.Requester.Path).Strs("refs", refs).Msg("asking the user about a read")
	go a.run(ctx, q)
	return q
}

// run asks through the channel, if there is one, and ends the question
// when it answers or the deadline passes (opx approve may answer first).
func (a *asker) run(ctx context.Context, q *question) {
	if a.channel != nil {
		yes, how, err := a.channel(ctx, q, q.text())
		switch {
		case err == nil:
			a.answer(q, yes, how, nil, 0)
			return
		case ctx.Err() == nil:
			// It could not ask: opx approve still can, until the deadline.
			a.mu.Lock()
			a.lastErr = err.Error()
			a.mu.Unlock()
			a.s.log.Warn().Str("question", q.id).Err(err).Msg("could not ask the user; waiting for opx approve")
		}
	}
	<-ctx.Done()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		a.answer(q, false, "timeout", nil, 0)
	}
}

// answer settles q, if it is still open: the first answer counts. by is
// the program that answered through opx approve; rememberFor, with a yes,
// keeps the answer for the program and each of the refs until then.
func (a *asker) answer(q *question, yes bool, how string, by *Peer, rememberFor time.Duration) bool {
	a.mu.Lock()
	if a.pending[q.id] != q {
		a.mu.Unlock()
		return false
	}
	delete(a.pending, q.id)
	delete(a.byKey, q.key)
	if a.perProg[q.prog]--; a.perProg[q.prog] <= 0 {
		delete(a.perProg, q.prog)
	}
	if yes && rememberFor > 0 {
		until := time.Now().Add(min(rememberFor, maxRemember))
		for _, ref := range q.refs {
			a.remember[rememberKey{q.prog, ref, q.account, q.serverOfRef(ref)}] = until
		}
	}
	q.yes, q.how = yes, how
	close(q.done)
	a.mu.Unlock()
	q.cancel()

	step, answer := audit.StepAnswered, "no"
	if yes {
		answer = "yes"
	}
	if how == "timeout" {
		step = audit.StepTimedOut
	}
	var byRec *audit.Requester
	if by != nil {
		r := auditRequester(by)
		byRec = &r
	}
	a.s.audit.Approval(*auditPeer(q.peer), auditRequester(q.peer), q.record(), step, answer, how, byRec, rememberFor)
	a.s.log.Info().Str("question", q.id).Str("answer", answer).Str("channel", how).Msg("the user's answer")
	return true
}

// status is how the daemon asks, for /v1/status. Whether a notification
// server is there is asked of the session bus only when the policy asks
// (asking): it is a round trip.
func (a *asker) status(asking bool) api.AskStatus {
	st := api.AskStatus{Channel: "opx approve", TimeoutSeconds: a.timeout.Seconds()}
	if prog := askpassProgram(processEnv); prog != "" {
		st.Channel = "askpass " + prog
	} else if !asking {
		st.Channel = ""
	} else if err := notify.Available(processEnv); err == nil {
		st.Channel = "notification"
	} else {
		st.ChannelNote = err.Error()
	}
	a.mu.Lock()
	st.Pending, st.LastError = len(a.pending), a.lastErr
	a.mu.Unlock()
	return st
}

// list returns the open questions, oldest first.
func (a *asker) list() []api.Question {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]api.Question, 0, len(a.pending))
	for _, q := range a.pending {
		out = append(out, q.api())
	}
	slices.SortFunc(out, func(x, y api.Question) int { return int(x.AskedUnix - y.AskedUnix) })
	return out
}

// find returns the open question id.
func (a *asker) find(id string) *question {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending[id]
}

// api is q as opx approve shows it.
func (q *question) api() api.Question {
	out := api.Question{ID: q.id, Program: q.requester.Path, Refs: q.refs, Account: q.account, Server: q.server,
		AskedUnix: q.asked.Unix(), DeadlineUnix: q.deadline.Unix()}
	if q.requester.ViaClient {
		out.ClientPID = q.peer.PID
	}
	out.PID = q.requester.PID
	return out
}

// record is q as the audit log records it.
func (q *question) record() audit.Question {
	return audit.Question{ID: q.id, Refs: q.refs, Account: q.account, Server: q.server}
}

// text is the question as the askpass program and a notification show
// it: the program, the refs and where they are read, every name escaped;
// never a value.
func (q *question) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "opx: allow %s (pid %d) to read", printable.String(q.requester.Path), q.requester.PID)
	if len(q.refs) == 1 {
		fmt.Fprintf(&b, " %s", printable.String(q.refs[0]))
	} else {
		fmt.Fprintf(&b, " %d secrets:", len(q.refs))
		for i, ref := range q.refs {
			if i == 8 {
				fmt.Fprintf(&b, " and %d more", len(q.refs)-i)
				break
			}
			fmt.Fprintf(&b, " %s", printable.String(ref))
		}
	}
	if q.account != "" {
		fmt.Fprintf(&b, " in 1Password account %s", printable.String(q.account))
	}
	if q.server != "" {
		fmt.Fprintf(&b, " from %s", printable.String(q.server))
	}
	fmt.Fprintf(&b, "? (question %s; or answer with: opx approve %s)", q.id, q.id)
	return b.String()
}

// refusal is why a no refuses the reads.
func (q *question) refusal() string {
	switch q.how {
	case "timeout":
		return fmt.Sprintf("no one answered the question %s within %s: run opx approve in another terminal while the program waits, or add an allow rule (opx audit -i)",
			q.id, q.deadline.Sub(q.asked).Round(time.Second))
	case "opx approve", "askpass", "notification":
		return fmt.Sprintf("the user refused the read (question %s, through %s)", q.id, q.how)
	}
	return fmt.Sprintf("the question %s was not answered: %s", q.id, q.how)
}

// serverOfRef is the server a ref of q is read from, as shown ("" for
// op:// refs).
func (q *question) serverOfRef(ref string) string {
	if strings.HasPrefix(ref, api.SchemeOP+"://") {
		return ""
	}
	return q.server
}

// newQuestionID is a short random id, easy to type: 6 letters and digits.
func newQuestionID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:6]
}

// startedBy reports whether the process pid is the question's requester
// or its opx client, or was started by one of them, directly or further
// down: such a process may not answer the question. The walk up ends where
// the kernel's ancestry does: at a parent that is gone (a process whose
// parent exited was given another, or on Windows keeps a dead or reused
// pid, told by a parent younger than its child) or cannot be read. So a
// process that double-forks away from the requester is no longer its
// descendant here: docs/security.md says so.
func (q *question) startedBy(pid int) bool {
	var childStart uint64
	for depth := 0; pid > 1 && depth < 256; depth++ {
		if pid == q.peer.PID {
			return true
		}
		ppid, start, err := policy.ReadParent(pid)
		if err != nil || childStart != 0 && start > childStart {
			return false
		}
		if pid == q.requester.PID && (q.reqStart == 0 || start == q.reqStart) {
			return true
		}
		if ppid == pid {
			return false
		}
		pid, childStart = ppid, start
	}
	return false
}
