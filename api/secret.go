package api

import (
	"encoding/json"
	"unicode/utf8"
)

// Secret is a secret value on the wire. It travels as a JSON string but is
// held as bytes, so that the daemon can zero every copy it made once the
// answer is written; Go strings cannot be wiped.
type Secret []byte

// MarshalJSON writes s as a JSON string without an intermediate Go string.
// Bytes that are not valid UTF-8 are replaced, as encoding/json does; callers
// send such values base64-encoded instead (see ReadResult.Encoding).
func (s Secret) MarshalJSON() ([]byte, error) {
	return AppendJSONString(make([]byte, 0, len(s)+2), s), nil
}

// UnmarshalJSON reads a JSON string into s.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	*s = Secret(str)
	return nil
}

// Wipe overwrites s with zeros.
func (s Secret) Wipe() { clear(s) }

const hexDigits = "0123456789abcdef"

// JSONStringLen is the length of AppendJSONString's encoding of b.
func JSONStringLen(b []byte) int {
	n := 2
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20 || c == 0x7f:
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// AppendJSONString appends b to dst as a quoted JSON string.
func AppendJSONString(dst, b []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			dst = append(dst, b[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
