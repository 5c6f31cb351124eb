package template

import (
	"bytes"
	"strings"
	"testing"
)

// render fills a parsed template with "<REF>" for each reference.
func render(parts []Part) string {
	var b bytes.Buffer
	for _, p := range parts {
		if p.Ref != "" {
			b.WriteString("<" + p.Ref + ">")
		} else {
			b.Write(p.Lit)
		}
	}
	return b.String()
}

func TestTemplateSyntax(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// The documentation's own examples.
		{"username: {{ op://prod/database/username }}\n", "username: <op://prod/database/username>\n"},
		{"op://prod/docker-credentials/username", "<op://prod/docker-credentials/username>"},
		{"op://d3v/stripe.keys/s3ct10n/public_key", "<op://d3v/stripe.keys/s3ct10n/public_key>"},
		{`op://h?ack/1Password!/for"real`, `<op://h?ack/1Password>!/for"real`},
		{"op://{vault}/[item]/(section)/field", "op://{vault}/[item]/(section)/field"},
		{"{{op://prod/docker-credentials/username}}", "<op://prod/docker-credentials/username>"},
		{"{{ op://d3v/stripe.keys/s3ct10n/public_key }}", "<op://d3v/stripe.keys/s3ct10n/public_key>"},
		{`{{op://h?ack/1Password!/for"real}}`, `{{<op://h?ack/1Password>!/for"real}}`},
		{`{{ "{{ test op://prod/docker-credentials/username }}" }}`, "{{ test op://prod/docker-credentials/username }}"},
		{`{{ "{{ test \"test\" test }}" }}`, `{{ test "test" test }}`},
		{"op://${VAULT:-dev}/docker/password", "<op://${VAULT:-dev}/docker/password>"},
		{"op://$APP_ENV/db/password x", "<op://$APP_ENV/db/password> x"},
		// What precedes op:// decides.
		{"xop://a/b/c -op://a/b/c +op://a/b/c \\op://a/b/c .op://a/b/c", "xop://a/b/c -op://a/b/c +op://a/b/c \\op://a/b/c .op://a/b/c"},
		{"=op://a/b/c \"op://a/b/c\" (op://a/b/c) /op://a/b/c", "=<op://a/b/c> \"<op://a/b/c>\" (<op://a/b/c>) /<op://a/b/c>"},
		// What ends it.
		{"op://a/b/c.\n", "<op://a/b/c.>\n"},
		{"op://a/b/c?attribute=otp", "<op://a/b/c?attribute>=otp"},
		{"op://a/b/c d", "<op://a/b/c> d"},
		{"op://", "op://"},
		// Enclosed: padding, and what is not one.
		{"{{   op://a/b/c   }}", "<op://a/b/c>"},
		{"{{ op://a/b c }}", "{{ <op://a/b> c }}"},
		{"{{ op://a/b/c }", "{{ <op://a/b/c> }"},
		{"{{\top://a/b/c}}", "{{\t<op://a/b/c>}}"},
		{"{{ not a ref }} {{", "{{ not a ref }} {{"},
		{"{{ vault://secret/app#password }}", "<vault://secret/app#password>"},
		{"{{bao://kv/data/app?version=2#key}}", "<bao://kv/data/app?version=2#key>"},
		{"vault://secret/app#password", "vault://secret/app#password"},
		{"{{ vault://secret/my app#k }}", "{{ vault://secret/my app#k }}"},
		// Escapes.
		{`{{"a\\b"}}`, `a\b`},
		{`{{ "x\ny" }}`, `x\ny`}, // only \" and \\ are escapes
		{`{{ "unterminated }}`, `{{ "unterminated }}`},
		{`{{ "a" b }}`, `{{ "a" b }}`},
		{"", ""},
		{"no refs at all\n", "no refs at all\n"},
		// A variable is one line, a name and an optional default; anything
		// else after a '$' ends the reference there.
		{"op://v/i/f${not a var}", "<op://v/i/f>${not a var}"},
		{"op://v/${X\n}/f", "<op://v/>${X\n}/f"},
		{"op://v/${ X :-a b}/f", "<op://v/${ X :-a b}/f>"},
		{"op://v/${X:-" + strings.Repeat("d", 257) + "}/f", "<op://v/>${X:-" + strings.Repeat("d", 257) + "}/f"},
	} {
		if got := render(Parse([]byte(c.in), false)); got != c.want {
			t.Errorf("%q:\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestTemplateLines(t *testing.T) {
	parts := Parse([]byte("a: op://v/i/a\n{{ \"x\ny\" }}\nb: {{ op://v/i/b }}\nc: op://v/i/a\n"), false)
	refs, lines := Refs(parts)
	if strings.Join(refs, " ") != "op://v/i/a op://v/i/b" {
		t.Fatalf("refs %q", refs)
	}
	if got := LineList(lines["op://v/i/a"]); got != "lines 1, 5" {
		t.Errorf("op://v/i/a on %s", got)
	}
	if got := LineList(lines["op://v/i/b"]); got != "line 4" {
		t.Errorf("op://v/i/b on %s", got)
	}
}

// Whatever the template, parsing loses no byte: a renderer that writes
// every reference back as written gives the template back, escapes aside.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"{{ op://a/b/c }}", "x op://a/$B/c.", `{{ "q\"" }}`, "{{ vault://k/p#f }}", "{{{{op://a/b}}}}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		parts := Parse(in, false)
		var b bytes.Buffer
		for _, p := range parts {
			if p.Ref != "" {
				b.WriteString(p.Ref)
			} else {
				b.Write(p.Lit)
			}
		}
		if !bytes.Contains(in, []byte(`"`)) && !bytes.Contains(in, []byte("{{")) && !bytes.Equal(b.Bytes(), in) {
			t.Fatalf("%q came back as %q", in, b.Bytes())
		}
	})
}
