package backend

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/internal/console"
	"github.com/opxhq/opx/scrub"
	"github.com/opxhq/opx/self"
	"github.com/opxhq/opx/xdg"
)

// OPCLI reads op:// refs through the 1Password CLI. It never runs a shell:
// op gets an argument vector, and the only client-supplied strings that reach
// it are refs (validated, after "--" or inside an inject template) and the
// account (validated, as one --account=X argument). The misses of one batch
// go to one `op inject`; only when that fails does it fall back to one
// `op read` per ref, so that each error lands on its own ref. A ref that op
// inject's template syntax cannot hold whole (a space, '=', or any character
// outside letters, digits and - ? _ . /) is read with `op read` on its own:
// in a template, op would read a shorter ref than the one asked for.
type OPCLI struct {
	path     string
	sessions string        // file of OP_SESSION_* tokens kept by opx login
	sem      chan struct{} // bounds concurrent op processes
	calls    atomic.Uint64
	limits   *opLimits
	sa       *saGovernor // service accounts' own limits, from op
	// defaultID is the identity of a call whose context names none (the
	// daemon's own: SetDefaultIdentity).
	defaultID OPIdentity
}

// NewOPCLI returns the backend running the op program at path (looked up in
// PATH when it has no slash) with at most maxProcs processes at once.
// sessionsFile, when it exists, holds OP_SESSION_* tokens (a JSON object)
// that `opx login 1password` kept for a manual sign-in; they are passed to
// op in its environment.
func NewOPCLI(path string, maxProcs int, sessionsFile string) *OPCLI {
	return &OPCLI{path: cmp.Or(path, "op"), sessions: sessionsFile, sem: make(chan struct{}, max(maxProcs, 1)), limits: newOPLimits(OPBudget{}), sa: newSAGovernor()}
}

// SetBudget caps opx's own op calls per account.
func (o *OPCLI) SetBudget(b OPBudget) { o.limits.budget = b }

// SetDefaultIdentity sets the identity op runs as when a read's context
// names none (WithOPIdentity): the daemon's own (TakeProcessIdentity).
func (o *OPCLI) SetDefaultIdentity(id OPIdentity) { o.defaultID = id }

// identity is the identity op runs as for ctx.
func (o *OPCLI) identity(ctx context.Context) OPIdentity {
	if id, ok := OPIdentityFrom(ctx); ok {
		return id
	}
	return o.defaultID
}

// Usage is the op calls per account, for status.
func (o *OPCLI) Usage() []api.OPUsage { return o.limits.status(o.sa.limits) }

// askRateLimit runs op service-account ratelimit as id.
func (o *OPCLI) askRateLimit(ctx context.Context, id OPIdentity) ([]api.OPLimit, error) {
	ctx, cancel := context.WithTimeout(WithOPIdentity(ctx, id), checkTimeout)
	defer cancel()
	out, err := o.run(ctx, nil, "", "service-account", "ratelimit", "--format=json")
	if err != nil {
		return nil, err
	}
	return parseRateLimit(out, time.Now())
}

