package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/alecthomas/kong"
)

// configResolver returns a kong resolver that takes flag values from
// config.json: the key is the flag's name, with - or _ ("session-timeout",
// "session_timeout"). A flag given on the command line or through its
// environment variable beats the file. A missing file is no error; a file
// that does not parse is, naming the file.
func configResolver(path string) (kong.Resolver, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return kong.ResolverFunc(func(*kong.Context, *kong.Path, *kong.Flag) (any, error) { return nil, nil }), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	var values map[string]any
	if err := json.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("config %s is not a JSON object: %w", path, err)
	}
	return kong.ResolverFunc(func(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
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
	}), nil
}
