package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// Errors of the HTTP layer itself. Handlers return them (wrapped or not);
// writeError maps them, with the domain's kinds, to a status and an error
// code in one place.
var (
	// ErrUnauthenticated: no credentials, or a token that is unknown,
	// revoked or expired (401 unauthenticated).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the caller sees the object but its role is too weak,
	// or the route is for admins only (403 forbidden).
	ErrForbidden = errors.New("forbidden")
	// ErrPayloadTooLarge: the body is over the route's limit (413).
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrUnsupportedMediaType: the body is not of the route's content
	// type (415).
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrRateLimited: a cap on connections was reached (429).
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: a dependency does not answer, or the request ran
	// out of time (503).
	ErrUnavailable = errors.New("unavailable")
)

// Error codes of API.md.
const (
	CodeInvalidArgument      = "invalid_argument"
	CodeUnauthenticated      = "unauthenticated"
	CodeForbidden            = "forbidden"
	CodeNotFound             = "not_found"
	CodeConflict             = "conflict"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeRateLimited          = "rate_limited"
	CodeInternal             = "internal"
	CodeUnavailable          = "unavailable"
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error of an ErrorBody. Field names the offending input
// of an invalid_argument error, when known (an extension of API.md).
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// notFoundError is a 404 with a fixed message, so that "does not exist"
// and "you may not see it" read the same.
type notFoundError struct{ what string }

func (e *notFoundError) Error() string        { return e.what + " not found" }
func (e *notFoundError) Is(target error) bool { return target == domain.ErrNotFound }

// notFound reports that an object of kind what does not exist or is not
// visible to the caller.
func notFound(what string) error { return &notFoundError{what: what} }

// statusError is an error of this package with a message for the client.
type statusError struct {
	kind error
	msg  string
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.kind }

// errorf returns an error of kind (one of the Err sentinels of this
// package) whose message is shown to the client as is.
func errorf(kind error, msg string) error { return &statusError{kind: kind, msg: msg} }

// invalid returns an *domain.InvalidArgumentError for field.
func invalid(field, reason string) error {
	return &domain.InvalidArgumentError{Field: field, Reason: reason}
}

// errorDetail maps err to a status, an error code, the message the client may
// see and the field of an invalid argument. Internal errors get a generic
// message: their text may hold driver messages and is only logged.
//
// Besides the domain's kinds and this package's sentinels, it maps the
// typed refusals of the upload services, whose messages are written for
// clients: snapshot.ErrTooLarge and sarif.ErrTooLarge 413,
// snapshot.ErrUnsupportedMediaType 415, *sarif.InvalidError 400 (field
// "body"); *snapshot.InvalidArchiveError is an *domain.InvalidArgumentError
// (400, field "archive").
func errorDetail(err error) (status int, detail ErrorDetail) {
	var (
		ia  *domain.InvalidArgumentError
		nf  *notFoundError
		se  *statusError
		si  *sarif.InvalidError
		stl *snapshot.TooLargeError
		xtl *sarif.TooLargeError
		um  *snapshot.UnsupportedMediaTypeError
	)
	msg := func(fallback string) string {
		if errors.As(err, &se) {
			return se.msg
		}
		return fallback
	}
	switch {
	case errors.As(err, &ia):
		return http.StatusBadRequest, ErrorDetail{Code: CodeInvalidArgument, Message: ia.Error(), Field: ia.Field}
	case errors.As(err, &si):
		return http.StatusBadRequest, ErrorDetail{Code: CodeInvalidArgument, Message: si.Error(), Field: "body"}
	case errors.As(err, &stl):
		return http.StatusRequestEntityTooLarge, ErrorDetail{Code: CodePayloadTooLarge, Message: stl.Error()}
	case errors.As(err, &xtl):
		return http.StatusRequestEntityTooLarge, ErrorDetail{Code: CodePayloadTooLarge, Message: xtl.Error()}
	case errors.As(err, &um):
		return http.StatusUnsupportedMediaType, ErrorDetail{Code: CodeUnsupportedMediaType, Message: um.Error()}
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized, ErrorDetail{Code: CodeUnauthenticated, Message: msg("a valid bearer token is required")}
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, ErrorDetail{Code: CodeForbidden, Message: msg("your role does not allow this")}
	case errors.As(err, &nf):
		return http.StatusNotFound, ErrorDetail{Code: CodeNotFound, Message: nf.Error()}
	case errors.Is(err, domain.ErrNotFound):
		return http.StatusNotFound, ErrorDetail{Code: CodeNotFound, Message: msg("not found")}
	case errors.Is(err, domain.ErrConflict), errors.Is(err, eventstore.ErrConcurrency):
		return http.StatusConflict, ErrorDetail{Code: CodeConflict, Message: conflictMessage(err)}
	case errors.Is(err, ErrPayloadTooLarge), errors.Is(err, snapshot.ErrTooLarge), errors.Is(err, sarif.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, ErrorDetail{Code: CodePayloadTooLarge, Message: msg("the body is too large")}
	case errors.Is(err, ErrUnsupportedMediaType), errors.Is(err, snapshot.ErrUnsupportedMediaType):
		return http.StatusUnsupportedMediaType, ErrorDetail{Code: CodeUnsupportedMediaType, Message: msg("unsupported content type")}
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests, ErrorDetail{Code: CodeRateLimited, Message: msg("too many requests")}
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, ErrorDetail{Code: CodeUnavailable, Message: msg("service unavailable")}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, ErrorDetail{Code: CodeUnavailable, Message: "the request took too long"}
	}
	return http.StatusInternalServerError, ErrorDetail{Code: CodeInternal, Message: "internal error"}
}

// conflictMessage is the message of a 409: the domain's own text names the
// states or the object (never a driver message: conflicts are decided by
// the domain or by the store's typed ConcurrencyError).
func conflictMessage(err error) string {
	var te *domain.TransitionError
	if errors.As(err, &te) {
		return te.Error()
	}
	if errors.Is(err, eventstore.ErrConcurrency) {
		return "the object changed concurrently; retry"
	}
	return err.Error()
}

// writeError answers with err's status and error body. Internal errors
// (500) are logged with the request's ID; nothing of their text is sent.
// A canceled request (the client went away) is answered but not logged.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, detail := errorDetail(err)
	if status == http.StatusInternalServerError && !errors.Is(err, context.Canceled) {
		log.ErrorContext(r.Context(), "internal error", "request_id", RequestIDFromContext(r.Context()),
			"method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, ErrorBody{Error: detail})
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
