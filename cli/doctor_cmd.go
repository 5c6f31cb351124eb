package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/policy"
)

// DoctorCmd is `opx doctor`.
type DoctorCmd struct {
	JSON bool `help:"Print the checks as JSON."`
}

// doctorReport is what --json prints.
type doctorReport struct {
	OK     bool        `json:"ok"`
	Checks []api.Check `json:"checks"`
}

// Run checks what opx needs, one line each, and says how to fix what is
// wrong: the files and their modes, the daemon (running, and started with
// this environment's settings), the backend (reachable, each account signed
// in), the session, the policy, the audit log and the clock. It starts the
// daemon as any read would. It exits 1 when a check fails.
func (c *DoctorCmd) Run(g *Globals, env *Env) error {
	var checks []api.Check
	add := func(cs ...api.Check) { checks = append(checks, cs...) }

	add(api.Check{Name: "opx", OK: true, Detail: "version " + env.Version})
	add(checkDir("config directory", env.Paths.ConfigDir, false))
	add(checkFile("config file", env.Paths.ConfigFile))
	add(checkPolicyFile(env.Paths.PolicyFile))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var diffs, notes []string
	// Differences between the running daemon's settings and this
	// environment's are listed here, instead of warned about (or failing
	// the request, with OPX_STRICT=1).
	opts := env.Options
	opts.Strict, opts.WarnOnce = false, nil
	opts.Warn = func(msg string) { diffs = append(diffs, msg) }
	opts.Notes = func(msg string) { notes = append(notes, msg) }
	cl := client.New(opts)
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		d := api.Check{Name: "daemon", Detail: err.Error(), Fix: "see the daemon's log: " + env.Paths.LogFile}
		var e *client.Error
		if errors.As(err, &e) && e.Hint != "" {
			d.Fix = e.Hint
		}
		if isNotRunning(err) {
			d.Fix = "start it with any opx command (OPX_AUTOSTART=0 stops that), opx daemon, or opx service install"
		}
		add(d)
	} else {
		if st.Limited {
			add(api.Check{Name: "daemon", OK: true, Detail: fmt.Sprintf("running: pid %d, version %s", st.PID, st.Version)})
		} else {
			add(api.Check{Name: "daemon", OK: true,
				Detail: fmt.Sprintf("running: pid %d, version %s, backend %s, up %s", st.PID, st.Version, st.Backend, sec(st.UptimeSeconds))})
		}
		m := api.Check{Name: "daemon settings", OK: len(diffs) == 0, Detail: "as this environment and config.json give them, as far as reads go"}
		switch {
		case len(diffs) > 0:
			m.Detail = strings.TrimSuffix(strings.Join(diffs, "; "), ". To use this command's, run: opx restart")
			m.Fix = "to use this environment's settings, run: opx restart"
		case len(notes) > 0:
			// Nothing a read gets changes: worth knowing, not a failure.
			m.Warn, m.Detail = true, strings.Join(notes, "; ")+"; reads get what this environment's daemon would give"
		}
		add(m)
	}
	add(checkDir("data directory", env.Paths.DataDir, true))
	add(checkPrivate("token file", env.Paths.TokenFile))
	add(checkPrivate("TLS key", env.Paths.KeyFile))
	if sockDir := filepath.Dir(env.Paths.SocketPath); sockDir != env.Paths.DataDir {
		add(checkDir("socket directory", sockDir, true))
	}

	var inUse []string
	if err == nil && st.Limited {
		add(api.Check{Name: "backend", Detail: "not checked: the policy allows the program that ran opx doctor no ref, so the daemon tells it nothing of the backend, the audit log or the accounts",
			Fix: "run opx doctor from a program the policy allows, or allow this one a ref (opx policy check tells why it is refused)"})
		add(sessionCheck(st.Session)...)
		add(policyCheck(st.Policy))
	} else if err == nil {
		inUse = accountsOf(st)
		h, err := cl.Health(ctx, g.Account)
		if err != nil {
			add(api.Check{Name: "backend", Detail: err.Error()})
		} else {
			add(h.Checks...)
		}
		add(sessionCheck(st.Session)...)
		add(policyCheck(st.Policy))
		if c, ok := askCheck(st.Policy, st.Ask); ok {
			add(c)
		}
		add(auditCheck(st.Audit, env.Paths.DataDir))
	}
	if b, err := policy.ReadFile(env.Paths.PolicyFile); err == nil {
		if pol, err := policy.Parse(b); err == nil {
			for _, note := range accountRuleNotes(env.Paths, pol, inUse) {
				add(api.Check{Name: "policy accounts", OK: true, Warn: true, Detail: note})
			}
		}
	}
	for _, line := range shimStatus(env, ShimDir(env.Paths)) {
		if strings.Contains(line, "not shimmed") {
			continue
		}
		name, detail, _ := strings.Cut(line, ": ")
		c := api.Check{Name: "shim " + name, OK: true, Detail: detail}
		if strings.Contains(detail, "PATH finds") || strings.Contains(detail, "no real") {
			c.Warn = true
		}
		if strings.Contains(detail, "go to the real") {
			// Each call works, through the real program: opx only
			// fails to save it the work.
			c.Warn, c.Fix = true, "run: opx restart (with this environment's settings)"
		}
		add(c)
	}
	if c, ok := clockCheck(); ok {
		add(c)
	}
	if c.JSON {
		return printDoctorJSON(env, checks)
	}
	return printDoctor(env, checks)
}