// sessionEnv returns the environment for op: the daemon's own, plus the
// session tokens a login kept.
func (o *OPCLI) sessionEnv() []string {
	if o.sessions == "" {
		return nil
	}
	b, err := xdg.ReadPrivateFile(o.sessions)
	if err != nil {
		return nil
	}
	defer clear(b)
	var m map[string]string
	if json.Unmarshal(b, &m) != nil || len(m) == 0 {
		return nil
	}
	env := os.Environ()
	for k, v := range m {
		if strings.HasPrefix(k, "OP_SESSION_") {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Name implements Backend.
func (o *OPCLI) Name() string { return "opcli" }

// BatchWindow implements Windowed: each op process costs a fraction of a
// second, so misses of concurrent requests are gathered first.
func (o *OPCLI) BatchWindow() time.Duration { return defaultWindow }

// Check implements Backend.
func (o *OPCLI) Check(ref api.Ref) error {
	if ref.Scheme != api.SchemeOP {
		return errNotHandled(o, ref)
	}
	return nil
}

// Calls implements Backend: op processes started.
func (o *OPCLI) Calls() uint64 { return o.calls.Load() }

// Close implements Backend.
func (o *OPCLI) Close() error { return nil }

// Validate implements Backend: `op whoami` for every account in use.
func (o *OPCLI) Validate(ctx context.Context, accounts []string) error {
	if len(accounts) == 0 {
		accounts = []string{""}
	}
	if o.defaultID.Kind == api.IdentityConnect {
		// op has no whoami for a Connect server: only a read would
		// check its token (Diagnose says so).
		return nil
	}
	for _, a := range accounts {
		if _, err := o.run(ctx, nil, a, "whoami"); err != nil {
			return err
		}
	}
	return nil
}

// Read implements Backend.
func (o *OPCLI) Read(ctx context.Context, account string, refs []string) []Result {
	out := make([]Result, len(refs))
	var batch []int // refs that can go in an inject template
	for i, ref := range refs {
		if injectSafe(ref) {
			batch = append(batch, i)
		}
	}
	if len(batch) < 2 {
		batch = nil // one ref: op read is as cheap, and says more on failure
	}
	var single []int
	if len(batch) > 0 {
		batchRefs := make([]string, len(batch))
		for j, i := range batch {
			batchRefs[j] = refs[i]
		}
		vals, err := o.inject(ctx, account, batchRefs)
		switch {
		case err == nil:
			for j, i := range batch {
				out[i] = o.result(refs[i], vals[j])
			}
		case fatalForBatch(ctx, err):
			for _, i := range batch {
				out[i].Err = err
			}
		default:
			single = append(single, batch...)
		}
	}
	inBatch := make(map[int]bool, len(batch))
	for _, i := range batch {
		inBatch[i] = true
	}
	for i := range refs {
		if !inBatch[i] {
			single = append(single, i)
		}
	}
	var wg sync.WaitGroup
	for _, i := range single {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := o.readOne(ctx, account, refs[i])
			if err != nil {
				out[i].Err = err
				return
			}
			out[i] = o.result(refs[i], v)
		}()
	}
	wg.Wait()
	return out
}

// injectSafe reports whether op inject's template syntax reads ref whole:
// "op://" and then only letters, digits, '-', '?', '_', '.' and '/'.
func injectSafe(ref string) bool {
	rest, ok := strings.CutPrefix(ref, "op://")
	if !ok || rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-?_./", c) >= 0) {
			return false
		}
	}
	return true
}

// fatalForBatch reports whether a failed inject means every ref would fail
// the same way, so that reading them one by one is pointless.
func fatalForBatch(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	var ae *api.Error
	if !errors.As(err, &ae) {
		return false
	}
	switch {
	case ae.Code == api.CodeUnauthorized, ae.Code == api.CodeBackendTimeout, ae.Code == api.CodeRateLimited:
		return true
	case strings.Contains(ae.Message, "no account found"), strings.Contains(ae.Message, "No accounts configured"),
		strings.Contains(ae.Message, "CLI was not found"):
		return true
	}
	return false
}

// result wraps a value read for ref; a one-time password is cached only to
// the end of its 30-second step.
func (o *OPCLI) result(ref string, v []byte) Result {
	r := Result{Value: v}
	if p, err := api.ParseRef(ref); err == nil && p.IsOTP() {
		r.TTL = OTPTTL(time.Now())
	}
	return r
}

// OTPTTL is how long a TOTP code read at now stays valid: to the end of its
// 30-second step.
func OTPTTL(now time.Time) time.Duration {
	const step = 30 * time.Second
	return step - time.Duration(now.UnixNano()%int64(step))
}

