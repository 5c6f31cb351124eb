package api

import (
	"encoding/base64"
	"encoding/json"
	"sort"
	"strconv"
	"unicode/utf8"
)

// The daemon writes answers that carry secrets with these encoders instead of
// encoding/json, whose pooled buffers would keep copies of the values that
// nobody can wipe. The caller zeroes the returned slice after writing it.

// AppendReadResult appends r as JSON. A value that is not valid UTF-8 is
// sent base64-encoded with "encoding":"base64".
func AppendReadResult(dst []byte, r *ReadResult) []byte {
	dst = append(dst, `{"ref":`...)
	dst = AppendJSONString(dst, []byte(r.Ref))
	dst = append(dst, `,"value":`...)
	dst = appendValue(dst, r.Value)
	dst = append(dst, `,"from_cache":`...)
	dst = strconv.AppendBool(dst, r.FromCache)
	dst = append(dst, `,"expires_in_seconds":`...)
	dst = strconv.AppendInt(dst, r.ExpiresInSeconds, 10)
	dst = append(dst, `,"resolved_at_unix":`...)
	dst = strconv.AppendInt(dst, r.ResolvedAtUnix, 10)
	return append(dst, '}')
}

// appendValue appends v as a JSON string and, for binary values, the
// encoding field.
func appendValue(dst []byte, v []byte) []byte {
	if utf8.Valid(v) {
		return AppendJSONString(dst, v)
	}
	dst = append(dst, '"')
	n := len(dst)
	dst = append(dst, make([]byte, base64.StdEncoding.EncodedLen(len(v)))...)
	base64.StdEncoding.Encode(dst[n:], v)
	return append(dst, `","encoding":"base64"`...)
}

// AppendReadsResponse appends a /v1/reads answer; refs are written sorted
// so that answers are stable.
func AppendReadsResponse(dst []byte, results map[string]*ReadResult, errs map[string]*Error) []byte {
	dst = append(dst, `{"results":{`...)
	for i, ref := range sortedKeys(results) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, []byte(ref))
		dst = append(dst, ':')
		dst = AppendReadResult(dst, results[ref])
	}
	dst = append(dst, `},"errors":`...)
	if errs == nil {
		errs = map[string]*Error{}
	}
	e, _ := json.Marshal(errs) // no secrets in errors
	dst = append(dst, e...)
	return append(dst, '}')
}

// AppendResolveResponse appends a /v1/resolve answer.
func AppendResolveResponse(dst []byte, env map[string][]byte) []byte {
	dst = append(dst, `{"env":{`...)
	var binary []string
	for i, name := range sortedKeys(env) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, []byte(name))
		dst = append(dst, ':')
		v := env[name]
		if utf8.Valid(v) {
			dst = AppendJSONString(dst, v)
			continue
		}
		binary = append(binary, name)
		dst = append(dst, '"')
		n := len(dst)
		dst = append(dst, make([]byte, base64.StdEncoding.EncodedLen(len(v)))...)
		base64.StdEncoding.Encode(dst[n:], v)
		dst = append(dst, '"')
	}
	dst = append(dst, '}')
	if len(binary) > 0 {
		dst = append(dst, `,"encodings":{`...)
		for i, name := range binary {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSONString(dst, []byte(name))
			dst = append(dst, `:"base64"`...)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
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
