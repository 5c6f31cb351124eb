package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/template"
)

// maxTemplate bounds a template opx inject reads.
const maxTemplate = 16 << 20

// InjectCmd is `opx inject [-i TEMPLATE] [-o FILE] [--file-mode MODE] [-f]`.
type InjectCmd struct {
	In  string `short:"i" name:"in-file" type:"path" help:"The template (default: stdin)." placeholder:"FILE"`
	Out string `short:"o" name:"out-file" type:"path" help:"Write the result to FILE, atomically (default: stdout)." placeholder:"FILE"`
	FileOutput
	Freshness

	// AsOP reads the template as op inject does: op:// refs only.
	AsOP bool `kong:"-"`
}

// Run renders a template written in op inject's syntax: every reference is
// resolved in one round trip (of up to api.MaxRefs each), and the result
// is written only when all of them resolved.
func (c *InjectCmd) Run(g *Globals, env *Env) error {
	q, err := c.query(g)
	if err != nil {
		return err
	}
	if c.Out != "" {
		if err := c.check(env, c.Out); err != nil {
			return err
		}
	}
	var in io.Reader = env.Stdin
	if c.In != "" {
		f, err := os.Open(c.In)
		if err != nil {
			return &client.Error{Message: fmt.Sprintf("read the template: %v", err), Err: err}
		}
		defer f.Close()
		in = f
	}
	tmpl, err := io.ReadAll(io.LimitReader(in, maxTemplate+1))
	if err != nil {
		return &client.Error{Message: fmt.Sprintf("read the template: %v", err), Err: err}
	}
	if len(tmpl) > maxTemplate {
		return &client.Error{Message: fmt.Sprintf("the template is over %d MiB", maxTemplate>>20)}
	}
	parts := template.Parse(tmpl, c.AsOP)
	written, lines := template.Refs(parts)

	// Variables first: every failure is reported, with its lines.
	expanded := make(map[string]string, len(written))
	var refs []string
	failed := false
	for _, ref := range written {
		r, err := template.ExpandRef(ref, template.OSLookup)
		if err != nil {
			failed = true
			fmt.Fprintf(env.Stderr, "opx: error: %s: %s\n", template.LineList(lines[ref]), Printable(err.Error()))
			continue
		}
		expanded[ref] = r
		refs = append(refs, r)
	}
	if failed {
		return &ExitError{Code: 1}
	}

	res, err := env.reads(context.Background(), q, refs)
	if err != nil {
		return err
	}
	defer forget(res)
	refOf := func(ref string) string { return expanded[ref] }
	label := func(ref string) string { return template.LineList(lines[ref]) + ": " + Printable(expanded[ref]) }
	if failures(env.Stderr, written, res, refOf, label) {
		return &ExitError{Code: 1}
	}
	values := make(map[string][]byte, len(written))
	for _, ref := range written {
		values[ref] = res[expanded[ref]].Value
	}

	out := make([]byte, 0, len(tmpl))
	for _, p := range parts {
		if p.Ref != "" {
			out = append(out, values[p.Ref]...)
		} else {
			out = append(out, p.Lit...)
		}
	}
	defer clear(out)
	if c.Out != "" {
		return c.WriteFile(c.Out, out)
	}
	_, err = env.Stdout.Write(out)
	return err
}