// readOne runs `op read -- REF` and strips the one newline op adds.
func (o *OPCLI) readOne(ctx context.Context, account, ref string) ([]byte, error) {
	var v []byte
	err := o.runOutput(ctx, nil, account, func(out []byte) error {
		v = bytes.Clone(bytes.TrimSuffix(out, []byte("\n")))
		if v == nil {
			v = []byte{}
		}
		return nil
	}, "read", "--", ref)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// inject resolves refs with one `op inject`: a template of one marked line
// per ref, with a random nonce in the markers so that no value can fake one.
func (o *OPCLI) inject(ctx context.Context, account string, refs []string) ([][]byte, error) {
	nonceBytes := make([]byte, 16)
	if _, err := rand.Read(nonceBytes); err != nil {
		return nil, err
	}
	nonce := hex.EncodeToString(nonceBytes)
	var tmpl strings.Builder
	for i, ref := range refs {
		fmt.Fprintf(&tmpl, "<<opx:%s:%d>>{{ %s }}<</opx:%s:%d>>\n", nonce, i, ref, nonce, i)
	}
	var vals [][]byte
	err := o.runOutput(ctx, []byte(tmpl.String()), account, func(out []byte) error {
		var err error
		if vals, err = splitInject(out, nonce, len(refs)); err != nil {
			return api.Errorf(api.CodeBackendError, "op inject: %v", err)
		}
		return nil
	}, "inject")
	if err != nil {
		return nil, err
	}
	return vals, nil
}

// splitInject recovers the n values from op inject's output of the template
// that inject wrote; values are copied out of out.
func splitInject(out []byte, nonce string, n int) ([][]byte, error) {
	vals := make([][]byte, n)
	rest := out
	for i := range n {
		begin := fmt.Appendf(nil, "<<opx:%s:%d>>", nonce, i)
		end := fmt.Appendf(nil, "<</opx:%s:%d>>\n", nonce, i)
		if !bytes.HasPrefix(rest, begin) {
			return nil, fmt.Errorf("output does not match the template at ref %d", i)
		}
		rest = rest[len(begin):]
		j := bytes.Index(rest, end)
		if j < 0 {
			return nil, fmt.Errorf("output does not match the template at ref %d", i)
		}
		vals[i] = bytes.Clone(rest[:j])
		if vals[i] == nil {
			vals[i] = []byte{}
		}
		rest = rest[j+len(end):]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("unexpected output after the last ref")
	}
	return vals, nil
}

// run starts op with args (and --account=ACCOUNT when given), feeding stdin,
// and returns its stdout: for output that holds no secret (--version,
// whoami). runOutput is for output that does.
func (o *OPCLI) run(ctx context.Context, stdin []byte, account string, args ...string) ([]byte, error) {
	var b []byte
	err := o.runOutput(ctx, stdin, account, func(out []byte) error {
		b = bytes.Clone(out)
		return nil
	}, args...)
	return b, err
}

// runOutput starts op with args (and --account=ACCOUNT when given), feeding
// stdin, and hands the stdout of a successful run to use, whose error it
// returns. The output is wiped when use returns: use copies out what it
// keeps. The process runs in its own process group, killed whole when ctx
// ends.
func (o *OPCLI) runOutput(ctx context.Context, stdin []byte, account string, use func(out []byte) error, args ...string) error {
	// Every call but --version reaches 1Password's servers: it counts
	// against the account's limits, and none is made while they are spent.
	remote := len(args) != 1 || args[0] != "--version"
	id := o.identity(ctx)
	if remote {
		if err := o.limits.backingOff(keyOf(account, id)); err != nil {
			return err
		}
		if err := o.sa.before(ctx, id, readCost(args), func(ctx context.Context) ([]api.OPLimit, error) { return o.askRateLimit(ctx, id) }); err != nil {
			return err
		}
	}
	select {
	case o.sem <- struct{}{}:
	case <-ctx.Done():
		return api.Errorf(api.CodeBackendTimeout, "op: timed out waiting for a free process slot")
	}
	defer func() { <-o.sem }()

	if remote {
		if err := o.limits.take(keyOf(account, id)); err != nil {
			return err
		}
	}

	// op is looked up at every call (installed later, upgraded), never
	// opx itself: opx may stand in for op early in PATH.
	path, err := self.LookPath(o.path)
	if err != nil {
		if errors.Is(err, self.ErrOnlyOpx) {
			return api.Errorf(api.CodeBackendError, "the 1Password CLI was not found: %s on the daemon's PATH is opx's own shim; install op, or point the daemon at it with --op-path", o.path)
		}
		return api.Errorf(api.CodeBackendError, "the 1Password CLI was not found at %s: install op, or point the daemon at it with --op-path", o.path)
	}
	argv := make([]string, 0, len(args)+1)
	if account != "" {
		argv = append(argv, "--account="+account)
	}
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, path, argv...)
	env := o.sessionEnv()
	if env == nil {
		env = os.Environ()
	}
	// op signs in as the read's identity, and no other: the variables of
	// another are taken out. A service account's or Connect server's come
	// through the launcher, never through an environment built here.
	env = WithoutIdentityEnv(env)
	if id.Kind == api.IdentityDesktop {
		cmd.Stdin = bytes.NewReader(stdin)
	} else {
		exe, err := selfExecutable()
		if err != nil {
			return api.Errorf(api.CodeBackendError, "find opx to start op as %s: %v", id.Label(), err)
		}
		done, err := launchCommand(cmd, exe, id, stdin)
		if err != nil {
			return api.Errorf(api.CodeBackendError, "start op as %s: %v", id.Label(), err)
		}
		defer done()
	}
	// An op that is opx's shim (opx upgraded under a running daemon, its
	// identity stale) sees this and passes to the real op, never back here.
	cmd.Env = append(env, "OPX_FROM_DAEMON=1")
	// The output holds secrets: the kernel writes it straight into a buffer
	// that zeroes what it outgrows (secretWriter), and the copies made of it
	// there and in use run in scrub.Do, which clears what they leave in the
	// thread's registers and signal frame.
	stdout := &secretWriter{b: api.NewBuf(4 << 10)}
	defer stdout.b.Wipe()
	stderr := &limitedBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 2 * time.Second
	console.HideChild(cmd) // a daemon that left its console opens no window per op

	o.calls.Add(1)
	// A timed-out or cancelled op is killed with every process it started
	// (its process group, or on Windows its job object): one left behind
	// would hold the output pipe, and the 1Password session, open.
	err = runTree(cmd)
	if err == nil {
		if use != nil {
			scrub.Do(func() { err = use(stdout.b.Bytes()) })
		}
		return err
	}
	if ctx.Err() != nil {
		return api.Errorf(api.CodeBackendTimeout, "op %s did not finish in time (killed)", args[0])
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return api.Errorf(api.CodeBackendError, "the 1Password CLI was not found at %s: install op, or point the daemon at it with --op-path", o.path)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if sig, ok := killedBy(ee); ok {
			return api.Errorf(api.CodeBackendError, "op %s was killed by signal %s", args[0], sig)
		}
		e := classifyOPError(stderr.String(), account, id)
		if e.Code == api.CodeRateLimited {
			o.limits.backOff(keyOf(account, id), e)
			o.sa.rateLimited(id)
		}
		return e
	}
	return api.Errorf(api.CodeBackendError, "run op: %v", err)
}

