package backend

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestUnquoteJSONMatchesEncodingJSON(t *testing.T) {
	for _, q := range []string{`""`, `"plain"`, `"a\"b\\c\/d"`, `"\b\f\n\r\t"`, `"\u00e9\u65e5"`, `"\ud83d\ude00"`,
		`"lone \ud800 surrogate"`, `"\udc00\ud800"`, `"ünïcödé ✓"`, `"\u0000"`} {
		got, err := unquoteJSON([]byte(q))
		var want string
		if jerr := json.Unmarshal([]byte(q), &want); jerr != nil {
			t.Fatalf("test input %s is not JSON: %v", q, jerr)
		}
		if err != nil || string(got) != want {
			t.Errorf("unquoteJSON(%s) = %q, %v; want %q", q, got, err, want)
		}
	}
	for _, bad := range []string{``, `"`, `"abc`, `"\x"`, `"\u12"`, `"a"b"`, "\"\x01\""} {
		if _, err := unquoteJSON([]byte(bad)); err == nil {
			t.Errorf("unquoteJSON(%q) accepted", bad)
		}
	}
}

func FuzzUnquoteJSON(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\u2028", "multi\nline", "\U0001F600", "\\ud800"} {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		got, err := unquoteJSON(q)
		var want string
		jerr := json.Unmarshal(q, &want)
		if t := bytes.TrimLeft(q, " \t\r\n"); jerr != nil || len(t) == 0 || t[0] != '"' {
			return // not a JSON string: only must not panic
		}
		if !utf8.Valid(q) {
			return // encoding/json replaces invalid bytes; unquoteJSON keeps them
		}
		if err != nil || string(got) != want {
			t.Fatalf("unquoteJSON(%s) = %q, %v; want %q", q, got, err, want)
		}
		if len(got) > len(q) {
			t.Fatalf("unquoteJSON grew %d bytes to %d", len(q), len(got))
		}
	})
}
