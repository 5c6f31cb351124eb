// Command fakeop stands in for the 1Password CLI (op) in opx's tests, because
// the real one cannot be installed here. It follows op 2.x's interface for
// what opx uses: read, inject, run, whoami, signin, item get, service-account
// ratelimit, --version, --account, exit codes and error text, with items from
// a JSON fixture. Errors go to stderr as "[ERROR] 2006/01/02 15:04:05
// message" with exit code 1.
//
// Environment:
//
//	FAKEOP_FIXTURE  the fixture file (required)
//	FAKEOP_STATE    a directory; a file named after an account's shorthand
//	                means that account is signed in (op signin creates it)
//	FAKEOP_DELAY    how long each invocation takes (a Go duration)
//	FAKEOP_LOG      a file that gets one line per invocation, "<pid> <args
//	                as JSON>", or "<pid> sa=<id> <args>" / "<pid>
//	                connect=<id> <args>" under a token, so tests can count
//	                processes per token; a bare op --version is neither
//	                delayed nor logged
//	FAKEOP_PASSWORD when set, op signin reads a password line from stdin and
//	                fails unless it matches
//	OP_SERVICE_ACCOUNT_TOKEN  authenticates as a service account
//	OP_CONNECT_HOST, OP_CONNECT_TOKEN  authenticate with a Connect server;
//	                they take precedence over OP_SERVICE_ACCOUNT_TOKEN, as
//	                op documents; one without the other is an error
//	FAKEOP_SA_READ_LIMIT, FAKEOP_SA_WRITE_LIMIT  a service account token's
//	                requests an hour (default 1000 and 100, a Teams account)
//	FAKEOP_SA_DAILY_LIMIT  the account's requests a day, all its service
//	                accounts together (default 5000, a Teams account)
//
// Files in FAKEOP_STATE make the servers misbehave, as op reports it:
// "offline" (no network), "ratelimit" (a service account's rate limit; the
// file holds the wait op names, as in "58 minutes") and "revoked-<id>" (that
// service account was deleted). A file "locked" is the 1Password app locked
// with nobody there to answer its prompt: every command of an account
// signed in through the app (not signout, nor a service account's or a
// Connect server's, which never ask the app) fails as op 2.x does when the
// app does not authorize it, "error initializing client: authorization
// timeout" (after "could not read secret '<ref>': " for op read). The file
// names the accounts the app holds, one shorthand a line, or is empty for
// all of them (the others stand for accounts signed in by hand). That is
// the text users quote from op read and op run against a locked app, on
// 1Password's developer forum ("Authorization timeout when using CLI") and
// in their projects' notes (none of the runs found shows op naming the
// lock itself).
//
// Tokens. <id> is the first 8 hex digits of SHA-256 of the token, or of
// host + "\n" + token for Connect; the fake never writes a token, only <id>.
// A service account token is "ops_" followed by base64 text; anything else
// fails as op fails to parse it. A token reads the fixture's default account
// (--account and OP_ACCOUNT play no part), and every secret value it reads
// (a field's value, a file's content, an SSH key, but not an attribute such
// as type or id, nor a one-time password) is the fixture's value followed
// by "~<id>", so a test can tell which token read it (e2e/harness has
// FakeOPValueFor and FakeOPConnectValueFor for that rule).
//
// What a token may run. A service account has read, inject, run, whoami,
// item get (with --vault when it can read more than one vault) and
// service-account ratelimit; any other command fails as op fails for a
// command it lacks (`unknown command "signin" for "op"`). With Connect, op
// documents read, inject and run, and the fake refuses the rest the same
// way (op's own wording for that was not found).
//
// Requests. Each service account token counts its requests in
// "sa-<id>.requests" in FAKEOP_STATE, per 1Password's table of commands
// that make more than one request and its rule that others make one: op read
// costs 3 reads (1 when the reference gives vault and item IDs), op item get
// 3 (1 with the item's and the --vault's IDs), op inject, op run and op
// whoami 1 each, op service-account ratelimit none. The hourly window begins
// with a token's first request; the daily one with the account's. A spent
// limit refuses the request with op's 429 message, whose "Please retry in
// 59 minutes" opx reads.
package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const version = "2.31.1"

