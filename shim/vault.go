package shim

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/cli"
	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/self"
	"github.com/opxhq/opx/xdg"
)

// vaultCall is a vault (or bao) command line the shim serves: `kv get` or
// `read` of one path, with -field, -format, -mount and -version.
type vaultCall struct {
	kv      bool // kv get; else read
	path    string
	mount   string
	field   string
	version int
	format  string // lower case, as the CLI settles it: flag, VAULT_FORMAT, "table"
}

// vaultEnv reads the CLI's setting NAME as kind's CLI does: VAULT_NAME for
// vault; for bao BAO_NAME when set at all, else VAULT_NAME.
func vaultEnv(kind, name string) string {
	if kind == api.SchemeBao {
		if v, ok := os.LookupEnv("BAO_" + name); ok {
			return v
		}
	}
	return os.Getenv("VAULT_" + name)
}

// parseVaultArgs reads the command line as the vault CLI (1.14) and the bao
// CLI (2.4) do, for the subset the shim serves; ok is false when the real
// CLI must answer: another command, a flag the shim does not serve, a
// format other than json (or table with -field), a path it cannot map
// exactly as the CLI would.
func parseVaultArgs(kind string, args []string) (c vaultCall, ok bool) {
	if c.format, ok = globalFormat(kind, args); !ok {
		return c, false
	}
	var rest []string
	switch {
	case len(args) >= 2 && args[0] == "kv" && args[1] == "get":
		c.kv, rest = true, args[2:]
	case len(args) >= 1 && args[0] == "read":
		rest = args[1:]
	default:
		return c, false
	}
	n, ok := c.parseFlags(rest)
	if !ok || len(rest)-n != 1 {
		return c, false // a flag not served, or the CLI's "Not enough" or "Too many arguments"
	}
	c.path = rest[n]
	switch {
	case c.field != "" && (c.format == "table" || c.format == "json"):
	case c.field == "" && c.format == "json":
	default:
		return c, false // the table, yaml, raw and pretty forms: the real CLI
	}
	return c, true
}

// globalFormat is the output format, lower case, as the CLI settles it
// first: -format anywhere before "--" (its global scan), else
// kind's FORMAT variable, else "table". ok is false for the flags that
// make the CLI print something else than the secret.
func globalFormat(kind string, args []string) (format string, ok bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		switch {
		case strings.HasPrefix(name, "output-curl-string"), strings.HasPrefix(name, "output-policy"), strings.HasPrefix(name, "detailed"):
			return "", false
		case strings.HasPrefix(name, "format="):
			format = name[len("format="):]
		case name == "format" && i+1 < len(args):
			format = args[i+1]
			i++ // the value, not a flag
		}
	}
	format = strings.ToLower(cmp.Or(format, vaultEnv(kind, "FORMAT")))
	return cmp.Or(format, "table"), true
}

// parseFlags reads the command's flags as Go's flag package does: -name,
// --name, -name=value or -name value, up to the first argument that is
// not a flag, or past "--". It returns how many arguments the flags took;
// ok is false for a flag the shim does not serve or a malformed one.
func (c *vaultCall) parseFlags(args []string) (n int, ok bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return i + 1, true
		}
		if len(a) < 2 || a[0] != '-' {
			return i, true
		}
		name := strings.TrimPrefix(a[1:], "-")
		if name == "" || name[0] == '-' || name[0] == '=' {
			return 0, false
		}
		name, val, hasVal := strings.Cut(name, "=")
		if !hasVal {
			if i+1 >= len(args) {
				return 0, false // the CLI's "flag needs an argument"
			}
			i++
			val = args[i]
		}
		if !c.setFlag(name, val) {
			return 0, false
		}
	}
	return len(args), true
}

// setFlag sets the flag name of the command to val; it reports false for
// a flag the shim does not serve.
func (c *vaultCall) setFlag(name, val string) bool {
	switch {
	case name == "field":
		c.field = val
	case name == "format":
		// settled by the global scan
	case name == "mount" && c.kv:
		c.mount = val
	case name == "version" && c.kv:
		// Decimal only: the CLI's integer flags take 0x10 and 010
		// (octal) too, which the real CLI may read.
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 || val[0] < '0' || val[0] > '9' || len(val) > 1 && val[0] == '0' {
			return false
		}
		c.version = n
	default:
		return false // -address, -namespace, -wrap-ttl, ...: the real CLI
	}
	return true
}