func printDoctor(env *Env, checks []api.Check) error {
	var b strings.Builder
	failed := 0
	for _, c := range checks {
		mark := "✓"
		switch {
		case !c.OK:
			mark = "✗"
			failed++
		case c.Warn:
			mark = "!"
		}
		fmt.Fprintf(&b, "%s %s: %s\n", mark, Printable(c.Name), Printable(c.Detail))
		if c.Fix != "" && !strings.Contains(c.Detail, c.Fix) {
			fmt.Fprintf(&b, "    fix: %s\n", Printable(c.Fix))
		}
	}
	if failed > 0 {
		fmt.Fprintf(&b, "%s failed\n", count(failed, "check", "checks"))
	}
	if _, err := fmt.Fprint(env.Stdout, b.String()); err != nil {
		return err
	}
	if failed > 0 {
		return &ExitError{Code: 1}
	}
	return nil
}

func printDoctorJSON(env *Env, checks []api.Check) error {
	r := doctorReport{OK: true, Checks: checks}
	for _, c := range checks {
		r.OK = r.OK && c.OK
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(env.Stdout, "%s\n", b); err != nil {
		return err
	}
	if !r.OK {
		return &ExitError{Code: 1}
	}
	return nil
}

// checkDir checks that dir, when it exists (it must when mustExist), is a
// directory of this user that nobody else may write to; private ones (the
// data and socket directories) must be 0700.
func checkDir(name, dir string, private bool) api.Check {
	c := api.Check{Name: name, OK: true}
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !private:
		c.Detail = dir + " (not created yet)"
		return c
	case err != nil:
		c.OK, c.Detail = false, err.Error()
		c.Fix = "the daemon creates it when it starts; see its log"
		return c
	case !fi.IsDir():
		c.OK, c.Detail, c.Fix = false, dir+" is not a directory", "remove it, then run: opx restart"
		return c
	}
	mode := fi.Mode().Perm()
	c.Detail = fmt.Sprintf("%s (%04o)", dir, mode)
	if uid, ok := ownerOf(fi); ok && uid != os.Geteuid() {
		c.OK, c.Fix = false, fmt.Sprintf("it belongs to uid %d: remove it or give it to yourself (chown)", uid)
		c.Detail += fmt.Sprintf(", owned by uid %d", uid)
		return c
	}
	bad := fs.FileMode(0o022)
	if private {
		bad = 0o077
	}
	if mode&bad != 0 {
		c.OK = false
		want := mode &^ bad
		c.Fix = fmt.Sprintf("chmod %04o %s", want, dir)
	}
	return c
}