type fixture struct {
	DefaultAccount string     `json:"default_account"`
	Accounts       []*account `json:"accounts"`
}

type account struct {
	Shorthand string   `json:"shorthand"`
	Email     string   `json:"email"`
	URL       string   `json:"url"`
	UserID    string   `json:"user_id"`
	AccountID string   `json:"account_id"`
	Vaults    []*vault `json:"vaults"`
}

type vault struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Items []*item `json:"items"`
}

type item struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Fields   []*field `json:"fields"`
	Sections []struct {
		Label  string   `json:"label"`
		Fields []*field `json:"fields"`
	} `json:"sections"`
}

type field struct {
	ID      string `json:"id"`
	Label   string `json:"label"`
	Type    string `json:"type"` // CONCEALED, STRING, OTP, SSHKEY, ...
	Purpose string `json:"purpose"`
	Value   string `json:"value"`
	OpenSSH string `json:"openssh"` // SSHKEY: the key in OpenSSH format
	// ContentBase64 is a file attachment's content (FILE), which op read
	// prints as it is, bytes that are not text included.
	ContentBase64 string `json:"content_base64"`
}

// opError is an error op prints as "[ERROR] date time message", exit 1.
type opError struct{ msg string }

func (e *opError) Error() string { return e.msg }

func fail(format string, args ...any) error { return &opError{fmt.Sprintf(format, args...)} }

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-v") {
		// Local and instant in the real op too: not delayed, not logged,
		// so that opx status (which asks it) does not count as a call.
		fmt.Println(version)
		return
	}
	id := identityFromEnv()
	logCall(id)
	if d, err := time.ParseDuration(os.Getenv("FAKEOP_DELAY")); err == nil {
		time.Sleep(d)
	}
	err := run(os.Args[1:], id, os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "[ERROR] %s %s\n", time.Now().Format("2006/01/02 15:04:05"), err)
		os.Exit(1)
	}
}

// logCall writes "<pid> <args as JSON>" to FAKEOP_LOG, with the identity
// between them for a token ("<pid> sa=<id> <args>", "connect=<id>").
func logCall(id identity) {
	path := os.Getenv("FAKEOP_LOG")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	args, _ := json.Marshal(os.Args[1:])
	if l := id.label(); l != "" {
		fmt.Fprintf(f, "%d %s %s\n", os.Getpid(), l, args)
		return
	}
	fmt.Fprintf(f, "%d %s\n", os.Getpid(), args)
}

// flags holds the options op accepts; global ones may stand anywhere.
type flags struct {
	account, format, in, out string
	vault                    string
	noNewline, raw, force    bool
	version, noMasking       bool
	envFiles                 []string
	args                     []string
}

