package client

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []EnvVar
	}{
		{"plain", "A=op://v/i/f\nB=x", []EnvVar{{"A", "op://v/i/f", 1}, {"B", "x", 2}}},
		{"comments and blanks", "# c\n\n  # d\nA=1 # note\nB=a#b", []EnvVar{{"A", "1", 4}, {"B", "a#b", 5}}},
		{"export and spaces", "export A = spaced value  \n", []EnvVar{{"A", "spaced value", 1}}},
		{"empty", "A=\n", []EnvVar{{"A", "", 1}}},
		{"crlf and bom", "\xef\xbb\xbfA=1\r\nB=2\r\n", []EnvVar{{"A", "1", 1}, {"B", "2", 2}}},
		{"single quoted", `A='lit $X \n "q"' # c`, []EnvVar{{"A", `lit $X \n "q"`, 1}}},
		{"double quoted escapes", `A="l1\nl2\t\"q\" \$X \\ \x"`, []EnvVar{{"A", "l1\nl2\t\"q\" $X \\ \\x", 1}}},
		{"double quoted multi-line", "A=\"one\ntwo\"\nB=3", []EnvVar{{"A", "one\ntwo", 1}, {"B", "3", 3}}},
		{"duplicates kept in order", "A=1\nA=2", []EnvVar{{"A", "1", 1}, {"A", "2", 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEnvFile("t.env", []byte(tc.in))
			if err != nil {
				t.Fatalf("ParseEnvFile(%q) error %v", tc.in, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("ParseEnvFile(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseEnvFileErrorsNeverShowValues(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"s3cr3t", `app.env:1: missing "="`},
		{"A=1\n1BAD=s3cr3t", `app.env:2: invalid variable name "1BAD"`},
		{`A="s3cr3t`, "app.env:1: unterminated double-quoted value"},
		{`A='s3cr3t`, "app.env:1: unterminated single-quoted value"},
		{`A="x" s3cr3t`, "app.env:1: unexpected text after closing quote"},
	} {
		_, err := ParseEnvFile("app.env", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseEnvFile(%q) = %v, want %q", tc.in, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") && !strings.Contains(tc.want, "s3cr3t") {
			t.Errorf("error %q shows the value", err)
		}
	}
}

func TestParseEnvFileSeeds(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "envfile", "*.env"))
	if len(files) == 0 {
		t.Fatal("no seed env files")
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if _, err := ParseEnvFile(f, data); err != nil {
			t.Errorf("seed %s: %v", f, err)
		}
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func quoteDouble(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

func FuzzParseEnvFile(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "envfile", "*.env"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ParseEnvFile("f.env", data)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, v := range vars {
			if !nameRE.MatchString(v.Name) || v.Line < 1 {
				t.Fatalf("bad var %+v from %q", v, data)
			}
			b.WriteString(v.Name + "=" + quoteDouble(v.Value) + "\n")
		}
		again, err := ParseEnvFile("f.env", []byte(b.String()))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if len(again) != len(vars) {
			t.Fatalf("round trip changed the count: %v vs %v", vars, again)
		}
		for i := range vars {
			if again[i].Name != vars[i].Name || again[i].Value != vars[i].Value {
				t.Fatalf("round trip %+v became %+v", vars[i], again[i])
			}
		}
	})
}