// trimOPLogPrefix drops the "[ERROR] 2006/01/02 15:04:05 " that op puts
// before its messages (by hand: a regexp would be compiled at start-up in
// every opx process).
func trimOPLogPrefix(msg string) string {
	const layout = "[ERROR] 0000/00/00 00:00:00 "
	if len(msg) < len(layout) {
		return msg
	}
	for i := 0; i < len(layout); i++ {
		c, want := msg[i], layout[i]
		if want == '0' {
			if c < '0' || c > '9' {
				return msg
			}
		} else if c != want {
			return msg
		}
	}
	return msg[len(layout):]
}

// classifyOPError turns op's stderr, for account ("" for the default one)
// read as id, into a coded error. op's messages name vaults, items, fields
// and accounts, never values nor tokens.
func classifyOPError(stderr, account string, id OPIdentity) *api.Error {
	msg := strings.TrimSpace(stderr)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	msg = trimOPLogPrefix(msg)
	if len(msg) > 400 {
		msg = msg[:400] + "..."
	}
	msg = cmp.Or(msg, "op failed without a message")
	low := strings.ToLower(msg)
	switch {
	case appDidNotAuthorize(low):
		// The account is signed in through the desktop app, which did not
		// authorize op: it is locked (which revokes every authorization
		// it gave) and nobody unlocked it in time, or its prompt was
		// dismissed. Signing in again does not help; unlocking the app
		// does, and then opx unlock for the account's locked reads.
		return api.Errorf(api.CodeUnauthorized, "1Password CLI: %s; the 1Password app is locked or did not authorize op: unlock the 1Password app, then run: opx unlock", msg)
	case strings.Contains(low, "not currently signed in"), strings.Contains(low, "not signed in"),
		strings.Contains(low, "session expired"), strings.Contains(low, "(401)"),
		strings.Contains(low, "unauthorized"):
		if id.Kind != api.IdentityDesktop {
			return api.Errorf(api.CodeUnauthorized, "1Password CLI: %s (%s: check %s)", msg, id.Label(), tokenVar(id))
		}
		login := "opx login 1password"
		if account != "" {
			login += " --account " + account
		}
		return api.Errorf(api.CodeUnauthorized, "1Password CLI: %s; sign in with: %s", msg, login)
	case strings.Contains(low, "isn't an item"), strings.Contains(low, "isn't a vault"),
		strings.Contains(low, "does not have a field"), strings.Contains(low, "isn't a field"),
		strings.Contains(low, "no item found"), strings.Contains(low, "not found"):
		return api.Errorf(api.CodeNotFound, "1Password CLI: %s", msg)
	case strings.Contains(low, "no account found"), strings.Contains(low, "no accounts configured"),
		strings.Contains(low, "invalid secret reference"), strings.Contains(low, "more than one item matches"):
		return api.Errorf(api.CodeBadRequest, "1Password CLI: %s", msg)
	case strings.Contains(low, "service account deleted"), strings.Contains(low, "decodesacredentials"),
		strings.Contains(low, "failed to parsetoken"):
		// A service account token that 1Password no longer knows, or that
		// does not parse: as unauthorized as a signed-out account. After
		// the cases that quote a name: an item may be called so.
		if id.Kind == api.IdentityDesktop {
			return api.Errorf(api.CodeUnauthorized, "1Password CLI: %s (check OP_SERVICE_ACCOUNT_TOKEN in the daemon's environment)", msg)
		}
		return api.Errorf(api.CodeUnauthorized, "1Password CLI: %s (%s: check %s)", msg, id.Label(), tokenVar(id))
	case strings.Contains(low, "(429) too many requests"):
		// After the cases that quote a name: an item may be called so.
		return rateLimitError(msg)
	}
	return api.Errorf(api.CodeBackendError, "1Password CLI: %s", msg)
}

