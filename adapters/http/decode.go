package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/vega-sec/vega/queries"
)

// MaxJSONBodyBytes is the largest JSON request body accepted (1 MiB); a
// bigger one is answered 413 payload_too_large.
const MaxJSONBodyBytes = 1 << 20

// List limits of API.md: ?limit= is 1 to MaxListLimit, DefaultListLimit
// when absent; anything else is 400.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// decodeJSON reads a JSON object body into dst. An empty body reads as {}.
// A non-empty body must be application/json (415 otherwise), at most
// MaxJSONBodyBytes (413), one JSON value without unknown fields (400).
// Reading it has a deadline of Config.RequestTimeout, so that a client that
// trickles a body cannot hold a handler (http.Server's ReadTimeout would
// also cut SSE streams, so it is not set).
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJSONBodyBytes))
	_ = rc.SetReadDeadline(time.Time{})
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errorf(ErrPayloadTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxJSONBodyBytes))
	case err != nil:
		return invalid("body", "could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	} else if err := requireJSON(r); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return invalid(jsonErrorField(err), jsonErrorReason(err))
	}
	if dec.More() {
		return invalid("body", "must hold one JSON object only")
	}
	return nil
}

// requireJSON refuses a Content-Type other than application/json (with
// an optional charset of utf-8).
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errorf(ErrUnsupportedMediaType, "the body must be application/json")
	}
	if cs, ok := params["charset"]; ok && !equalFoldASCII(cs, "utf-8") {
		return errorf(ErrUnsupportedMediaType, "the body must be UTF-8 JSON")
	}
	return nil
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

func jsonErrorField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field
	}
	if f, ok := unknownField(err); ok {
		return f
	}
	return "body"
}

func jsonErrorReason(err error) string {
	var (
		te *json.UnmarshalTypeError
		se *json.SyntaxError
	)
	switch {
	case errors.As(err, &te):
		return "must be a JSON " + te.Type.Kind().String()
	case errors.As(err, &se):
		return "is not valid JSON"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "is truncated JSON"
	}
	if _, ok := unknownField(err); ok {
		return "is not a known field"
	}
	return "must be a JSON object"
}

// unknownField extracts the name from encoding/json's "json: unknown field
// \"x\"" error.
func unknownField(err error) (string, bool) {
	const p = `json: unknown field "`
	s := err.Error()
	if len(s) > len(p)+1 && s[:len(p)] == p {
		return s[len(p) : len(s)-1], true
	}
	return "", false
}

// listOptions reads ?limit= and ?cursor=.
func listOptions(r *http.Request) (queries.ListOptions, error) {
	q := r.URL.Query()
	o := queries.ListOptions{Limit: DefaultListLimit, Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			return o, invalid("limit", fmt.Sprintf("must be an integer from 1 to %d", MaxListLimit))
		}
		o.Limit = n
	}
	return o, nil
}
