package daemon

// Requests and answers on the wire: fields checked, bodies read within
// their bounds, answers written (those with secrets in one call, from a
// buffer that is wiped), and net/http's own log lines.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/rs/zerolog"

	"github.com/opxhq/opx/api"
)

// validAccount checks the optional account name: it is passed to backends
// as a flag value, so it may not look like a flag or hold control bytes.
func validAccount(a string) *api.Error {
	switch {
	case a == "":
		return nil
	case len(a) > api.MaxAccountLen:
		return api.Errorf(api.CodeBadRequest, "account is %d bytes; the limit is %d", len(a), api.MaxAccountLen)
	case strings.HasPrefix(a, "-"):
		return api.Errorf(api.CodeBadRequest, "account may not start with '-'")
	}
	for _, r := range a {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return api.Errorf(api.CodeBadRequest, "account may not contain spaces or control characters")
		}
	}
	return nil
}

// validEnvName reports whether name is a usable environment variable name.
func validEnvName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// validMaxAge checks a request's max_age_seconds.
func validMaxAge(v *float64) *api.Error {
	if v != nil && !(*v >= 0) {
		return api.Errorf(api.CodeBadRequest, "max_age_seconds must be 0 or more")
	}
	return nil
}

// maxAge is a request's max_age_seconds as the core takes it: -1 for none
// (or for one beyond any TTL).
func maxAge(v *float64) time.Duration {
	if v == nil || *v > 1e9 {
		return -1
	}
	return time.Duration(*v * float64(time.Second))
}

// decodeBody reads one JSON object of at most api.MaxBodyBytes into v,
// refusing unknown fields and trailing data. The bytes it holds before the
// policy has decided are bounded per process and for the daemon
// (connTable.reserveBody): a request past its process's share is refused
// at once, and its connection closed rather than drained.
func (s *server) decodeBody(w http.ResponseWriter, r *http.Request, v any) *api.Error {
	if r.ContentLength > api.MaxBodyBytes {
		w.Header().Set("Connection", "close")
		return api.Errorf(api.CodeTooLarge, "request body is %d bytes; the limit is %d", r.ContentLength, api.MaxBodyBytes)
	}
	n := r.ContentLength
	if n < 0 {
		n = api.MaxBodyBytes // unknown (chunked): as much as it may be
	}
	var proc *procConns
	if pc, ok := r.Context().Value(peerKey{}).(*peerConn); ok {
		proc = pc.proc
	}
	release, e := s.conns.reserveBody(r.Context(), proc, n)
	if e != nil {
		w.Header().Set("Connection", "close")
		return e
	}
	defer release()
	return decodeBody(w, r, v)
}

// decodeBody is server.decodeBody without the bound on pending bytes.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) *api.Error {
	body := http.MaxBytesReader(w, r.Body, api.MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return api.Errorf(api.CodeTooLarge, "request body is larger than %d bytes", api.MaxBodyBytes)
		}
		return api.Errorf(api.CodeBadRequest, "read request body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return api.Errorf(api.CodeBadRequest, "empty request body; want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return api.Errorf(api.CodeBadRequest, "malformed JSON body: %s", jsonErrorText(err))
	}
	if dec.More() {
		return api.Errorf(api.CodeBadRequest, "malformed JSON body: data after the object")
	}
	return nil
}

// jsonErrorText describes a decode error without quoting the body.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		return strings.TrimPrefix(msg, "json: ")
	}
	return "not a JSON object of the expected shape"
}

func writeError(w http.ResponseWriter, e *api.Error) {
	if e.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(e.RetryAfterSeconds)), 10))
	}
	writeJSON(w, api.HTTPStatus(e.Code), api.ErrorBody{Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encode answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// minSecretAnswer is the least size of an answer that holds secrets: one
// byte more than net/http's per-connection write buffer (4 KiB). With the
// header flushed first and a known Content-Length, net/http hands a body that
// large straight to the TLS connection, which seals it in place, so no copy
// of a value is left in net/http's pooled buffers. Shorter answers are padded
// with spaces after the JSON (which any JSON reader skips).
const minSecretAnswer = 4<<10 + 1

// writeSecretJSON writes an answer that holds secrets in one call from buf,
// and wipes buf.
func writeSecretJSON(w http.ResponseWriter, buf *api.Buf) {
	defer buf.Wipe()
	buf.WriteByte('\n')
	buf.Pad(minSecretAnswer)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if err := http.NewResponseController(w).Flush(); err != nil {
		return
	}
	w.Write(buf.Bytes())
}

// newStdLogger sends net/http's own log lines into zerolog. A failed TLS
// handshake is at debug level: any process of the user can make one per
// connection it opens and drops, and the log should not grow with them.
func newStdLogger(log zerolog.Logger) *stdlog.Logger {
	return stdlog.New(httpLogWriter{log.With().Str("from", "http").Logger()}, "", 0)
}

type httpLogWriter struct{ log zerolog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	ev := w.log.Warn()
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		ev = w.log.Debug()
	}
	ev.Msg(msg)
	return len(p), nil
}