// appDidNotAuthorize reports whether op's message (lower case) says that
// the 1Password desktop app did not authorize it: op 2.x says "error
// initializing client: authorization timeout" when the app is locked and
// nobody unlocks it in time (after "could not read secret '<ref>': " for
// op read), and "authorization prompt dismissed, please try again" when
// its prompt was dismissed; "unexpected response from 1Password app" is
// what troubleshooting notes give for a locked app.
func appDidNotAuthorize(low string) bool {
	return strings.Contains(low, "error initializing client: authorization timeout") ||
		strings.Contains(low, "authorization prompt dismissed") ||
		strings.Contains(low, "unexpected response from 1password app")
}

// tokenVar is the variable that gave op id's token.
func tokenVar(id OPIdentity) string {
	if id.Kind == api.IdentityConnect {
		return api.EnvConnectToken
	}
	return api.EnvServiceAccountToken
}

// secretWriter collects op's stdout. os/exec copies into it with ReadFrom,
// which reads straight into the buffer, never through a buffer of its own
// (TestOPOutputIsReadStraightIntoItsBuffer), and on a goroutine of its own:
// the copies the buffer's growth makes are scrubbed there.
type secretWriter struct{ b *api.Buf }

func (w *secretWriter) ReadFrom(r io.Reader) (n int64, err error) {
	scrub.Do(func() { n, err = w.b.ReadFrom(r) })
	return n, err
}

func (w *secretWriter) Write(p []byte) (n int, err error) {
	scrub.Do(func() { n, err = w.b.Write(p) })
	return n, err
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.buf.String() }
