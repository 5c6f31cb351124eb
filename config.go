package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/daemon"
)

// configResolver returns a kong resolver that takes flag values from
// config.json: the key is the flag's name, with - or _ ("session-timeout",
// "session_timeout"). A flag given on the command line or through its
// environment variable beats the file. Hidden flags are not keys: they are
// set by whoever starts the daemon (--service, by a service definition). A
// missing file is no error; a file that does not parse is, naming the file.
func configResolver(path string) (kong.Resolver, error) {
	values, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	return resolverOf(path, values), nil
}

// resolverOf is configResolver for config.json's values already read.
func resolverOf(path string, values map[string]any) kong.Resolver {
	return kong.ResolverFunc(func(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
		if flag.Hidden {
			return nil, nil
		}
		for _, env := range flag.Envs {
			if _, ok := os.LookupEnv(env); ok {
				return nil, nil // the environment beats the file
			}
		}
		for _, key := range []string{flag.Name, strings.ReplaceAll(flag.Name, "-", "_")} {
			if v, ok := values[key]; ok {
				if _, isObject := v.(map[string]any); isObject {
					return nil, fmt.Errorf("config %s: %q must be a value, not an object", path, key)
				}
				return v, nil
			}
		}
		return nil, nil
	})
}

// readConfig reads config.json's top-level object; a missing file is an
// empty one.
func readConfig(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	var values map[string]any
	if err := json.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("config %s is not a JSON object: %w", path, err)
	}
	return values, nil
}

// otherConfigKeys are config.json's keys that are not flags: the Vault and
// OpenBao settings, and the default 1Password account.
var otherConfigKeys = [...]string{"vault", "bao", "account"}

// unknownConfigKeys names the keys of config.json that set nothing, each
// with the closest key that does, when one is close: a typo ("backnd")
// would otherwise be ignored without a word. flags are the flag names of
// the daemon's grammar.
func unknownConfigKeys(values map[string]any, flags []string) []string {
	known := map[string]bool{}
	var all []string
	for _, name := range append(flags, otherConfigKeys[:]...) {
		for _, k := range []string{name, strings.ReplaceAll(name, "-", "_")} {
			if !known[k] {
				known[k] = true
				all = append(all, k)
			}
		}
	}
	var out []string
	for key := range values {
		if known[key] {
			continue
		}
		msg := fmt.Sprintf("%q sets nothing", key)
		best, dist := "", 3
		for _, k := range all {
			if d := editDistance(key, k); d < dist {
				best, dist = k, d
			}
		}
		if best != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", best)
		}
		out = append(out, msg)
	}
	sort.Strings(out)
	return out
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// expectedSettings is what this command's environment asks of the daemon:
// the settings a daemon it started would have, from the environment,
// config.json and the daemon's defaults, and which of them the environment
// chose (a variable or a config.json key), for the client to compare with
// the running daemon's api.SettingsHeader.
func expectedSettings(values map[string]any, configFile string) *client.Expectation {
	pick := func(env string, keys ...string) (any, bool) {
		if v, ok := os.LookupEnv(env); ok {
			return v, true
		}
		for _, k := range keys {
			if v, ok := values[k]; ok {
				return v, true
			}
		}
		return nil, false
	}
	e := &client.Expectation{Backend: daemon.DefaultBackend, TTL: daemon.DefaultTTL, Version: version}
	if v, ok := pick("OP_AUTHD_BACKEND", "backend"); ok {
		e.Backend, e.BackendChosen = fmt.Sprint(v), true
	}
	if v, ok := pick("OP_AUTHD_TTL", "ttl"); ok {
		switch t := v.(type) {
		case float64:
			e.TTL = time.Duration(t * float64(time.Second))
		case string:
			if d, err := daemon.ParseSeconds(t); err == nil {
				e.TTL = d
			}
		}
	}
	if v, ok := pick("OPX_OP_PATH", "op-path", "op_path"); ok {
		e.OPPath, e.OPPathChosen = fmt.Sprint(v), true
	}
	// Read only when a request reads vault:// or bao:// refs: the cached
	// op:// read keeps its start-up cost.
	e.Server = func(kind string) (api.Server, bool) {
		c, err := api.LoadVaultConfig(kind, configFile)
		if err != nil || c.Address == "" {
			return api.Server{}, false
		}
		return api.Server{Address: c.Address, Namespace: c.Namespace}, true
	}
	return e
}
