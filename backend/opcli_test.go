package backend

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
)

// template renders what op inject would print for vals.
func template(nonce string, vals []string) []byte {
	var b bytes.Buffer
	for i, v := range vals {
		fmt.Fprintf(&b, "<<opx:%s:%d>>%s<</opx:%s:%d>>\n", nonce, i, v, nonce, i)
	}
	return b.Bytes()
}

func TestSplitInject(t *testing.T) {
	vals := []string{"plain", "", "multi\nline\n", "  spaces  ", "<</opx:other:1>>\n", "ünïcode"}
	got, err := splitInject(template("abc", vals), "abc", len(vals))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if string(got[i]) != v || got[i] == nil {
			t.Errorf("value %d = %q, want %q", i, got[i], v)
		}
	}
	for _, bad := range [][]byte{
		[]byte("garbage"),
		template("abc", vals[:2]),
		append(template("abc", vals), "trailing"...),
		template("xyz", vals),
	} {
		if _, err := splitInject(bad, "abc", len(vals)); err == nil {
			t.Errorf("splitInject(%q) succeeded", bad)
		}
	}
}

func FuzzSplitInject(f *testing.F) {
	f.Add([]byte("a"), []byte("b\n"), []byte(""))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		vals := []string{string(a), string(b), string(c)}
		got, err := splitInject(template("0123456789abcdef", vals), "0123456789abcdef", 3)
		if err != nil {
			t.Fatalf("splitInject of a well-formed output: %v", err)
		}
		for i := range vals {
			if string(got[i]) != vals[i] {
				t.Fatalf("value %d = %q, want %q", i, got[i], vals[i])
			}
		}
		// Arbitrary bytes never panic.
		splitInject(bytes.Join([][]byte{a, b, c}, nil), "0123456789abcdef", 2)
	})
}

func TestClassifyOPError(t *testing.T) {
	for _, tc := range []struct{ stderr, code string }{
		{"[ERROR] 2026/11/28 10:00:00 You are not currently signed in. Please run `op signin --help` for instructions", api.CodeUnauthorized},
		{"[ERROR] 2026/11/28 10:00:00 could not read secret 'op://a/b/c': could not get item a/b: \"b\" isn't an item in the \"a\" vault.", api.CodeNotFound},
		{"[ERROR] 2026/11/28 10:00:00 item 'a/b' does not have a field 'c'", api.CodeNotFound},
		{"[ERROR] 2026/11/28 10:00:00 no account found for filter \"x\"", api.CodeBadRequest},
		{"[ERROR] 2026/11/28 10:00:00 something else broke", api.CodeBackendError},
		{`[ERROR] 2026/11/28 10:00:00 could not read secret 'op://a/(429) Too Many Requests/c': "(429) Too Many Requests" isn't an item in the "a" vault.`, api.CodeNotFound},
		{"", api.CodeBackendError},
		{"[ERROR] 2026/12/03 10:00:00 (403) Forbidden (Service Account Deleted): The Service Account used in this integration has been deleted.", api.CodeUnauthorized},
		{"[ERROR] 2026/12/03 10:00:00 error initializing client: Validation: (failed to session.DecodeSACredentials), Server: (failed to DecodeSACredentials), failed to parseToken, format is invalid", api.CodeUnauthorized},
		{`[ERROR] 2026/12/03 10:00:00 could not read secret 'op://a/service account deleted/c': "service account deleted" isn't an item in the "a" vault.`, api.CodeNotFound},
		{"[ERROR] 2026/12/03 10:00:00 could not read secret 'op://a/b/c': error initializing client: authorization timeout", api.CodeUnauthorized},
		{"[ERROR] 2026/12/03 10:00:00 error initializing client: authorization prompt dismissed, please try again", api.CodeUnauthorized},
	} {
		e := classifyOPError(tc.stderr, "", Desktop)
		if e.Code != tc.code {
			t.Errorf("classifyOPError(%q) = %s, want %s", tc.stderr, e.Code, tc.code)
		}
		if strings.Contains(e.Message, "[ERROR]") {
			t.Errorf("message keeps op's log prefix: %q", e.Message)
		}
	}
}

