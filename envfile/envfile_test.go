package envfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// envSecret is the value put in broken lines: no error may contain it.
const envSecret = "s3cr3t"

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func sameEnvVars(a, b []Var) bool {
	return len(a) == len(b) && (len(a) == 0 || slices.Equal(a, b))
}

// showEnvVars prints vars with their values quoted, for test failures.
func showEnvVars(vars ...Var) string {
	parts := make([]string, len(vars))
	for i, v := range vars {
		parts[i] = fmt.Sprintf("{%s %q line %d}", v.Name, v.Value, v.Line)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestParseEnvFile(t *testing.T) {
	type V = Var
	for _, tc := range []struct {
		name, in string
		want     []Var
	}{
		// Lines that assign nothing.
		{"empty input", "", nil},
		{"only blanks and comments", "\n# one\n   # indented\n\t#tab\n  \n", nil},
		{"blank lines count", "\n\nA=1\n\nB=2\n", []V{{"A", "1", 3}, {"B", "2", 5}}},
		{"no final newline", "A=1", []V{{"A", "1", 1}}},

		// Line endings and BOM.
		{"crlf", "A=1\r\nB=2\r\n", []V{{"A", "1", 1}, {"B", "2", 2}}},
		{"crlf without final newline", "A=1\r\nB=2\r", []V{{"A", "1", 1}, {"B", "2", 2}}},
		{"bom", "\xef\xbb\xbfA=1\n", []V{{"A", "1", 1}}},
		{"bom and crlf", "\xef\xbb\xbf# c\r\nA=1\r\n", []V{{"A", "1", 2}}},

		// export.
		{"export", "export A=1", []V{{"A", "1", 1}}},
		{"export extra spaces", "  export   A = 1", []V{{"A", "1", 1}}},
		{"export tab", "export\tA=1", []V{{"A", "1", 1}}},
		{"variable named export", "export=1\nexport = 2", []V{{"export", "1", 1}, {"export", "2", 2}}},
		{"name starting with export", "exportA=1", []V{{"exportA", "1", 1}}},

		// Names and "=".
		{"name forms", "_=1\n_a9=2\nAbC_1=3", []V{{"_", "1", 1}, {"_a9", "2", 2}, {"AbC_1", "3", 3}}},
		{"spaces around equals", "A = 1\nB\t=\t2\nC   =3", []V{{"A", "1", 1}, {"B", "2", 2}, {"C", "3", 3}}},
		{"leading spaces", "   A=1", []V{{"A", "1", 1}}},

		// Unquoted values.
		{"unquoted trimmed", "A=   spaced value \t ", []V{{"A", "spaced value", 1}}},
		{"unquoted empty", "A=\nB=   \nC = ", []V{{"A", "", 1}, {"B", "", 2}, {"C", "", 3}}},
		{"unquoted inline comment", "A=1 # note\nB=2\t# tab note\nC=3    #", []V{{"A", "1", 1}, {"B", "2", 2}, {"C", "3", 3}}},
		{"unquoted hash kept", "A=a#b\nB=#x\nC=a## b # c", []V{{"A", "a#b", 1}, {"B", "#x", 2}, {"C", "a## b", 3}}},
		{"unquoted comment only", "A= # nothing here", []V{{"A", "", 1}}},
		{"unquoted equals in value", "A=b=c==", []V{{"A", "b=c==", 1}}},
		{"unquoted quotes and backslashes kept", `A=it's "x" \n \`, []V{{"A", `it's "x" \n \`, 1}}},
		{"unquoted dollar kept", "A=$HOME ${HOME}", []V{{"A", "$HOME ${HOME}", 1}}},
		{"op ref", "A=op://Vault/item/field", []V{{"A", "op://Vault/item/field", 1}}},
		{"vault ref keeps fragment", "A=vault://secret/app#key # c", []V{{"A", "vault://secret/app#key", 1}}},

		// Single-quoted values.
		{"single quoted literal", `A='a \n \" \\ $X ${Y} "q" # not a comment'`, []V{{"A", `a \n \" \\ $X ${Y} "q" # not a comment`, 1}}},
		{"single quoted keeps spaces", "A='  x  '", []V{{"A", "  x  ", 1}}},
		{"single quoted empty", "A=''", []V{{"A", "", 1}}},
		{"single quoted then comment", "A='x'   # c\nB='y'#c\nC='z'  \t", []V{{"A", "x", 1}, {"B", "y", 2}, {"C", "z", 3}}},
		{"single quoted ref", "A = 'vault://secret/app#key'", []V{{"A", "vault://secret/app#key", 1}}},

		// Double-quoted values.
		{"double quoted escapes", `A="n\n r\r t\t bs\\ q\" d\$"`, []V{{"A", "n\n r\r t\t bs\\ q\" d$", 1}}},
		{"double quoted unknown escapes kept", `A="\x \a \' \# \u00e9"`, []V{{"A", `\x \a \' \# \u00e9`, 1}}},
		{"double quoted no interpolation", `A="$HOME ${HOME} $(id)"`, []V{{"A", "$HOME ${HOME} $(id)", 1}}},
		{"double quoted keeps spaces and hash", `A="  a # b  "`, []V{{"A", "  a # b  ", 1}}},
		{"double quoted single quote", `A="it's"`, []V{{"A", "it's", 1}}},
		{"double quoted empty", `A=""`, []V{{"A", "", 1}}},
		{"double quoted then comment", "A=\"x\"  # c\nB=\"y\"#c", []V{{"A", "x", 1}, {"B", "y", 2}}},
		{"double quoted multi-line", "A=\"one\ntwo\n\nfour\"\nB=5", []V{{"A", "one\ntwo\n\nfour", 1}, {"B", "5", 5}}},
		{"double quoted multi-line crlf", "A=\"one\r\ntwo\"\r\nB=3\r\n", []V{{"A", "one\ntwo", 1}, {"B", "3", 3}}},
		{"double quoted multi-line hash line", "A=\"one\n# not a comment\"", []V{{"A", "one\n# not a comment", 1}}},
		{"double quoted escaped quote at end of line", "A=\"one\\\"\ntwo\"", []V{{"A", "one\"\ntwo", 1}}},
		{"double quoted backslash at end of line", "A=\"one\\\ntwo\"", []V{{"A", "one\\\ntwo", 1}}},
		{"double quoted pem", "KEY=\"-----BEGIN KEY-----\nab+/cd==\n-----END KEY-----\"\n", []V{{"KEY", "-----BEGIN KEY-----\nab+/cd==\n-----END KEY-----", 1}}},

		// Duplicates.
		{"duplicates kept in order", "A=1\nB=x\nA=2", []V{{"A", "1", 1}, {"B", "x", 2}, {"A", "2", 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("t.env", []byte(tc.in))
			if err != nil {
				t.Fatalf("ParseEnvFile(%q): %v", tc.in, err)
			}
			if !sameEnvVars(got, tc.want) {
				t.Errorf("ParseEnvFile(%q)\n got %s\nwant %s", tc.in, showEnvVars(got...), showEnvVars(tc.want...))
			}
		})
	}
}

// envErrorCases are broken files, each with the error it must give. The
// value in each broken line is envSecret.
var envErrorCases = []struct{ name, in, want string }{
	{"no equals", "s3cr3t", `app.env:1: missing "=" after NAME`},
	{"no equals after name", "A=1\n\nAPI_KEY s3cr3t", `app.env:3: missing "=" after NAME`},
	{"export without equals", "export s3cr3t", `app.env:1: missing "=" after NAME`},
	{"colon instead of equals", "API_KEY: s3cr3t", `app.env:1: missing "=" after NAME`},
	{"no name", "A=1\n= s3cr3t", `app.env:2: missing NAME before "="`},
	{"name starts with digit", "A=1\nB=2\n\n\n1ABC=s3cr3t", `app.env:5: invalid variable name "1ABC"`},
	{"name with dash", "MY-VAR=s3cr3t", `app.env:1: invalid variable name "MY-VAR"`},
	{"name with space", "MY VAR = s3cr3t", `app.env:1: invalid variable name`},
	{"name not ascii", "CAFÉ=s3cr3t", `app.env:1: invalid variable name`},
	{"base64 blob not shown", "s3cr3t+/AbC==", `app.env:1: invalid variable name`},
	{"long invalid name not shown", "1s3cr3ts3cr3ts3cr3ts3cr3ts3cr3ts3cr3t=x", `app.env:1: invalid variable name`},
	{"unterminated double", "A=1\nB=\"s3cr3t", `app.env:2: unterminated double-quoted value`},
	{"unterminated double multi-line", "A=1\n\nB=\"s3cr3t\nmore s3cr3t\nC=3\n", `app.env:3: unterminated double-quoted value`},
	{"unterminated double escaped quote", `A="s3cr3t\"`, `app.env:1: unterminated double-quoted value`},
	{"unterminated double trailing backslash", `A="s3cr3t\`, `app.env:1: unterminated double-quoted value`},
	{"unterminated single", "A='s3cr3t", `app.env:1: unterminated single-quoted value`},
	{"single not multi-line", "A='s3cr3t\nrest'", `app.env:1: unterminated single-quoted value`},
	{"text after double", `A="x" s3cr3t`, `app.env:1: unexpected text after closing quote`},
	{"text right after double", `A="x"s3cr3t`, `app.env:1: unexpected text after closing quote`},
	{"text after multi-line double", "A=1\nB=\"x\ny\" s3cr3t", `app.env:3: unexpected text after closing quote`},
	{"text after single", "A='x' s3cr3t", `app.env:1: unexpected text after closing quote`},
	{"single quote in single quoted", "A='it's3cr3t'", `app.env:1: unexpected text after closing quote`},
	{"nul byte", "A=1\nB=s3cr3t\x00", `app.env:2: invalid NUL byte`},
	{"nul byte in quotes", "A=\"s3cr3t\n\x00\"", `app.env:2: invalid NUL byte`},
}

func TestParseEnvFileErrors(t *testing.T) {
	for _, tc := range envErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.in, envSecret) {
				t.Fatalf("case %q has no %q value to hide", tc.in, envSecret)
			}
			vars, err := Parse("app.env", []byte(tc.in))
			if err == nil {
				t.Fatalf("ParseEnvFile(%q) = %s, want error %q", tc.in, showEnvVars(vars...), tc.want)
			}
			if vars != nil {
				t.Errorf("ParseEnvFile(%q) returned %s with its error", tc.in, showEnvVars(vars...))
			}
			msg := err.Error()
			if msg != tc.want {
				t.Errorf("ParseEnvFile(%q) error\n got %q\nwant %q", tc.in, msg, tc.want)
			}
			if strings.Contains(msg, envSecret) {
				t.Errorf("error %q shows the value", msg)
			}
			if msg != strings.ToLower(msg[:1])+msg[1:] {
				t.Errorf("error %q is not lowercase", msg)
			}
			var fe *Error
			if !errors.As(fmt.Errorf("wrapped: %w", err), &fe) || fe.File != "app.env" || fe.Line < 1 {
				t.Errorf("error %#v is not an *EnvFileError for app.env with a line", err)
			}
		})
	}
}

func TestParseEnvFileErrorNamesFile(t *testing.T) {
	_, err := Parse("/etc/app/prod.env", []byte("\nbad"))
	if err == nil || !strings.HasPrefix(err.Error(), "/etc/app/prod.env:2: ") {
		t.Errorf("error = %v, want it to start with the file and line", err)
	}
}

// envSeedWant is what each seed file in testdata/envfile parses to.
var envSeedWant = map[string][]Var{
	"app.env": {
		{"DB_PASS", "op://Private/db/password", 2},
		{"API_KEY", "vault://secret/app#key", 3},
		{"TOKEN", "vault://secret/app#token", 4},
		{"LITERAL", "hello world", 5},
		{"LOG_LEVEL", "debug", 8},
	},
	"crlf.env": {
		{"A", "1", 2},
		{"B", "x\ty", 3},
		{"MULTI", "one\ntwo", 4},
		{"C", "lit", 6},
	},
	"quoted.env": {
		{"SINGLE", `$NOT_EXPANDED \n "kept"`, 1},
		{"DOUBLE", "tab\there\nnewline \"q\" \\ $HOME ${HOME} \\x", 2},
		{"MULTI", "-----BEGIN KEY-----\nabc/def+ghi=\n-----END KEY-----", 3},
		{"AFTER", "1", 6},
		{"HASH_IN_QUOTES", "a # b", 7},
		{"EMPTY_DOUBLE", "", 8},
		{"EMPTY_SINGLE", "", 9},
	},
	"edge.env": {
		{"EMPTY", "", 3},
		{"SPACED", "spaced value", 4},
		{"HASH", "a#b", 5},
		{"URL", "https://example.com/?q=1#frag", 6},
		{"_UNDER_9", "x", 7},
		{"export", "word", 8},
		{"TABBED", "t", 9},
		{"DUP", "first", 10},
		{"DUP", "second", 11},
		{"NOSPACE_HASH", "#kept", 12},
		{"SPACE_HASH", "", 13},
	},
}

func envSeedFiles(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "envfile", "*.env"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no seed env files in testdata/envfile (%v)", err)
	}
	return files
}

func TestParseEnvFileSeeds(t *testing.T) {
	files := envSeedFiles(t)
	seen := 0
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := envSeedWant[filepath.Base(f)]
			if !ok {
				t.Fatalf("no expected result for seed %s: add one to envSeedWant", f)
			}
			seen++
			got, err := Parse(f, data)
			if err != nil {
				t.Fatalf("ParseEnvFile(%s): %v", f, err)
			}
			if !sameEnvVars(got, want) {
				t.Errorf("ParseEnvFile(%s)\n got %s\nwant %s", f, showEnvVars(got...), showEnvVars(want...))
			}
		})
	}
	if seen != len(envSeedWant) {
		t.Errorf("found %d of the %d seed files in envSeedWant", seen, len(envSeedWant))
	}
}

// quoteEnvValue writes v as a double-quoted env file value.
var quoteEnvValue = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace

// envErrorReasons are the only reasons an error may give; the invalid name
// one may also quote the name.
var envErrorReasons = []string{
	`missing "=" after NAME`,
	`missing NAME before "="`,
	`invalid variable name`,
	`unterminated double-quoted value`,
	`unterminated single-quoted value`,
	`unexpected text after closing quote`,
	`invalid NUL byte`,
}

func FuzzParseEnvFile(f *testing.F) {
	for _, file := range envSeedFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range envErrorCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := Parse("f.env", data)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || fe.File != "f.env" || fe.Line < 1 || fe.Line > strings.Count(string(data), "\n")+1 {
				t.Fatalf("error %#v: want an *EnvFileError with a line in the file", err)
			}
			known := slices.Contains(envErrorReasons, fe.Reason)
			if name, ok := strings.CutPrefix(fe.Reason, "invalid variable name "); ok {
				known = len(name) <= 34 && strings.HasPrefix(name, `"`) && strings.HasSuffix(name, `"`)
			}
			if !known {
				t.Fatalf("unexpected error reason %q", fe.Reason)
			}
			return
		}
		var b strings.Builder
		for i, v := range vars {
			if !envNameRE.MatchString(v.Name) {
				t.Fatalf("invalid name in %s", showEnvVars(v))
			}
			if v.Line < 1 || i > 0 && v.Line <= vars[i-1].Line {
				t.Fatalf("bad line in %s", showEnvVars(vars[:i+1]...))
			}
			fmt.Fprintf(&b, "%s=\"%s\"\n", v.Name, quoteEnvValue(v.Value))
		}
		again, err := Parse("again.env", []byte(b.String()))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if len(again) != len(vars) {
			t.Fatalf("round trip changed the count: %s became %s", showEnvVars(vars...), showEnvVars(again...))
		}
		for i := range vars {
			if again[i].Name != vars[i].Name || again[i].Value != vars[i].Value {
				t.Fatalf("round trip: %s became %s", showEnvVars(vars[i]), showEnvVars(again[i]))
			}
		}
	})
}