// ref is the opx ref for the call, or "" when the CLI's path mapping
// cannot be matched exactly (the real CLI answers then).
func (c vaultCall) ref(kind string) string {
	var p string
	if c.kv {
		partial := strings.TrimPrefix(c.path, "/")
		if strings.HasSuffix(partial, "/") {
			return ""
		}
		mount := strings.Trim(strings.TrimSpace(c.mount), "/")
		segs := strings.Split(partial, "/")
		switch {
		case c.mount != "" && mount == "":
			return "" // -mount=/: the CLI reads the path as a KV v1 one
		case mount != "":
			// -mount=M P reads M/P; a mount of more than one segment
			// maps through the mount found on the server.
			if strings.Contains(mount, "/") || segs[0] == "data" {
				return ""
			}
			p = mount + "/" + partial
		default:
			// kv get adds data/ after a KV v2 mount even when the path
			// has it; opx does not: paths with a data segment go to the
			// real CLI.
			for _, s := range segs[1:] {
				if s == "data" {
					return ""
				}
			}
			p = partial
		}
	} else {
		p = strings.Trim(strings.TrimSpace(c.path), "/")
	}
	if p == "" || strings.ContainsAny(p, "?#%") || strings.Contains(p, "//") {
		return ""
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if s == "." || s == ".." || strings.TrimSpace(s) != s {
			return ""
		}
	}
	switch {
	case api.ReservedMount(segs[0]):
		// Answers about the token that reads them (lookup-self, its
		// cubbyhole): the caller's token, not the daemon's, must read.
		return ""
	case len(segs) > 2 && segs[1] == "code":
		return "" // a TOTP engine's code: new every 30 s, never cached
	}
	if !c.kv {
		return kind + "://" + p + "?response=" + api.ResponseLogical
	}
	ref := kind + "://" + p + "?response=" + api.ResponseKV
	if c.version > 0 {
		ref += "&version=" + strconv.Itoa(c.version)
	}
	return ref
}

// vaultServer is the server kind's CLI would talk to in this environment;
// ok is false when the CLI would do more than read from it.
func vaultServer(kind string) (api.Server, bool) {
	// Another address, a response-wrapping TTL (the CLI would print a
	// wrapping token, not the secret) or an SRV lookup of the address:
	// the real CLI's.
	for _, v := range []string{"AGENT_ADDR", "PROXY_ADDR", "WRAP_TTL", "SRV_LOOKUP"} {
		if vaultEnv(kind, v) != "" {
			return api.Server{}, false
		}
	}
	addr := vaultEnv(kind, "ADDR")
	if addr == "" {
		addr = "https://127.0.0.1:8200" // the CLI's default
	}
	return api.Server{Address: addr, Namespace: vaultEnv(kind, "NAMESPACE")}, true
}

// RunAsVault is opx installed as `vault` (kind "vault") or `bao` (kind
// "bao"): `kv get` and `read` with -field or -format=json are served
// through the daemon, from the server this environment names, with the
// real CLI's stdout; everything else, every error the server gives, and
// any environment the daemon does not serve goes to the real CLI,
// unchanged.
func RunAsVault(kind string, argv []string, paths xdg.Paths, expect *client.Expectation) int {
	if os.Getenv(shimExecVar) == strconv.Itoa(shimExecPID()) {
		fmt.Fprintf(os.Stderr, "%s: command not found (the %s on PATH runs opx again)\n", kind, kind)
		return 127
	}
	if os.Getenv(shimChildVar) != "" {
		return execReal(kind, argv) // a write the shim runs: never itself again
	}
	if isVaultWrite(argv[1:]) {
		return writeThenForget(kind, argv, paths, expect)
	}
	c, ok := parseVaultArgs(kind, argv[1:])
	var ref string
	if ok {
		ref = c.ref(kind)
	}
	srv, served := vaultServer(kind)
	if ref == "" || !served {
		return execReal(kind, argv)
	}
	env := cli.NewQuietEnv(paths, expect)
	defer env.Client.Close()
	res, err := env.Client.Reads(context.Background(), client.Query{Servers: map[string]api.Server{kind: srv}}, []string{ref})
	if err != nil {
		var e *client.Error
		switch {
		case errors.As(err, &e) && e.Code == "":
			return execReal(kind, argv) // no daemon to ask
		case e != nil && opxRefuses(e.Code, false, true):
			fmt.Fprintf(os.Stderr, "Error reading %s: %s\n", c.path, e.Message)
			return 2
		}
		return vaultFail(kind, argv, c, err.Error())
	}
	r := res[ref]
	body := r.Value
	if e := r.Err; e != nil {
		if opxRefuses(e.Code, e.Policy, false) {
			fmt.Fprintf(os.Stderr, "Error reading %s: %s\n", c.path, e.Message)
			return 2
		}
		// Not found, another server, a server error: the real CLI says it
		// in its own words.
		return vaultFail(kind, argv, c, cli.TrimRefPrefix(e.Message, ref))
	}
	if r.Stale {
		// Served past its TTL because the server failed: the CLI would
		// fail, and says how.
		clear(body)
		return vaultFail(kind, argv, c, "the server did not answer (opx holds only a value past its TTL)")
	}
	defer clear(body)
	tty := os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb" && term.IsTerminal(int(os.Stdout.Fd()))
	out, ok := renderVault(c, body, tty, tty && vaultEnv(kind, "CLI_NO_COLOR") == "")
	if !ok {
		return execReal(kind, argv)
	}
	defer clear(out)
	if _, err := os.Stdout.Write(out); err != nil {
		return 1
	}
	return 0
}

