package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// ResolveCmd is `opx resolve NAME=REF...`.
type ResolveCmd struct {
	JSON   bool     `help:"Print a JSON object of NAME to value." xor:"format"`
	Export bool     `help:"Print shell-quoted 'export NAME=value' lines, for eval." xor:"format"`
	Pairs  []string `arg:"" name:"NAME=REF" help:"Variables to resolve."`
}

// Run resolves every pair in one round trip and prints NAME=value lines
// (sorted by name), or JSON, or export lines.
func (c *ResolveCmd) Run(g *Globals, env *Env) error {
	req := make(map[string]string, len(c.Pairs))
	for _, kv := range c.Pairs {
		name, ref, ok := strings.Cut(kv, "=")
		if !ok || !validName(name) {
			return &Error{Message: fmt.Sprintf("%q: want NAME=REF", truncate(kv))}
		}
		ref, err := expandRef(ref, osLookup)
		if err != nil {
			return &Error{Message: fmt.Sprintf("%s: %v", name, err)}
		}
		req[name] = ref
	}
	ctx := context.Background()
	var vals map[string][]byte
	err := env.retryUnlocked(ctx, func() error {
		var err error
		vals, err = env.Client.Resolve(ctx, g.Account, req)
		return err
	})
	if err != nil {
		return err
	}
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	switch {
	case c.JSON:
		m := make(map[string]string, len(vals))
		for name, v := range vals {
			m[name] = string(v)
		}
		enc, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		b.Write(enc)
		b.WriteByte('\n')
	case c.Export:
		for _, name := range names {
			fmt.Fprintf(&b, "export %s=%s\n", name, shellQuote(string(vals[name])))
		}
	default:
		for _, name := range names {
			fmt.Fprintf(&b, "%s=%s\n", name, vals[name])
		}
	}
	_, err = fmt.Fprint(env.Stdout, b.String())
	return err
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
