package cli

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/template"
)

// ReadCmd is `opx read REF...`.
type ReadCmd struct {
	NoNewline bool     `short:"n" help:"Do not print a newline after the last value."`
	JSON      bool     `help:"Print a JSON object of each REF to its value." xor:"out"`
	Out       string   `short:"o" name:"out-file" type:"path" help:"Write the value of the one REF to FILE, atomically, as it is (no newline)." placeholder:"FILE" xor:"out"`
	Refs      []string `arg:"" name:"ref" help:"Secret references (op://, vault://, bao://). Put -- before a ref that starts with '-'."`
	FileOutput
	Freshness
}

// Run reads every ref in one round trip and prints the values in argument
// order, one per line. On any failure it prints nothing on stdout, names each
// failed ref on stderr and exits 1.
func (c *ReadCmd) Run(g *Globals, env *Env) error {
	ctx := context.Background()
	q, err := c.query(g)
	if err != nil {
		return err
	}
	if c.Out != "" {
		if len(c.Refs) != 1 {
			return &client.Error{Message: fmt.Sprintf("--out-file writes one value; %d refs given", len(c.Refs))}
		}
		if err := c.check(env, c.Out); err != nil {
			return err
		}
	}
	given := append([]string(nil), c.Refs...)
	for i, ref := range c.Refs {
		expanded, err := template.ExpandRef(ref, template.OSLookup)
		if err != nil {
			return &client.Error{Message: err.Error()}
		}
		c.Refs[i] = expanded
	}
	res, err := env.reads(ctx, q, c.Refs)
	if err != nil {
		return err
	}
	defer forget(res)
	unique := dedupe(c.Refs)
	if failures(env.Stderr, unique, res, func(ref string) string { return ref }, Printable) {
		return &ExitError{Code: 1}
	}
	for _, ref := range unique {
		if r := res[ref]; r.Stale {
			age := time.Since(r.ResolvedAt).Round(time.Second)
			fmt.Fprintf(env.Stderr, "opx: warning: %s: the backend failed; this is the value fetched %s ago, expired (stale)\n", Printable(ref), age)
		}
	}
	values := make([][]byte, len(c.Refs))
	for i, ref := range c.Refs {
		values[i] = res[ref].Value
	}
	switch {
	case c.Out != "":
		return c.WriteFile(c.Out, values[0])
	case c.JSON:
		return c.printJSON(env, given, values)
	}
	out := make([]byte, 0, 64*len(c.Refs))
	defer clear(out)
	for i, v := range values {
		out = append(out, v...)
		if i < len(values)-1 || !c.NoNewline {
			out = append(out, '\n')
		}
	}
	_, err = env.Stdout.Write(out)
	return err
}

// printJSON prints {"REF": "value", ...} for the refs as given (before
// variables were expanded), in the order given. A value that is not UTF-8
// has no JSON string form; it is refused rather than mangled.
func (c *ReadCmd) printJSON(env *Env, refs []string, values [][]byte) error {
	var bad []string
	for i, v := range values {
		if !utf8.Valid(v) {
			bad = append(bad, refs[i])
		}
	}
	if len(bad) > 0 {
		return &client.Error{Message: fmt.Sprintf("not text (UTF-8), so not in JSON: %s", Printable(strings.Join(bad, ", "))),
			Hint: "read such a value into a file as it is: opx read -o FILE REF"}
	}
	out := api.NewBuf(256)
	defer out.Wipe()
	out.WriteByte('{')
	seen := map[string]bool{}
	first := true
	for i, ref := range refs {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		if !first {
			out.WriteByte(',')
		}
		first = false
		out.WriteString("\n  ")
		out.JSONString([]byte(ref))
		out.WriteString(": ")
		out.JSONString(values[i])
	}
	if !first {
		out.WriteByte('\n')
	}
	out.WriteString("}\n")
	_, err := env.Stdout.Write(out.Bytes())
	return err
}

// TrimRefPrefix drops a leading "REF: " the daemon put in the message, since
// the client prints the ref itself.
func TrimRefPrefix(msg, ref string) string {
	if len(msg) > len(ref)+2 && msg[:len(ref)] == ref && msg[len(ref):len(ref)+2] == ": " {
		return msg[len(ref)+2:]
	}
	return msg
}

func dedupe(refs []string) []string {
	seen := make(map[string]bool, len(refs))
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