func parse(argv []string) (flags, error) {
	var f flags
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		name, val, hasVal := strings.Cut(a, "=")
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(argv) {
				return "", fail("flag needs an argument: %s", name)
			}
			i++
			return argv[i], nil
		}
		var err error
		switch name {
		case "--account":
			f.account, err = next()
		case "--format":
			f.format, err = next()
		case "--vault":
			f.vault, err = next()
		case "-i", "--in-file":
			f.in, err = next()
		case "-o", "--out-file":
			f.out, err = next()
		case "--cache", "--no-color", "--iso-timestamps", "--debug":
			// on/off flags; --cache=false too
		case "--file-mode", "--session", "--config", "--encoding":
			_, err = next()
		case "-n", "--no-newline":
			f.noNewline = true
		case "--raw":
			f.raw = true
		case "-f", "--force":
			f.force = true
		case "-v", "--version":
			f.version = true
		case "--env-file":
			var file string
			if file, err = next(); err == nil {
				f.envFiles = append(f.envFiles, file)
			}
		case "--no-masking":
			f.noMasking = true
		case "--":
			f.args = append(f.args, argv[i+1:]...)
			return f, nil
		default:
			if strings.HasPrefix(a, "-") && a != "-" {
				return f, fail("unknown flag: %s", name)
			}
			f.args = append(f.args, a)
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

func run(argv []string, id identity, stdin io.Reader, stdout io.Writer) error {
	f, err := parse(argv)
	if err != nil {
		return err
	}
	if f.version {
		fmt.Fprintln(stdout, version)
		return nil
	}
	if len(f.args) == 0 {
		return fail("no command given; see 'op --help'")
	}
	cmd, rest := f.args[0], f.args[1:]
	if !id.supports(cmd) {
		return fail("unknown command %q for \"op\"", cmd)
	}
	fx, err := loadFixture()
	if err != nil {
		return err
	}
	if err := reachable(id, fx.shorthand(f.account), cmd, rest); err != nil {
		return err
	}
	reqs := newRequests(id)
	switch cmd {
	case "read":
		if len(rest) != 1 {
			return fail("expected exactly one secret reference, got %d", len(rest))
		}
		acct, err := fx.accountFor(id, f.account)
		if err != nil {
			return err
		}
		if err := reqs.takeReads(readCost(acct, rest[0])); err != nil {
			return err
		}
		v, err := acct.resolve(rest[0], id)
		if err != nil {
			return fail("could not read secret '%s': %s", rest[0], err)
		}
		if !f.noNewline {
			v += "\n"
		}
		return output(f.out, stdout, v)
	case "inject":
		acct, err := fx.accountFor(id, f.account)
		if err != nil {
			return err
		}
		var in []byte
		if f.in != "" && f.in != "/dev/stdin" && f.in != "-" { // op reads those as the stream (op-js gives a socket)
			in, err = os.ReadFile(f.in)
		} else {
			in, err = io.ReadAll(stdin)
		}
		if err != nil {
			return fail("could not read template: %s", err)
		}
		if err := reqs.takeReads(1); err != nil {
			return err
		}
		out, err := inject(acct, id, string(in))
		if err != nil {
			return err
		}
		return output(f.out, stdout, out)
	case "whoami":
		return whoami(fx, id, reqs, f, stdout)
	case "service-account":
		if id.kind != serviceAccount {
			// op has the command for people too; the fake has not.
			return fail("unknown command %q for \"op\"", cmd)
		}
		if len(rest) != 1 || rest[0] != "ratelimit" {
			return fail("unknown command %q for \"op service-account\"", strings.Join(rest, " "))
		}
		return reqs.rateLimit(f.format, stdout)
	case "signin":
		acct, err := fx.find(f.account)
		if err != nil {
			return err
		}
		if want := os.Getenv("FAKEOP_PASSWORD"); want != "" {
			fmt.Fprintf(os.Stderr, "Enter the password for %s at %s: ", acct.Email, acct.URL)
			line, _ := bufio.NewReader(stdin).ReadString('\n')
			if strings.TrimRight(line, "\r\n") != want {
				return fail("Authentication: (401) Unauthorized, You aren't authorized to perform this action.")
			}
		}
		if err := os.WriteFile(filepath.Join(stateDir(), acct.Shorthand), nil, 0o600); err != nil {
			return fail("could not save session: %s", err)
		}
		if f.raw {
			tok := make([]byte, 16)
			rand.Read(tok)
			fmt.Fprintln(stdout, hex.EncodeToString(tok))
		}
		return nil
	case "item":
		if len(rest) != 2 || rest[0] != "get" {
			return fail("unknown command %q for \"op item\"", strings.Join(rest, " "))
		}
		acct, err := fx.accountFor(id, f.account)
		if err != nil {
			return err
		}
		if id.kind == serviceAccount && f.vault == "" && len(acct.Vaults) > 1 {
			// Documented (op item needs --vault when the service account
			// can read more than one vault); the wording is the fake's.
			return fail("specify a vault with --vault: this service account can access more than one vault")
		}
		if err := reqs.takeReads(itemGetCost(acct, rest[1], f.vault)); err != nil {
			return err
		}
		return itemGet(acct, id, rest[1], f.vault, f.format, stdout)
	case "run":
		if len(rest) == 0 {
			return fail("expected a command to run after --")
		}
		acct, err := fx.accountFor(id, f.account)
		if err != nil {
			return err
		}
		if err := reqs.takeReads(1); err != nil {
			return err
		}
		return runCommand(acct, id, f, rest)
	case "signout":
		acct, err := fx.find(f.account)
		if err != nil {
			return err
		}
		os.Remove(filepath.Join(stateDir(), acct.Shorthand))
		return nil
	default:
		return fail("unknown command %q for \"op\"", cmd)
	}
}

// whoami is op whoami: the signed-in account, or the service account.
func whoami(fx *fixture, id identity, reqs *requests, f flags, stdout io.Writer) error {
	if id.kind == serviceAccount {
		acct, err := fx.accountFor(id, f.account)
		if err != nil {
			return err
		}
		if err := reqs.takeReads(1); err != nil {
			return err
		}
		return whoamiServiceAccount(id, acct, f.format, stdout)
	}
	acct, err := fx.signedIn(f.account)
	if err != nil {
		if err.Error() == errNotSignedIn.Error() {
			return fail("account is not signed in")
		}
		return err
	}
	if f.format == "json" {
		b, _ := json.Marshal(map[string]string{"url": acct.URL, "email": acct.Email, "user_uuid": acct.UserID, "account_uuid": acct.AccountID, "user_type": "HUMAN"})
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	fmt.Fprintf(stdout, "URL:        https://%s\nEmail:      %s\nUser ID:    %s\nUser Type:  HUMAN\n", acct.URL, acct.Email, acct.UserID)
	return nil
}

// reachable is what op says before a command runs: a token it cannot use,
// a locked app, 1Password's servers out of reach, a deleted service
// account, or a spent rate limit (not for signout, which needs neither the
// app nor a server, nor for asking the rate limits themselves). op read
// puts a token's or the app's trouble after "could not read secret".
func reachable(id identity, shorthand, cmd string, rest []string) error {
	trouble := func(msg string) error {
		if cmd == "read" && len(rest) == 1 {
			return fail("could not read secret '%s': %s", rest[0], msg)
		}
		return fail("%s", msg)
	}
	if id.problem != "" {
		return trouble(id.problem)
	}
	if cmd == "signout" {
		return nil
	}
	if id.kind == desktop && appLocked(shorthand) {
		return trouble("error initializing client: authorization timeout")
	}
	if err := offline(); err != nil {
		return err
	}
	if err := id.revoked(); err != nil {
		return trouble(err.Error())
	}
	if cmd == "service-account" {
		return nil
	}
	return rateLimitFile()
}

// itemGet is op item get ITEM: the item (by title or ID, in the --vault
// or any vault) as op 2.x prints it with --format json, or as a short text
// otherwise.
func itemGet(a *account, id identity, name, vaultName, format string, stdout io.Writer) error {
	vaults := a.Vaults
	if vaultName != "" {
		v := a.vault(vaultName)
		if v == nil {
			return fail("%q isn't a vault in this account. Specify the vault with its ID or name.", vaultName)
		}
		vaults = []*vault{v}
	}
	for _, v := range vaults {
		for _, it := range v.Items {
			if it.Title != name && it.ID != name {
				continue
			}
			type outField struct {
				ID      string `json:"id"`
				Type    string `json:"type"`
				Purpose string `json:"purpose,omitempty"`
				Label   string `json:"label"`
				Value   string `json:"value,omitempty"`
				Ref     string `json:"reference"`
			}
			out := struct {
				ID       string            `json:"id"`
				Title    string            `json:"title"`
				Version  int               `json:"version"`
				Vault    map[string]string `json:"vault"`
				Category string            `json:"category"`
				Fields   []outField        `json:"fields"`
			}{ID: it.ID, Title: it.Title, Version: 1, Vault: map[string]string{"id": v.ID, "name": v.Name}, Category: "LOGIN"}
			for _, fl := range it.Fields {
				out.Fields = append(out.Fields, outField{fl.ID, fl.Type, fl.Purpose, fl.Label, id.mark(fl.Value), "op://" + v.Name + "/" + it.Title + "/" + fl.Label})
			}
			if format == "json" {
				b, _ := json.MarshalIndent(out, "", "  ")
				fmt.Fprintf(stdout, "%s\n", b)
				return nil
			}
			fmt.Fprintf(stdout, "ID:          %s\nTitle:       %s\nVault:       %s (%s)\n", it.ID, it.Title, v.Name, v.ID)
			return nil
		}
	}
	return fail("%q isn't an item. Specify the item with its UUID, name, or domain.", name)
}

// runCommand is op run: the op:// values of the environment and the env
// files resolved, the command run with them, each value in its output
// replaced by op's marker (unless --no-masking or OP_RUN_NO_MASKING).
func runCommand(acct *account, id identity, f flags, argv []string) error {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			set(k, v)
		}
	}
	for _, file := range f.envFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			return fail("could not read env file: %s", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
				v = v[1 : len(v)-1]
			}
			set(strings.TrimSpace(k), v)
		}
	}
	var secrets []string
	env := make([]string, 0, len(order))
	for _, k := range order {
		v := vars[k]
		if strings.HasPrefix(v, "op://") {
			r, err := acct.resolve(v, id)
			if err != nil {
				return fail("could not resolve secret reference '%s' of %s: %s", v, k, err)
			}
			v = r
			if r != "" {
				secrets = append(secrets, r)
			}
		}
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Stdin = env, os.Stdin
	off, _ := strconv.ParseBool(os.Getenv("OP_RUN_NO_MASKING"))
	mask := !f.noMasking && !off
	var out, errb bytes.Buffer
	if mask {
		cmd.Stdout, cmd.Stderr = &out, &errb
	} else {
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	}
	err := cmd.Run()
	if mask {
		conceal := func(s string) string {
			sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
			for _, v := range secrets {
				s = strings.ReplaceAll(s, v, "<concealed by 1Password>")
			}
			return s
		}
		io.WriteString(os.Stdout, conceal(out.String()))
		io.WriteString(os.Stderr, conceal(errb.String()))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		return fail("%s", err)
	}
	return nil
}

