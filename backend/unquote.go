package backend

import (
	"bytes"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// unquoteJSON decodes a JSON string literal (quotes included) into a new
// byte slice, never a Go string, so that a secret read from a server's
// answer can be wiped. Escapes are decoded as encoding/json decodes them
// (a lone surrogate becomes U+FFFD); other bytes are kept as they are.
// White space around the literal is allowed, as in JSON.
func unquoteJSON(q []byte) ([]byte, error) {
	q = bytes.Trim(q, " \t\r\n")
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return nil, errors.New("not a JSON string")
	}
	s := q[1 : len(q)-1]
	out := make([]byte, 0, len(s)) // decoding never makes a string longer
	for i := 0; i < len(s); {
		c := s[i]
		if c == '"' || c < 0x20 {
			return nil, errors.New("malformed JSON string")
		}
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return nil, errors.New("malformed JSON string")
		}
		switch s[i+1] {
		case '"', '\\', '/':
			out = append(out, s[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s[i+2:])
			if !ok {
				return nil, errors.New("malformed \\u escape in a JSON string")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2, ok := hex4(s[i+2:]); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return nil, errors.New("malformed escape in a JSON string")
		}
		i += 2
	}
	return out, nil
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
