package template

import (
	"fmt"
	"os"
	"strings"
)

// Variables in refs, as 1Password's template syntax defines them and as
// op run and op inject expand them: $NAME, ${NAME} (spaces around NAME are
// dropped) and ${NAME:-default}. A name starts with a letter or underscore
// and holds letters, digits and underscores; it is matched exactly, or else
// without regard to case when exactly one variable matches so. The client
// expands them before it sends anything; the daemon never does.

// LookupFunc finds an environment variable.
type LookupFunc func(name string) (string, bool)

// OSLookup looks names up in opx's own environment.
func OSLookup(name string) (string, bool) { return LookupIn(os.Environ())(name) }

// LookupIn looks names up in an environment of NAME=value strings.
func LookupIn(environ []string) LookupFunc {
	return func(name string) (string, bool) {
		var folded []string
		for _, kv := range environ {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			if k == name {
				return v, true
			}
			if strings.EqualFold(k, name) {
				folded = append(folded, v)
			}
		}
		if len(folded) == 1 {
			return folded[0], true
		}
		return "", false
	}
}

// ExpandRef replaces the variables in ref. A variable that is not set, or
// set to nothing, is an error naming it, unless it has a default that is
// not empty: a ref with an empty segment would read the wrong secret, or
// none. (A value may hold '/': a variable can name a path.)
func ExpandRef(ref string, lookup LookupFunc) (string, error) {
	i := strings.IndexByte(ref, '$')
	if i < 0 {
		return ref, nil
	}
	var b strings.Builder
	b.WriteString(ref[:i])
	for i < len(ref) {
		c := ref[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		name, def, hasDef, n, err := parseVariable(ref[i:])
		if err != nil {
			return "", fmt.Errorf("%s: %w", ref, err)
		}
		if n == 0 { // a $ that starts no variable
			b.WriteByte('$')
			i++
			continue
		}
		v, ok := lookup(name)
		if !ok || v == "" {
			if !hasDef {
				what := "is not set"
				if ok {
					what = "is empty"
				}
				return "", fmt.Errorf("%s: the variable %s %s (set it, or give a default: ${%s:-value})", ref, name, what, name)
			}
			if v = def; v == "" {
				return "", fmt.Errorf("%s: the variable %s is not set and its default is empty", ref, name)
			}
		}
		b.WriteString(v)
		i += n
	}
	return b.String(), nil
}

// parseVariable reads the variable at the start of s (which starts with
// '$'). It returns the name, the default, the length read, or n == 0 when
// s starts no variable.
func parseVariable(s string) (name, def string, hasDef bool, n int, err error) {
	if len(s) > 1 && s[1] == '{' {
		end := -1
		for j := 2; j < len(s); j++ {
			if s[j] == '\\' {
				j++ // an escaped character, a brace too, does not close
				continue
			}
			if s[j] == '}' {
				end = j
				break
			}
		}
		if end < 0 {
			return "", "", false, 0, fmt.Errorf("%q has no closing brace", s)
		}
		body := s[2:end]
		if k := strings.Index(body, ":-"); k >= 0 {
			body, def, hasDef = body[:k], body[k+2:], true
		}
		name = strings.TrimSpace(body)
		if !varName(name) {
			return "", "", false, 0, fmt.Errorf("%q is not a variable name (letters, digits and _, not starting with a digit)", name)
		}
		return name, def, hasDef, end + 1, nil
	}
	j := 1
	for j < len(s) && (isLetter(s[j]) || s[j] == '_' || j > 1 && isDigit(s[j])) {
		j++
	}
	if j == 1 {
		return "", "", false, 0, nil
	}
	return s[1:j], "", false, j, nil
}

func varName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLetter(s[i]) && !isDigit(s[i]) && s[i] != '_' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
