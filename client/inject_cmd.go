package client

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"

	"github.com/opxhq/opx/api"
)

// maxTemplate bounds a template opx inject reads.
const maxTemplate = 16 << 20

// InjectCmd is `opx inject [-i TEMPLATE] [-o FILE] [--file-mode MODE] [-f]`.
type InjectCmd struct {
	In  string `short:"i" name:"in-file" type:"path" help:"The template (default: stdin)." placeholder:"FILE"`
	Out string `short:"o" name:"out-file" type:"path" help:"Write the result to FILE, atomically (default: stdout)." placeholder:"FILE"`
	FileOutput
	Freshness

	// asOP reads the template as op inject does: op:// refs only.
	asOP bool
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
			return &Error{Message: fmt.Sprintf("read the template: %v", err), Err: err}
		}
		defer f.Close()
		in = f
	}
	tmpl, err := io.ReadAll(io.LimitReader(in, maxTemplate+1))
	if err != nil {
		return &Error{Message: fmt.Sprintf("read the template: %v", err), Err: err}
	}
	if len(tmpl) > maxTemplate {
		return &Error{Message: fmt.Sprintf("the template is over %d MiB", maxTemplate>>20)}
	}
	parts := parseTemplateFor(tmpl, c.asOP)
	written, lines := templateRefs(parts)

	// Variables first: every failure is reported, with its lines.
	expanded := make(map[string]string, len(written))
	var refs []string
	failed := false
	for _, ref := range written {
		r, err := expandRef(ref, osLookup)
		if err != nil {
			failed = true
			fmt.Fprintf(env.Stderr, "opx: error: %s: %s\n", lineList(lines[ref]), Printable(err.Error()))
			continue
		}
		expanded[ref] = r
		refs = append(refs, r)
	}
	if failed {
		return &ExitError{Code: 1}
	}
	refs = dedupe(refs)

	ctx := context.Background()
	res := &api.ReadsResponse{Results: map[string]*api.ReadResult{}, Errors: map[string]*api.Error{}}
	for start := 0; start < len(refs); start += api.MaxRefs {
		chunk := refs[start:min(start+api.MaxRefs, len(refs))]
		var got *api.ReadsResponse
		done := env.progress(waitingFor(chunk))
		err := env.retryUnlocked(ctx, func() error {
			var err error
			got, err = env.Client.Read(ctx, q, chunk)
			return err
		})
		done()
		if err != nil {
			return err
		}
		maps.Copy(res.Results, got.Results)
		maps.Copy(res.Errors, got.Errors)
	}
	values := make(map[string][]byte, len(refs))
	defer func() {
		for _, v := range values {
			clear(v)
		}
	}()
	var bad []string
	for _, ref := range written {
		r := expanded[ref]
		if e, ok := res.Errors[r]; ok {
			bad = append(bad, fmt.Sprintf("opx: error: %s: %s: %s (%s)", lineList(lines[ref]), Printable(r), Printable(trimRefPrefix(e.Message, r)), e.Code))
			continue
		}
		rr, ok := res.Results[r]
		if !ok {
			bad = append(bad, fmt.Sprintf("opx: error: %s: %s: no answer from the daemon", lineList(lines[ref]), Printable(r)))
			continue
		}
		v, err := api.Decode(rr.Value, rr.Encoding)
		if err != nil {
			return fmt.Errorf("%s: malformed value from the daemon", Printable(r))
		}
		values[ref] = v
	}
	if len(bad) > 0 {
		for _, line := range bad {
			fmt.Fprintln(env.Stderr, line)
		}
		if hint := hintFor(res.Errors); hint != "" {
			fmt.Fprintf(env.Stderr, "opx: hint: %s\n", hint)
		}
		return &ExitError{Code: 1}
	}

	out := make([]byte, 0, len(tmpl))
	for _, p := range parts {
		if p.ref != "" {
			out = append(out, values[p.ref]...)
		} else {
			out = append(out, p.lit...)
		}
	}
	defer clear(out)
	if c.Out != "" {
		return c.write(c.Out, out)
	}
	_, err = env.Stdout.Write(out)
	return err
}