// shimChildVar marks the real CLI the shim runs as a child for a write.
const shimChildVar = "OPX_SHIM_CHILD"

// isVaultWrite reports a command line that changes secrets the daemon may
// hold: kv put, patch, delete, undelete, destroy, rollback and metadata
// changes, write, patch and delete.
func isVaultWrite(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "write", "delete", "patch":
		return true
	case "kv":
		if len(args) < 2 {
			return false
		}
		switch args[1] {
		case "put", "patch", "delete", "undelete", "destroy", "rollback":
			return true
		case "metadata":
			return len(args) > 2 && args[2] != "get" && args[2] != "list"
		}
	}
	return false
}

// writeThenForget runs the real CLI for a write as a child (the same
// arguments, streams and environment) and then tells a running daemon to
// drop its cached values of kind's refs, so that a read through the shim
// after the write sees it. The CLI's exit status is the shim's.
func writeThenForget(kind string, argv []string, paths xdg.Paths, expect *client.Expectation) int {
	path, err := self.LookPath(kind)
	if err != nil {
		return execReal(kind, argv) // says "command not found"
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args[0] = kind
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), shimChildVar+"=1")
	// The terminal's signals reach the CLI in the same process group; a
	// signal sent to the shim alone is passed on.
	signal.Ignore(os.Interrupt, syscall.SIGQUIT)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", kind, err)
		return 127
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	env := cli.NewQuietEnv(paths, expect)
	defer env.Client.Close()
	defer env.NoStart.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	env.NoStart.Forget(ctx, kind) // no daemon, or another one's settings: nothing cached to drop here
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 1
}

// opxRefuses reports an error of opx's own making that the real CLI must
// not get around: a lock, a policy, an audit log that cannot record, a
// client the daemon does not accept (unauthorized for the whole request;
// for one ref it is the daemon's own login failing, which the caller's
// CLI, with its own token, may not share).
func opxRefuses(code string, policy, whole bool) bool {
	switch code {
	case api.CodeSessionLocked, api.CodeAuditUnavailable:
		return true
	case api.CodeUnauthorized:
		return whole
	case api.CodeForbidden:
		return policy
	}
	return false
}

// vaultFail hands the call to the real CLI, or, when there is none, says
// what went wrong in the CLI's form.
func vaultFail(kind string, argv []string, c vaultCall, msg string) int {
	if _, err := self.LookPath(kind); err == nil {
		return execReal(kind, argv)
	}
	fmt.Fprintf(os.Stderr, "Error reading %s: %s\n", c.path, msg)
	return 2
}

// vaultSecret is a read's answer as the CLI decodes it (vault/api's
// Secret), for the members the shim serves.
type vaultSecret struct {
	RequestID     string          `json:"request_id"`
	LeaseID       string          `json:"lease_id"`
	LeaseDuration int             `json:"lease_duration"`
	Renewable     bool            `json:"renewable"`
	Data          map[string]any  `json:"data"`
	Warnings      []string        `json:"warnings"`
	Auth          json.RawMessage `json:"auth,omitempty"`
	WrapInfo      json.RawMessage `json:"wrap_info,omitempty"`
	MountType     string          `json:"mount_type,omitempty"`
}