func output(path string, stdout io.Writer, v string) error {
	if path == "" {
		_, err := io.WriteString(stdout, v)
		return err
	}
	return os.WriteFile(path, []byte(v), 0o600)
}

// offline is what op says when it cannot reach 1Password's servers, as the
// test chose with a file "offline" in FAKEOP_STATE.
func offline() error {
	if _, err := os.Stat(filepath.Join(stateDir(), "offline")); err == nil {
		return fail(`error initializing client: Get "https://my.1password.com/api/v2/account/keysets": dial tcp: lookup my.1password.com: no such host`)
	}
	return nil
}

// appLocked reports whether the test locked the 1Password app that holds
// the account shorthand, with a file "locked" in FAKEOP_STATE naming it
// (or naming none: every account).
func appLocked(shorthand string) bool {
	b, err := os.ReadFile(filepath.Join(stateDir(), "locked"))
	if err != nil {
		return false
	}
	names := strings.Fields(string(b))
	return len(names) == 0 || slices.Contains(names, shorthand)
}

// rateLimitFile is 1Password's answer to a service account that used up
// its requests, as the test chose with a file "ratelimit" in FAKEOP_STATE
// holding the wait ("58 minutes"), whatever the identity.
func rateLimitFile() error {
	if b, err := os.ReadFile(filepath.Join(stateDir(), "ratelimit")); err == nil {
		return fail("(429) Too Many Requests: You've reached the maximum number of this type of requests this service account is allowed to make. Please retry in %s or try other requests.", strings.TrimSpace(string(b)))
	}
	return nil
}

