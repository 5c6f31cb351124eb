// Package envfile reads the env files of opx run --env-file (and op run's):
// NAME=VALUE lines, where a value is usually a secret reference.
package envfile

import (
	"fmt"
	"strings"
)

// Var is one NAME=VALUE assignment read from an env file, with the line
// it came from.
type Var struct {
	Name, Value string
	Line        int
}

// Error is a syntax error in an env file. Its message has the form
// "FILE:LINE: reason". Reason may name the variable but never holds any part
// of a value, since values are often secrets or secret references.
type Error struct {
	File   string
	Line   int
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// Parse parses dotenv text, the format of `op run --env-file` and
// docker's env files, into its assignments in file order. name is used in
// error messages only.
//
// Each non-blank line that does not start with "#" (after leading spaces) is
// an assignment, NAME=VALUE, optionally preceded by "export ". NAME must
// match [A-Za-z_][A-Za-z0-9_]*; spaces around "=" are ignored. VALUE is one
// of:
//
//   - unquoted: the rest of the line, trimmed of surrounding spaces; a "#"
//     that follows a space or tab starts a comment, any other "#" is kept
//     (A=a#b is "a#b"). It may be empty (A=).
//   - 'single-quoted': taken literally with no escapes; it cannot contain a
//     single quote and must close on its own line.
//   - "double-quoted": the escapes \n \r \t \\ \" and \$ are decoded and any
//     other backslash is kept as it is (\x stays \x); the value may span
//     several lines, whose line breaks it keeps, up to the first unescaped
//     closing quote.
//
// After a closing quote only spaces and a "#" comment may follow. Variables
// are not interpolated: $VAR and ${VAR} are kept literally in every form.
// CRLF line endings and a leading UTF-8 byte order mark are accepted. A NUL
// byte is an error, as no environment variable can hold one.
//
// A name that appears twice is returned twice, in order, so the caller can
// let the later one win. Line is the 1-based line where an assignment
// starts. Errors are *Error and never contain any part of a value.
func Parse(name string, data []byte) ([]Var, error) {
	text := strings.TrimPrefix(string(data), "\uFEFF")
	p := &envParser{file: name, lines: strings.Split(text, "\n")}
	for i, l := range p.lines {
		p.lines[i] = strings.TrimSuffix(l, "\r")
		if strings.IndexByte(l, 0) >= 0 {
			return nil, p.errorf(i+1, "invalid NUL byte")
		}
	}
	var vars []Var
	for p.next < len(p.lines) {
		v, ok, err := p.assignment()
		if err != nil {
			return nil, err
		}
		if ok {
			vars = append(vars, v)
		}
	}
	return vars, nil
}

// envParser walks the lines of one env file.
type envParser struct {
	file  string
	lines []string // without line terminators
	next  int      // index of the next line to read
}

func (p *envParser) errorf(line int, format string, args ...any) error {
	return &Error{File: p.file, Line: line, Reason: fmt.Sprintf(format, args...)}
}

// assignment reads the statement starting at line p.next, which may take
// several lines. ok is false for a blank or comment line.
func (p *envParser) assignment() (v Var, ok bool, err error) {
	lineNo := p.next + 1
	line := strings.TrimLeft(p.lines[p.next], " \t")
	p.next++
	if line == "" || line[0] == '#' {
		return Var{}, false, nil
	}
	if rest, found := strings.CutPrefix(line, "export"); found && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		// "export = x" assigns a variable named export.
		if rest = strings.TrimLeft(rest, " \t"); rest != "" && rest[0] != '=' {
			line = rest
		}
	}
	eq := strings.IndexByte(line, '=')
	if eq < 0 {
		// The whole line might be a value (a pasted secret): don't show it.
		return Var{}, false, p.errorf(lineNo, `missing "=" after NAME`)
	}
	name := strings.TrimRight(line[:eq], " \t")
	if name == "" {
		return Var{}, false, p.errorf(lineNo, `missing NAME before "="`)
	}
	if !isEnvName(name) {
		if safeToShow(name) {
			return Var{}, false, p.errorf(lineNo, "invalid variable name %q", name)
		}
		return Var{}, false, p.errorf(lineNo, "invalid variable name")
	}
	raw := line[eq+1:]
	rest := strings.TrimLeft(raw, " \t")
	var value string
	switch {
	case strings.HasPrefix(rest, "'"):
		end := strings.IndexByte(rest[1:], '\'')
		if end < 0 {
			return Var{}, false, p.errorf(lineNo, "unterminated single-quoted value")
		}
		value = rest[1 : 1+end]
		if !onlyComment(rest[2+end:]) {
			return Var{}, false, p.errorf(lineNo, "unexpected text after closing quote")
		}
	case strings.HasPrefix(rest, `"`):
		var after string
		var endLine int
		value, after, endLine, ok = p.doubleQuoted(rest[1:])
		if !ok {
			return Var{}, false, p.errorf(lineNo, "unterminated double-quoted value")
		}
		if !onlyComment(after) {
			return Var{}, false, p.errorf(endLine, "unexpected text after closing quote")
		}
	default:
		value = raw
		for i := 1; i < len(raw); i++ {
			if raw[i] == '#' && (raw[i-1] == ' ' || raw[i-1] == '\t') {
				value = raw[:i]
				break
			}
		}
		value = strings.Trim(value, " \t")
	}
	return Var{Name: name, Value: value, Line: lineNo}, true, nil
}

// doubleQuoted decodes a double-quoted value whose text starts with s, the
// rest of the current line after the opening quote, and may go on over the
// following lines. It returns the value, the text after the closing quote
// and the 1-based line of that quote; ok is false if the quote never closes.
func (p *envParser) doubleQuoted(s string) (value, after string, endLine int, ok bool) {
	var b strings.Builder
	for {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '"' {
				return b.String(), s[i+1:], p.next, true
			}
			if c != '\\' || i+1 == len(s) {
				// A backslash at the end of a line is kept, like any other
				// unknown escape, and the line break follows it.
				b.WriteByte(c)
				continue
			}
			i++
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '\\', '"', '$':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		}
		if p.next >= len(p.lines) {
			return "", "", 0, false
		}
		b.WriteByte('\n')
		s = p.lines[p.next]
		p.next++
	}
}

// onlyComment reports whether s, the text after a closing quote, holds
// nothing but spaces and an optional "#" comment.
func onlyComment(s string) bool {
	s = strings.TrimLeft(s, " \t")
	return s == "" || s[0] == '#'
}

// isEnvName reports whether s matches [A-Za-z_][A-Za-z0-9_]*.
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// safeToShow reports whether an invalid name may be quoted in an error. The
// text before "=" is normally a name, but on a malformed line it can be part
// of a secret (a base64 blob ends in "="), so only short, name-like text is
// shown.
func safeToShow(s string) bool {
	if len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c == '.' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
