package client

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/opxhq/opx/api"
)

// Expectation is what a command's environment asks of the daemon that
// answers it: the settings a daemon it started would have (from its
// environment, config.json and the daemon's defaults), and which of them
// the environment chose itself. A setting it never chose does not
// contradict one the daemon was given on its command line.
type Expectation struct {
	Backend       string // the backend a daemon started here would run
	BackendChosen bool   // set by OP_AUTHD_BACKEND or config.json, not the default
	TTL           time.Duration
	OPPath        string // "" for op from PATH
	OPPathChosen  bool
	Version       string
	// Server, if set, is the Vault or OpenBao server (by scheme) that a
	// daemon started here would read from, and whether config.json or the
	// environment names one.
	Server func(scheme string) (api.Server, bool)
}

// servesForReal reports whether backend reads scheme's refs from a real
// backend (not the fake one).
func servesForReal(backend, scheme string) bool {
	switch backend {
	case "multi":
		return true
	case "opcli":
		return scheme == api.SchemeOP
	case api.SchemeVault, api.SchemeBao:
		return scheme == backend
	}
	return false
}

// daemonSettings is the running daemon's api.SettingsHeader, read.
type daemonSettings struct {
	backend, opPath, version, service string
	opPathKnown                       bool // a requester allowed no ref is not told
	ttl                               time.Duration
	ttlKnown                          bool
	servers                           map[string]api.Server
}

func parseSettings(header string) (daemonSettings, bool) {
	v, err := url.ParseQuery(header)
	if header == "" || err != nil {
		return daemonSettings{}, false
	}
	d := daemonSettings{backend: v.Get("backend"), opPath: v.Get("op_path"), version: v.Get("version"), service: v.Get("service"),
		servers: map[string]api.Server{}}
	_, d.opPathKnown = v["op_path"]
	if t, err := time.ParseDuration(v.Get("ttl")); err == nil {
		d.ttl, d.ttlKnown = t, true
	}
	for _, s := range []string{api.SchemeVault, api.SchemeBao} {
		if a := v.Get(s + "_address"); a != "" {
			d.servers[s] = api.Server{Address: a, Namespace: v.Get(s + "_namespace")}
		}
	}
	return d, true
}

// diffs compares the running daemon's settings (its api.SettingsHeader)
// with what this environment asks, for a request of refs of schemes (none:
// a request that reads nothing). answer names the differences that change
// what the request gets from what this environment would get from a daemon
// of its own: a fake daemon for a caller that did not ask for fake (or the
// reverse), a backend that does not read a scheme for real that this
// environment's would, another op program or another Vault or OpenBao
// server than the ones this environment chose. notes names the others
// (TTL, version), which change nothing a caller reads: opx doctor shows
// them.
func (e *Expectation) diffs(header string, schemes []string) (answer, notes []string) {
	d, ok := parseSettings(header)
	if e == nil || !ok {
		return nil, nil
	}
	want := e.Backend
	switch {
	case d.backend == "fake" && want != "fake":
		answer = append(answer, fmt.Sprintf("backend fake, which serves made-up values (this command's settings give %s)", want))
	case want == "fake" && d.backend != "fake":
		answer = append(answer, fmt.Sprintf("backend %s, which serves real values (this command's settings give fake)", d.backend))
	case d.backend != "fake":
		for _, s := range schemes {
			if servesForReal(want, s) && !servesForReal(d.backend, s) {
				answer = append(answer, fmt.Sprintf("backend %s, which does not read %s:// refs (this command's settings give %s)", d.backend, s, want))
			}
		}
	}
	if slices.Contains(schemes, api.SchemeOP) && e.OPPathChosen && d.opPathKnown && d.opPath != e.OPPath && d.backend != "fake" {
		answer = append(answer, fmt.Sprintf("the op program %s (this command's settings give %s)", cmp.Or(d.opPath, "op from PATH"), cmp.Or(e.OPPath, "op from PATH")))
	}
	for _, s := range []string{api.SchemeVault, api.SchemeBao} {
		theirs, has := d.servers[s]
		if !slices.Contains(schemes, s) || !has || e.Server == nil {
			continue
		}
		mine, chose := e.Server(s)
		if !chose || api.SameServer(mine, theirs) {
			continue
		}
		answer = append(answer, fmt.Sprintf("%s:// refs read from %s (this command's settings give %s)", s, describeServer(theirs), describeServer(mine)))
	}
	if d.ttlKnown && e.TTL > 0 && d.ttl != e.TTL {
		notes = append(notes, fmt.Sprintf("TTL %s (this command's settings give %s)", d.ttl, e.TTL))
	}
	if want != d.backend && len(answer) == 0 && e.BackendChosen {
		notes = append(notes, fmt.Sprintf("backend %s (this command's settings give %s; it reads the same refs for real)", d.backend, want))
	}
	if e.Version != "" && d.version != e.Version {
		notes = append(notes, fmt.Sprintf("version %s (this is opx %s)", d.version, e.Version))
	}
	return answer, notes
}

func describeServer(s api.Server) string {
	if s.Namespace != "" {
		return s.Address + " (namespace " + s.Namespace + ")"
	}
	return s.Address
}

// schemesOf are the schemes of the refs a request reads, in order, once
// each.
func schemesOf(in any) []string {
	var refs []string
	switch r := in.(type) {
	case api.ReadRequest:
		refs = []string{r.Ref}
	case api.ReadsRequest:
		refs = r.Refs
	case api.ResolveRequest:
		for _, ref := range r.Env {
			refs = append(refs, ref)
		}
	}
	var out []string
	for _, ref := range refs {
		s, _, ok := strings.Cut(ref, "://")
		if ok && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}
