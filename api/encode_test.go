package api

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestAppendJSONStringRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "multi\nline\r\n", "tab\there", `quote " and \ slash`,
		"unicode ✓ 日本語", "trailing spaces   ", "\x00\x01\x1f\x7f", "line sep \u2028 para \u2029", "<html>&"} {
		b := AppendJSONString(nil, []byte(s))
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("AppendJSONString(%q) = %s: not JSON: %v", s, b, err)
		}
		if got != s {
			t.Errorf("round trip of %q = %q", s, got)
		}
	}
}

func TestReadResultBinaryValueIsBase64(t *testing.T) {
	bin := []byte{0xff, 0x00, 0xfe, 'a'}
	b := AppendReadResult(nil, &ReadResult{Ref: "op://v/i/file", Value: bin, ExpiresInSeconds: 5})
	var r ReadResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if r.Encoding != "base64" {
		t.Fatalf("encoding = %q, want base64", r.Encoding)
	}
	got, err := Decode(r.Value, r.Encoding)
	if err != nil || string(got) != string(bin) {
		t.Errorf("Decode = %q, %v; want %q", got, err, bin)
	}
}

func TestResolveResponseShape(t *testing.T) {
	b := AppendResolveResponse(nil, map[string][]byte{"A": []byte("x\ny"), "B": {0xff}})
	var r ResolveResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if string(r.Env["A"]) != "x\ny" || r.Encodings["B"] != "base64" {
		t.Errorf("decoded %+v", r)
	}
	if v, _ := Decode(r.Env["B"], r.Encodings["B"]); string(v) != "\xff" {
		t.Errorf("binary value = %q", v)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff\xfe", "\u2028", "multi\nline"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b := AppendJSONString(nil, in)
		if n := JSONStringLen(in); n != len(b) {
			t.Fatalf("JSONStringLen(%q) = %d, want %d", in, n, len(b))
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("AppendJSONString(%q) = %s: not JSON: %v", in, b, err)
		}
		if utf8.Valid(in) && got != string(in) {
			t.Fatalf("round trip of %q = %q", in, got)
		}
		r := AppendReadResult(nil, &ReadResult{Ref: string(in), Value: in})
		var rr ReadResult
		if err := json.Unmarshal(r, &rr); err != nil {
			t.Fatalf("AppendReadResult: %s: %v", r, err)
		}
		v, err := Decode(rr.Value, rr.Encoding)
		if err != nil || string(v) != string(in) {
			t.Fatalf("value %q came back as %q (%v)", in, v, err)
		}
	})
}

// A Buf zeroes the array it leaves behind when it grows.
func TestBufLeavesNoCopyWhenItGrows(t *testing.T) {
	w := NewBuf(8)
	w.WriteString("secret")
	old := w.b[:cap(w.b)]
	w.WriteString(" and more than eight bytes")
	for _, c := range old {
		if c != 0 {
			t.Fatalf("old array after growth = %q, want zeros", old)
		}
	}
	if string(w.Bytes()) != "secret and more than eight bytes" {
		t.Errorf("content = %q", w.Bytes())
	}
	all := w.b[:cap(w.b)]
	w.Wipe()
	for _, c := range all {
		if c != 0 {
			t.Fatal("Wipe left bytes")
		}
	}
}