func stateDir() string {
	if d := os.Getenv("FAKEOP_STATE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "fakeop-state")
}

func loadFixture() (*fixture, error) {
	path := os.Getenv("FAKEOP_FIXTURE")
	if path == "" {
		return nil, fail("FAKEOP_FIXTURE is not set")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fail("read fixture: %s", err)
	}
	var fx fixture
	if err := json.Unmarshal(b, &fx); err != nil {
		return nil, fail("parse fixture: %s", err)
	}
	return &fx, nil
}

var errNotSignedIn = errors.New("You are not currently signed in. Please run `op signin --help` for instructions")

// find returns the account that filter (or else OP_ACCOUNT) names
// (shorthand, email, user or account ID, URL), or the default one.
func (fx *fixture) find(filter string) (*account, error) {
	if filter == "" {
		filter = os.Getenv("OP_ACCOUNT")
	}
	return fx.lookup(filter)
}

// accountFor is the account a command reads as id: a desktop account must
// be signed in; a token belongs to the fixture's default account, and op
// goes by the token alone, so --account and OP_ACCOUNT play no part.
func (fx *fixture) accountFor(id identity, filter string) (*account, error) {
	if id.kind == desktop {
		return fx.signedIn(filter)
	}
	return fx.lookup("")
}

// shorthand is the shorthand of the account that filter (or else
// OP_ACCOUNT) names, or "" when none does.
func (fx *fixture) shorthand(filter string) string {
	if a, err := fx.find(filter); err == nil {
		return a.Shorthand
	}
	return ""
}

func (fx *fixture) lookup(filter string) (*account, error) {
	if filter == "" {
		filter = fx.DefaultAccount
	}
	for _, a := range fx.Accounts {
		for _, k := range []string{a.Shorthand, a.Email, a.UserID, a.AccountID, a.URL} {
			if k != "" && strings.EqualFold(k, filter) {
				return a, nil
			}
		}
	}
	if filter == "" {
		return nil, fail("No accounts configured for use with 1Password CLI.")
	}
	return nil, fail("no account found for filter %q", filter)
}

func (fx *fixture) signedIn(filter string) (*account, error) {
	a, err := fx.find(filter)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(stateDir(), a.Shorthand)); err != nil {
		return nil, &opError{errNotSignedIn.Error()}
	}
	return a, nil
}

