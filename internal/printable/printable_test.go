package printable

import "testing"

// What opx prints of a name it did not choose (a ref, a file name) cannot
// move the cursor, retitle the terminal or reorder the line.
func TestString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"op://Private/db/password", "op://Private/db/password"},
		{"café/ключ", "café/ключ"},
		{"a\x1b]0;owned\x07b", `a\x1b]0;owned\ab`},
		{"line\nnext", `line\nnext`},
		{"back\\slash", `back\slash`},
		{`C:\Users\me\opx.exe`, `C:\Users\me\opx.exe`},
		{"C:\\evil\x1b[2J", `C:\\evil\x1b[2J`},
		{"\u202eevil", `\u202eevil`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"del\x7f", `del\x7f`},
		{"c1\u0085", `c1\u0085`},
	} {
		if got := String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
