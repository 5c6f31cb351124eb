// Package printable escapes text that opx did not choose (a ref, a path,
// a file name) before a person sees it on a terminal or in a dialog.
package printable

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s as it can be shown to a person on a terminal: control
// characters (C0, DEL, C1), bidirectional overrides and invalid UTF-8 are
// escaped as \xNN or \uNNNN, so that a crafted file name or ref cannot move
// the cursor, change the title or rewrite the line a user is reading. In a
// string that has such a character, a backslash is escaped too, so that the
// output is unambiguous; a string without one prints as itself, backslashes
// and all (a Windows path).
func String(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !plain(r, size) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r == '\\':
			b.WriteString(`\\`)
		case !plain(r, size):
			q := strconv.QuoteRuneToASCII(r) // 'x', with the escape inside
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// plain reports whether r (of size bytes) prints as itself.
func plain(r rune, size int) bool {
	switch {
	case r == utf8.RuneError && size == 1:
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return false
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return false // bidirectional controls
	case unicode.Is(unicode.Cf, r) && r != 0x200d: // format characters (zero-width joiner kept)
		return false
	}
	return true
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}