// resolve reads one secret reference as id: secret values (a field's
// value, a file's content, an SSH key) are marked for a token.
func (a *account) resolve(ref string, id identity) (string, error) {
	rest, ok := strings.CutPrefix(ref, "op://")
	if !ok {
		return "", fmt.Errorf("invalid secret reference '%s': secret references must start with \"op://\"", ref)
	}
	path, query, _ := strings.Cut(rest, "?")
	parts := strings.Split(path, "/")
	if len(parts) < 3 || len(parts) > 4 {
		return "", fmt.Errorf("invalid secret reference '%s': too few or too many segments", ref)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("invalid secret reference '%s': %s", ref, err)
	}
	v := a.vault(parts[0])
	if v == nil {
		return "", fmt.Errorf("could not get item %s/%s: %q isn't a vault in this account. Specify the vault with its ID or name.", parts[0], parts[1], parts[0])
	}
	it := v.item(parts[1])
	if it == nil {
		return "", fmt.Errorf("could not get item %s/%s: %q isn't an item in the %q vault. Specify the item with its UUID, name, or domain.", parts[0], parts[1], parts[1], v.Name)
	}
	var fl *field
	if len(parts) == 4 {
		fl = it.sectionField(parts[2], parts[3])
	} else {
		fl = it.anyField(parts[2])
	}
	if fl == nil {
		return "", fmt.Errorf("item '%s/%s' does not have a field '%s'", v.Name, it.Title, parts[len(parts)-1])
	}
	if f := q.Get("ssh-format"); f != "" {
		if f != "openssh" || fl.Type != "SSHKEY" {
			return "", fmt.Errorf("cannot convert field '%s' to ssh format %q", fl.Label, f)
		}
		return id.mark(fl.OpenSSH), nil
	}
	switch attr := q.Get("attribute"); attr {
	case "", "value":
		if fl.ContentBase64 != "" {
			b, err := base64.StdEncoding.DecodeString(fl.ContentBase64)
			if err != nil {
				return "", fmt.Errorf("file '%s' is damaged", fl.Label)
			}
			return id.mark(string(b)), nil
		}
		return id.mark(fl.Value), nil
	case "otp", "totp":
		if fl.Type != "OTP" {
			return "", fmt.Errorf("field '%s' is not a one-time password field", fl.Label)
		}
		return totp(fl.Value, time.Now())
	case "type":
		return strings.ToLower(fl.Type), nil
	case "id":
		return fl.ID, nil
	case "label":
		return fl.Label, nil
	case "purpose":
		return fl.Purpose, nil
	default:
		return "", fmt.Errorf("invalid secret reference '%s': unknown attribute %q", ref, attr)
	}
}

func (a *account) vault(name string) *vault {
	for _, v := range a.Vaults {
		if v.ID == name || strings.EqualFold(v.Name, name) {
			return v
		}
	}
	return nil
}

func (v *vault) item(name string) *item {
	for _, it := range v.Items {
		if it.ID == name || strings.EqualFold(it.Title, name) {
			return it
		}
	}
	return nil
}

func match(f *field, name string) bool { return f.ID == name || strings.EqualFold(f.Label, name) }

