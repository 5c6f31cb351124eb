package client

import (
	"bytes"
	"fmt"
	"strings"
)

// EnvVar is one NAME=VALUE assignment read from an env file, with the line
// it came from.
type EnvVar struct {
	Name, Value string
	Line        int
}

// ParseEnvFile parses dotenv text: NAME=VALUE lines, blank lines and
// #-comments, an optional "export " before NAME, unquoted values (trimmed; a
// " #" starts a comment), 'single-quoted' values (literal) and
// "double-quoted" values (escapes \n \r \t \\ \" \$, may span lines). $VAR is
// not expanded. name is used in errors only, which never quote a value.
func ParseEnvFile(name string, data []byte) ([]EnvVar, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	lines := strings.Split(text, "\n")
	var out []EnvVar
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export "); ok {
			line = strings.TrimSpace(rest)
		}
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok {
			return nil, fmt.Errorf("%s:%d: missing \"=\" after NAME", name, lineNo)
		}
		if !validName(key) {
			return nil, fmt.Errorf("%s:%d: invalid variable name %q", name, lineNo, truncate(key))
		}
		val = strings.TrimLeft(val, " \t")
		switch {
		case strings.HasPrefix(val, "'"):
			end := strings.IndexByte(val[1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: unterminated single-quoted value for %s", name, lineNo, key)
			}
			if err := checkAfterQuote(val[end+2:]); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", name, lineNo, err)
			}
			out = append(out, EnvVar{Name: key, Value: val[1 : end+1], Line: lineNo})
		case strings.HasPrefix(val, `"`):
			v, rest, next, err := doubleQuoted(val[1:], lines, i)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v for %s", name, lineNo, err, key)
			}
			if err := checkAfterQuote(rest); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", name, next+1, err)
			}
			out = append(out, EnvVar{Name: key, Value: v, Line: lineNo})
			i = next
		default:
			if j := strings.Index(val, " #"); j >= 0 {
				val = val[:j]
			} else if j := strings.Index(val, "\t#"); j >= 0 {
				val = val[:j]
			}
			out = append(out, EnvVar{Name: key, Value: strings.TrimSpace(val), Line: lineNo})
		}
	}
	return out, nil
}

// doubleQuoted reads a double-quoted value that starts in s (after the
// opening quote) on line i and may continue on later lines. It returns the
// value, the text after the closing quote and the index of the line it ended on.
func doubleQuoted(s string, lines []string, i int) (string, string, int, error) {
	var b strings.Builder
	for {
		for j := 0; j < len(s); j++ {
			c := s[j]
			switch {
			case c == '"':
				return b.String(), s[j+1:], i, nil
			case c == '\\' && j+1 < len(s):
				j++
				switch s[j] {
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				case 't':
					b.WriteByte('\t')
				case '\\', '"', '$':
					b.WriteByte(s[j])
				default:
					b.WriteByte('\\')
					b.WriteByte(s[j])
				}
			default:
				b.WriteByte(c)
			}
		}
		i++
		if i >= len(lines) {
			return "", "", i, fmt.Errorf("unterminated double-quoted value")
		}
		b.WriteByte('\n')
		s = strings.TrimSuffix(lines[i], "\r")
	}
}

func checkAfterQuote(rest string) error {
	rest = strings.TrimSpace(rest)
	if rest != "" && !strings.HasPrefix(rest, "#") {
		return fmt.Errorf("unexpected text after closing quote")
	}
	return nil
}