// renderVault is the CLI's stdout for c and the server's answer body, with
// stdout a terminal (tty: the colour library's test) or not, and colour
// on or off; ok is false when the real CLI must answer (a field that is
// not there, an answer with auth or wrapping information, which the shim
// does not render).
func renderVault(c vaultCall, body []byte, tty, useColor bool) (out []byte, ok bool) {
	kv2 := bytes.HasPrefix(body, []byte("{"+api.KV2Marker))
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // as vault/api's ParseSecret
	var s vaultSecret
	if err := dec.Decode(&s); err != nil {
		return nil, false
	}
	if isSet(s.Auth) || isSet(s.WrapInfo) || s.RequestID == "" && s.Data == nil && s.Warnings == nil {
		return nil, false
	}
	s.Auth, s.WrapInfo = nil, nil
	var text []byte
	if c.field != "" {
		val := fieldOf(s, c, kv2)
		if val == nil {
			return nil, false // "Field not present", "No data found": the CLI's words
		}
		if c.format == "json" {
			b, err := json.MarshalIndent(val, "", "  ")
			if err != nil {
				return nil, false
			}
			text = b
		} else {
			text = fmt.Appendf(nil, "%v", val)
		}
		if tty { // PrintRaw: the UI's Output on a terminal, else the bare value
			text = uiOutput(text)
		}
	} else {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return nil, false
		}
		if tty {
			text = uiOutput(b)
		} else {
			text = append(b, '\n')
		}
	}
	if !(useColor && c.format == "table") {
		text = stripEscapes(text) // the CLI's writer when it does not colour
	}
	return text, true
}

func isSet(m json.RawMessage) bool {
	return len(m) > 0 && string(m) != "null"
}

// uiOutput is the CLI's UI Output on a terminal: the text in the reset
// attribute's escapes, then a newline.
func uiOutput(b []byte) []byte {
	out := make([]byte, 0, len(b)+9)
	out = append(out, "\x1b[0m"...)
	out = append(out, b...)
	return append(out, "\x1b[0m\n"...)
}

// fieldOf is the value -field names, as kv get and read pick it (vault's
// PrintRawField and RawField), or nil.
func fieldOf(s vaultSecret, c vaultCall, kv2 bool) any {
	if c.kv && kv2 {
		data, ok := s.Data["data"]
		if !ok || data == nil {
			return nil
		}
		m, _ := data.(map[string]any)
		if c.field == "data" {
			if _, ok := m["data"]; ok {
				return m["data"]
			}
			return rawField(s, "data")
		}
		if m == nil {
			return nil
		}
		return m[c.field]
	}
	return rawField(s, c.field)
}

// rawField is vault's RawField for an answer with neither auth nor wrapping
// information.
func rawField(s vaultSecret, field string) any {
	switch field {
	case "lease_duration", "refresh_interval":
		return s.LeaseDuration
	case "lease_id":
		return s.LeaseID
	case "request_id":
		return s.RequestID
	case "renewable":
		return s.Renewable
	case "data":
		if v, ok := s.Data["data"]; ok {
			return v
		}
		return s.Data
	}
	if v, ok := s.Data[field]; ok {
		return v
	}
	return nil
}

// stripEscapes removes escape sequences as the CLI's non-colouring writer
// does: ESC and the byte after it, or ESC [ up to a letter or '@'.
func stripEscapes(b []byte) []byte {
	if bytes.IndexByte(b, 0x1b) < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0x1b {
			out = append(out, b[i])
			continue
		}
		i++
		if i >= len(b) || b[i] != '[' {
			continue
		}
		for i++; i < len(b); i++ {
			if c := b[i]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '@' {
				break
			}
		}
	}
	clear(b)
	return out
}

// execReal becomes the real program name (op, vault, bao) with the same
// arguments, stdin and environment. With none on PATH but opx, it fails as
// a shell would: "command not found", status 127.
func execReal(name string, argv []string) int {
	path, err := self.LookPath(name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: command not found\n", name)
		if errors.Is(err, self.ErrOnlyOpx) {
			fmt.Fprintf(os.Stderr, "(only opx's shim is on PATH; opx serves %s and passes the rest to the real %s)\n", cli.ShimServes[name], name)
		}
		return 127
	}
	args := append([]string{name}, argv[1:]...)
	environ := append(os.Environ(), shimExecVar+"="+strconv.Itoa(os.Getpid()))
	code, err := cli.Exec(path, args, environ)
	if err == nil {
		return code // on Windows, where the program ran as a child
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	if errors.Is(err, fs.ErrPermission) {
		return 126
	}
	return 127
}
