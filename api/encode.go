package api

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"
)

// The daemon writes answers that carry secrets with these encoders instead of
// encoding/json, whose pooled buffers would keep copies of the values that
// nobody can wipe, and into a Buf, which never leaves a copy behind when it
// grows. The caller wipes the Buf once the answer is written.

// Buf is a byte buffer for answers that hold secrets. When it must grow it
// copies its bytes into a larger array and zeroes the old one, so that no
// stale copy is left for the garbage collector to free unwiped (append and
// bytes.Buffer leave one at every growth).
type Buf struct{ b []byte }

// NewBuf returns an empty Buf with room for size bytes.
func NewBuf(size int) *Buf { return &Buf{b: make([]byte, 0, size)} }

// Bytes returns the buffer's content; it is valid until the next write.
func (w *Buf) Bytes() []byte { return w.b }

// Len is the length of the content.
func (w *Buf) Len() int { return len(w.b) }

// Wipe zeroes the whole array and empties the buffer.
func (w *Buf) Wipe() {
	clear(w.b[:cap(w.b)])
	w.b = w.b[:0]
}

// grow makes room for n more bytes.
func (w *Buf) grow(n int) {
	if len(w.b)+n <= cap(w.b) {
		return
	}
	nb := make([]byte, len(w.b), max(2*cap(w.b), len(w.b)+n, 64))
	copy(nb, w.b)
	clear(w.b[:cap(w.b)])
	w.b = nb
}

// Write appends p; it never fails (io.Writer).
func (w *Buf) Write(p []byte) (int, error) {
	w.grow(len(p))
	w.b = append(w.b, p...)
	return len(p), nil
}

// ReadFrom appends what r yields until io.EOF, reading straight into the
// buffer (io.ReaderFrom), so that io.Copy and os/exec use no buffer of
// their own that would keep a copy.
func (w *Buf) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		w.grow(4 << 10)
		n, err := r.Read(w.b[len(w.b):cap(w.b)])
		w.b = w.b[:len(w.b)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// WriteString appends s.
func (w *Buf) WriteString(s string) {
	w.grow(len(s))
	w.b = append(w.b, s...)
}

// WriteByte appends c; it never fails (io.ByteWriter).
func (w *Buf) WriteByte(c byte) error {
	w.grow(1)
	w.b = append(w.b, c)
	return nil
}

// Pad appends spaces until the content is at least n bytes long.
func (w *Buf) Pad(n int) {
	if k := n - len(w.b); k > 0 {
		w.grow(k)
		for range k {
			w.b = append(w.b, ' ')
		}
	}
}

// JSONString appends b as a quoted JSON string.
func (w *Buf) JSONString(b []byte) {
	w.grow(JSONStringLen(b))
	w.b = AppendJSONString(w.b, b)
}

func (w *Buf) int(n int64) {
	w.grow(20)
	w.b = strconv.AppendInt(w.b, n, 10)
}

func (w *Buf) bool(v bool) {
	w.grow(5)
	w.b = strconv.AppendBool(w.b, v)
}

// value appends v as a JSON string and, for values that are not valid
// UTF-8, base64-encoded with the encoding field after it.
func (w *Buf) value(v []byte, encodingField bool) {
	if utf8.Valid(v) {
		w.JSONString(v)
		return
	}
	n := base64.StdEncoding.EncodedLen(len(v))
	w.grow(n + 2)
	w.b = append(w.b, '"')
	start := len(w.b)
	w.b = w.b[:start+n]
	base64.StdEncoding.Encode(w.b[start:], v)
	w.b = append(w.b, '"')
	if encodingField {
		w.WriteString(`,"encoding":"base64"`)
	}
}

// ReadResult appends r as JSON. A value that is not valid UTF-8 is sent
// base64-encoded with "encoding":"base64".
func (w *Buf) ReadResult(r *ReadResult) {
	w.WriteString(`{"ref":`)
	w.JSONString([]byte(r.Ref))
	w.WriteString(`,"value":`)
	w.value(r.Value, true)
	w.WriteString(`,"from_cache":`)
	w.bool(r.FromCache)
	w.WriteString(`,"expires_in_seconds":`)
	w.int(r.ExpiresInSeconds)
	w.WriteString(`,"resolved_at_unix":`)
	w.int(r.ResolvedAtUnix)
	if r.Stale {
		w.WriteString(`,"stale":true`)
	}
	w.WriteByte('}')
}

// ReadsResponse appends a /v1/reads answer; refs are written sorted so that
// answers are stable.
func (w *Buf) ReadsResponse(results map[string]*ReadResult, errs map[string]*Error) {
	w.WriteString(`{"results":{`)
	for i, ref := range sortedKeys(results) {
		if i > 0 {
			w.WriteByte(',')
		}
		w.JSONString([]byte(ref))
		w.WriteByte(':')
		w.ReadResult(results[ref])
	}
	w.WriteString(`},"errors":`)
	if errs == nil {
		errs = map[string]*Error{}
	}
	e, _ := json.Marshal(errs) // no secrets in errors
	w.Write(e)
	w.WriteByte('}')
}

// ResolveResponse appends a /v1/resolve answer.
func (w *Buf) ResolveResponse(env map[string][]byte, stale ...string) {
	w.WriteString(`{"env":{`)
	var binary []string
	for i, name := range sortedKeys(env) {
		if i > 0 {
			w.WriteByte(',')
		}
		w.JSONString([]byte(name))
		w.WriteByte(':')
		v := env[name]
		if !utf8.Valid(v) {
			binary = append(binary, name)
		}
		w.value(v, false)
	}
	w.WriteByte('}')
	if len(binary) > 0 {
		w.WriteString(`,"encodings":{`)
		for i, name := range binary {
			if i > 0 {
				w.WriteByte(',')
			}
			w.JSONString([]byte(name))
			w.WriteString(`:"base64"`)
		}
		w.WriteByte('}')
	}
	if len(stale) > 0 {
		w.WriteString(`,"stale":[`)
		for i, name := range stale {
			if i > 0 {
				w.WriteByte(',')
			}
			w.JSONString([]byte(name))
		}
		w.WriteByte(']')
	}
	w.WriteByte('}')
}

// AppendReadResult appends r as JSON to dst (with append's growth: for
// tests and callers whose values are not secret).
func AppendReadResult(dst []byte, r *ReadResult) []byte {
	w := Buf{b: dst}
	w.ReadResult(r)
	return w.b
}

// AppendResolveResponse appends a /v1/resolve answer to dst (see
// AppendReadResult).
func AppendResolveResponse(dst []byte, env map[string][]byte) []byte {
	w := Buf{b: dst}
	w.ResolveResponse(env)
	return w.b
}

// Decode returns the value's bytes, undoing a base64 encoding.
func Decode(v Secret, encoding string) ([]byte, error) {
	if encoding != "base64" {
		return v, nil
	}
	return base64.StdEncoding.DecodeString(string(v))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