func (it *item) anyField(name string) *field {
	for _, f := range it.Fields {
		if match(f, name) {
			return f
		}
	}
	for _, s := range it.Sections {
		for _, f := range s.Fields {
			if match(f, name) {
				return f
			}
		}
	}
	return nil
}

func (it *item) sectionField(section, name string) *field {
	for _, s := range it.Sections {
		if strings.EqualFold(s.Label, section) {
			for _, f := range s.Fields {
				if match(f, name) {
					return f
				}
			}
		}
	}
	return nil
}

// The template syntax of op inject, written from 1Password's "Template
// syntax" documentation with regular expressions, independently of opx's
// own scanner (the tests compare the two):
//   - unenclosed: op:// not preceded by [A-Za-z0-9-+\.], then the longest
//     run of [A-Za-z0-9-?_.], the / delimiter, and $var / ${var} variables;
//   - enclosed: {{, spaces, an unenclosed reference, spaces, }};
//   - escape: {{, spaces, a double-quoted string (\" and \\), spaces, }}.
var (
	variable    = `\$(?:[A-Za-z_][A-Za-z0-9_]*|\{ *[A-Za-z_][A-Za-z0-9_]* *(?::-[^}\n]{0,256})?\})`
	refBody     = `op://(?:[A-Za-z0-9\-?_./]|` + variable + `)+`
	reEnclosed  = regexp.MustCompile(`^\{\{ *(` + refBody + `) *\}\}`)
	reEscape    = regexp.MustCompile(`(?s)^\{\{ *"((?:[^"\\]|\\.)*)" *\}\}`)
	reUnenclose = regexp.MustCompile(`^` + refBody)
	reVariable  = regexp.MustCompile(`\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{ *([A-Za-z_][A-Za-z0-9_]*) *(?::-([^}\n]*))?\})`)
)

// inject renders tmpl; any failing ref fails the whole command and nothing
// is written, as op inject does.
func inject(a *account, id identity, tmpl string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); {
		rest := tmpl[i:]
		if m := reEnclosed.FindStringSubmatch(rest); m != nil {
			v, err := injectRef(a, id, m[1])
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += len(m[0])
			continue
		}
		if m := reEscape.FindStringSubmatch(rest); m != nil {
			b.WriteString(strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(m[1]))
			i += len(m[0])
			continue
		}
		if m := reUnenclose.FindString(rest); m != "" && (i == 0 || !strings.ContainsRune("-+\\.", rune(tmpl[i-1])) && !isAlnum(tmpl[i-1])) {
			v, err := injectRef(a, id, m)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += len(m)
			continue
		}
		b.WriteByte(tmpl[i])
		i++
	}
	return b.String(), nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// injectRef expands the variables of ref from the environment and resolves it.
func injectRef(a *account, id identity, ref string) (string, error) {
	var verr error
	ref = reVariable.ReplaceAllStringFunc(ref, func(v string) string {
		m := reVariable.FindStringSubmatch(v)
		name, def, hasDef := m[1], m[3], strings.Contains(v, ":-")
		if m[1] == "" {
			name = m[2]
		}
		if val, ok := lookupEnv(name); ok && val != "" {
			return val
		}
		if hasDef {
			return def
		}
		verr = fail("could not resolve secret reference '%s': environment variable %q is not set", ref, name)
		return ""
	})
	if verr != nil {
		return "", verr
	}
	v, err := a.resolve(ref, id)
	if err != nil {
		return "", fail("could not resolve secret reference '%s': %s", ref, err)
	}
	return v, nil
}

// lookupEnv finds a variable by name, exactly or else without regard to
// case (op's variable names are case-insensitive).
func lookupEnv(name string) (string, bool) {
	if v, ok := os.LookupEnv(name); ok {
		return v, true
	}
	var found []string
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, name) {
			found = append(found, v)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return "", false
}

// totp computes an RFC 6238 code (SHA-1, 6 digits, 30 s) from an otpauth
// URI or a bare base32 secret.
func totp(uri string, now time.Time) (string, error) {
	secret := uri
	if u, err := url.Parse(uri); err == nil && u.Scheme == "otpauth" {
		secret = u.Query().Get("secret")
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
	if err != nil {
		return "", fmt.Errorf("invalid one-time password secret")
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(now.Unix()/30))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	code := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", code%1000000), nil
}