// checkFile checks a file the user edits (config.json): when it exists,
// the file it names (links are followed, as opx follows them: a Nix store
// file is fine) is a regular file of this user or root that nobody else may
// write.
func checkFile(name, path string) api.Check {
	c := api.Check{Name: name, OK: true}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.Detail = path + " (none)"
		return c
	case err != nil:
		c.OK, c.Detail = false, err.Error()
		return c
	case !fi.Mode().IsRegular():
		c.OK, c.Detail, c.Fix = false, path+" is not a regular file", "replace it with a regular file"
		return c
	}
	mode := fi.Mode().Perm()
	c.Detail = fmt.Sprintf("%s (%04o)", path, mode)
	if uid, ok := ownerOf(fi); ok && uid != os.Geteuid() && uid != 0 {
		c.OK, c.Fix = false, "it belongs to another user: remove it or give it to yourself (chown)"
		c.Detail += fmt.Sprintf(", owned by uid %d", uid)
	} else if mode&0o022 != 0 {
		c.OK, c.Fix = false, fmt.Sprintf("others may change it: chmod %04o %s", mode&^0o022, path)
	}
	return c
}

// checkPolicyFile checks policy.json as the daemon judges it before every
// decision (policy.CheckFile): the file, each link on the way and each
// directory holding them must be this user's or root's and writable by
// nobody else (root's sticky directories, like /nix/store, excepted).
func checkPolicyFile(path string) api.Check {
	c := api.Check{Name: "policy file", OK: true}
	err := policy.CheckFile(path)
	var fe *policy.FileError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.Detail = path + " (none)"
	case errors.As(err, &fe):
		c.OK, c.Detail, c.Fix = false, strings.TrimSuffix(err.Error(), "; "+fe.Fix), fe.Fix
	case err != nil:
		c.OK, c.Detail = false, err.Error()
	default:
		c.Detail = path
		if fi, err := os.Stat(path); err == nil {
			c.Detail = fmt.Sprintf("%s (%04o)", path, fi.Mode().Perm())
		}
	}
	return c
}

// checkPrivate checks a file the daemon keeps (token, TLS key): a regular
// file (not a link), ours, 0600.
func checkPrivate(name, path string) api.Check {
	c := api.Check{Name: name, OK: true}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.OK, c.Detail = false, path+" is missing"
		c.Fix = "the daemon writes it when it starts; if one is running, run: opx restart"
		return c
	case err != nil:
		c.OK, c.Detail = false, err.Error()
		return c
	case !fi.Mode().IsRegular():
		c.OK, c.Detail, c.Fix = false, path+" is not a regular file", "remove it, then run: opx restart"
		return c
	}
	mode := fi.Mode().Perm()
	c.Detail = fmt.Sprintf("%s (%04o)", path, mode)
	if uid, ok := ownerOf(fi); ok && uid != os.Geteuid() {
		c.OK, c.Fix = false, "it belongs to another user: remove it, then run: opx restart"
		c.Detail += fmt.Sprintf(", owned by uid %d", uid)
	} else if mode&0o077 != 0 {
		c.OK, c.Fix = false, fmt.Sprintf("others may read it: chmod 0600 %s", path)
	}
	return c
}