// When the desktop app did not authorize op (it is locked, or its prompt
// was dismissed), the message says to unlock the app and then opx unlock,
// not to sign in again.
func TestClassifyOPErrorLockedApp(t *testing.T) {
	for _, stderr := range []string{
		"[ERROR] 2026/12/03 10:00:00 could not read secret 'op://Private/db/password': error initializing client: authorization timeout\n",
		"[ERROR] 2026/12/03 10:00:00 error initializing client: authorization timeout\n",
		"[ERROR] 2026/12/03 10:00:00 error initializing client: authorization prompt dismissed, please try again\n",
		"[ERROR] 2026/12/03 10:00:00 unexpected response from 1Password app\n",
	} {
		e := classifyOPError(stderr, "team", Desktop)
		if e.Code != api.CodeUnauthorized || !strings.Contains(e.Message, "unlock the 1Password app, then run: opx unlock") || strings.Contains(e.Message, "opx login") {
			t.Errorf("classifyOPError(%q) = %s %q, want unauthorized, to unlock the app and then opx unlock", stderr, e.Code, e.Message)
		}
	}
	// An item that op says it cannot find is not the app's doing, whatever
	// its name.
	e := classifyOPError(`[ERROR] 2026/12/03 10:00:00 could not read secret 'op://a/authorization timeout/c': "authorization timeout" isn't an item in the "a" vault.`, "", Desktop)
	if e.Code != api.CodeNotFound {
		t.Errorf("an item named authorization timeout = %s %q, want not_found", e.Code, e.Message)
	}
}

func TestOTPTTL(t *testing.T) {
	for _, sec := range []int{0, 1, 15, 29} {
		now := time.Unix(1_700_000_010+int64(sec), 0) // 1_700_000_010 is a multiple of 30
		if got, want := OTPTTL(now), time.Duration(30-sec)*time.Second; got != want {
			t.Errorf("OTPTTL at second %d of the step = %v, want %v", sec, got, want)
		}
	}
}

func TestTrimOPLogPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"[ERROR] 2026/11/28 10:00:00 not signed in": "not signed in",
		"[ERROR] 2026/11/28 10:00:00 ":              "",
		"[ERROR] 2026-11-28 10:00:00 kept":          "[ERROR] 2026-11-28 10:00:00 kept",
		"[ERROR] soon":                              "[ERROR] soon",
		"plain message":                             "plain message",
	} {
		if got := trimOPLogPrefix(in); got != want {
			t.Errorf("trimOPLogPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInjectSafe(t *testing.T) {
	for ref, want := range map[string]bool{
		"op://Private/db/password":                true,
		"op://d3v/stripe.keys/s3ct10n/public_key": true,
		"op://v/i/otp?attribute":                  true,
		"op://v/i/otp?attribute=otp":              false,
		"op://Private/Multi Line Note/notesPlain": false,
		"op://v/i/pa$":                            false,
		"op://v/i/{{x}}":                          false,
		"op://":                                   false,
		"vault://secret/app#k":                    false,
		"op://Private/db/naïve":                   false,
		"op://Private/Smith, John/password":       false,
	} {
		if got := injectSafe(ref); got != want {
			t.Errorf("injectSafe(%q) = %v, want %v", ref, got, want)
		}
	}
}

// writeCounter is a secretWriter that counts the calls to Write, which
// would mean a copy through a buffer that is not the secretWriter's own.
type writeCounter struct {
	secretWriter
	writes int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes++
	return w.secretWriter.Write(p)
}

// TestOPOutputIsReadStraightIntoItsBuffer checks that os/exec hands op's
// stdout to the secretWriter's ReadFrom, for outputs below and above the
// buffer's first size and a pipe's capacity: through Write, it would copy
// it through a 32 KiB buffer of io.Copy's, dropped unzeroed.
func TestOPOutputIsReadStraightIntoItsBuffer(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh and head: ", err)
	}
	for _, n := range []int{10, 5000, 100000} {
		w := &writeCounter{secretWriter: secretWriter{b: api.NewBuf(4 << 10)}}
		cmd := exec.Command("sh", "-c", fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", n))
		cmd.Stdout = w
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		if w.writes != 0 || w.b.Len() != n {
			t.Errorf("%d bytes of output: %d Write calls, %d bytes read; want 0 and %d", n, w.writes, w.b.Len(), n)
		}
		w.b.Wipe()
	}
}
