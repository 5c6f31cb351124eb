package client

import (
	"context"
	"fmt"
	"maps"

	"github.com/opxhq/opx/api"
)

// ReadCmd is `opx read REF...`.
type ReadCmd struct {
	NoNewline bool     `short:"n" help:"Do not print a newline after the last value."`
	Refs      []string `arg:"" name:"ref" help:"Secret references (op://, vault://, bao://). Put -- before a ref that starts with '-'."`
}

// Run reads every ref in one round trip and prints the values in argument
// order, one per line. On any failure it prints nothing on stdout, names each
// failed ref on stderr and exits 1.
func (c *ReadCmd) Run(g *Globals, env *Env) error {
	ctx := context.Background()
	for i, ref := range c.Refs {
		expanded, err := expandRef(ref, osLookup)
		if err != nil {
			return &Error{Message: err.Error()}
		}
		c.Refs[i] = expanded
	}
	unique := dedupe(c.Refs)
	res := &api.ReadsResponse{Results: map[string]*api.ReadResult{}, Errors: map[string]*api.Error{}}
	// One round trip per MaxRefs refs: the daemon takes no more in one.
	for start := 0; start < len(unique); start += api.MaxRefs {
		chunk := unique[start:min(start+api.MaxRefs, len(unique))]
		var part *api.ReadsResponse
		err := env.retryUnlocked(ctx, func() error {
			var err error
			part, err = env.Client.Read(ctx, g.Account, chunk)
			return err
		})
		if err != nil {
			return err
		}
		maps.Copy(res.Results, part.Results)
		maps.Copy(res.Errors, part.Errors)
	}
	failed := false
	for _, ref := range unique {
		if e, ok := res.Errors[ref]; ok {
			failed = true
			fmt.Fprintf(env.Stderr, "opx: error: %s: %s (%s)\n", Printable(ref), Printable(trimRefPrefix(e.Message, ref)), Printable(e.Code))
			continue
		}
		if _, ok := res.Results[ref]; !ok {
			failed = true
			fmt.Fprintf(env.Stderr, "opx: error: %s: no answer from the daemon\n", Printable(ref))
		}
	}
	if failed {
		if hint := hintFor(res.Errors); hint != "" {
			fmt.Fprintf(env.Stderr, "opx: hint: %s\n", hint)
		}
		return &ExitError{Code: 1}
	}
	out := make([]byte, 0, 64*len(c.Refs))
	var err error
	for i, ref := range c.Refs {
		r := res.Results[ref]
		v, err := api.Decode(r.Value, r.Encoding)
		if err != nil {
			return fmt.Errorf("%s: malformed value from the daemon", Printable(ref))
		}
		out = append(out, v...)
		if i < len(c.Refs)-1 || !c.NoNewline {
			out = append(out, '\n')
		}
	}
	_, err = env.Stdout.Write(out)
	clear(out)
	return err
}

// trimRefPrefix drops a leading "REF: " the daemon put in the message, since
// the client prints the ref itself.
func trimRefPrefix(msg, ref string) string {
	if len(msg) > len(ref)+2 && msg[:len(ref)] == ref && msg[len(ref):len(ref)+2] == ": " {
		return msg[len(ref)+2:]
	}
	return msg
}

// hintFor returns one hint for a set of per-ref errors.
func hintFor(errs map[string]*api.Error) string {
	for _, e := range errs {
		switch e.Code {
		case api.CodeSessionLocked:
			return "run: opx unlock"
		case api.CodeUnauthorized:
			return signInHint
		case api.CodeBackendTimeout:
			return "the backend is slow or hanging; try again, or raise the daemon's --backend-timeout"
		}
	}
	return ""
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