func sessionCheck(s api.SessionStatus) []api.Check {
	c := api.Check{Name: "session", OK: true, Detail: "unlocked"}
	switch {
	case s.State == api.StateLocked:
		c.OK, c.Detail, c.Fix = false, "locked: every read is refused", "run: opx unlock"
	case s.Enabled:
		c.Detail = fmt.Sprintf("unlocked; locks after %s without a read", sec(s.IdleTimeoutSeconds))
	}
	out := []api.Check{c}
	if s.Follows != "" {
		f := api.Check{Name: "user's lock", OK: true, Detail: "follows " + s.Follows}
		if strings.Contains(s.Follows, "no system bus") || strings.HasPrefix(s.Follows, "nothing") || strings.HasPrefix(s.Follows, "off") {
			f.Warn = true
			f.Fix = "opx does not lock with your screen here: lock it yourself with opx lock when you leave"
		}
		out = append(out, f)
	}
	for _, l := range s.LockedAccounts {
		name := "the default account"
		if l.Account != "" {
			name = "account " + l.Account
		}
		out = append(out, api.Check{Name: "session", Detail: name + " is locked: " + l.Reason, Fix: "sign that account in (or unlock the 1Password app), then run: opx unlock"})
	}
	return out
}

func policyCheck(p api.PolicyStatus) api.Check {
	c := api.Check{Name: "policy", OK: true}
	switch {
	case p.State == "loaded" && !p.Loaded:
		c.Detail = "loaded (the daemon tells this program no more)"
	case p.State == "failed_closed":
		c.OK, c.Detail = false, p.Path+": failed closed, every read is denied: "+p.Reason
		c.Fix = "fix the file (opx policy check says what is wrong); the daemon reloads it by itself"
	case p.Loaded && p.Reason != "":
		c.OK, c.Detail = false, p.Path+": the file's new content is not in force: "+p.Reason
		c.Fix = "fix the file (opx policy check says what is wrong); the daemon reloads it by itself"
	case p.Loaded:
		def := p.Default
		if def == "" {
			def = "allow"
			if p.DefaultDeny {
				def = "deny"
			}
		}
		c.Detail = fmt.Sprintf("%s: %s, default %s", p.Path, count(p.Rules, "rule", "rules"), def)
	default:
		c.Warn, c.Detail = true, "none: every program of yours may read every secret ("+p.Path+")"
	}
	return c
}

// askCheck reports how the daemon asks about the reads the policy asks
// for, when it asks for any: through an askpass program or a notification,
// or (a warning) only with opx approve in another terminal.
func askCheck(p api.PolicyStatus, a api.AskStatus) (api.Check, bool) {
	if p.AskRules == 0 && p.Default != "ask" {
		return api.Check{}, false
	}
	c := api.Check{Name: "asking", OK: true}
	switch {
	case strings.HasPrefix(a.Channel, "askpass "):
		c.Detail = "through " + a.Channel
	case a.Channel == "notification":
		c.Detail = "through a desktop notification"
	default:
		c.Warn = true
		c.Detail = "only with opx approve in another terminal: no askpass program, and no notification: " + a.ChannelNote
		c.Fix = "set OPX_ASKPASS (or SSH_ASKPASS) in the daemon's environment to a program that asks, such as ssh-askpass, then: opx restart"
	}
	if a.LastError != "" {
		c.Warn = true
		c.Detail += "; the last question could not be asked: " + a.LastError
	}
	return c, true
}

// auditCheck reports the daemon's audit log health and the room left on its
// file system: a full disk refuses every read.
func auditCheck(a api.AuditStatus, dir string) api.Check {
	c := api.Check{Name: "audit log", OK: true}
	switch {
	case !a.Enabled:
		c.Warn, c.Detail = true, "off"
		return c
	case !a.Healthy:
		c.OK, c.Detail = false, a.Path+": not writable, reads are refused: "+a.Error
		c.Fix = "free disk space or fix the permissions of " + dir
		return c
	}
	c.Detail = a.Path
	if free, ok := freeBytes(dir); ok {
		c.Detail += fmt.Sprintf(" (%s free)", bytesText(free))
		if free < 16<<20 {
			c.OK, c.Fix = false, "free disk space: reads are refused when the audit log cannot be written"
		}
	}
	return c
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
