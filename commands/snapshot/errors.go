package snapshot

import (
	"errors"
	"fmt"

	"github.com/vega-sec/vega/domain"
)

// Sentinels of Upload's refusals that are not invalid arguments. The HTTP
// layer maps them with errors.Is; invalid archives come as
// *domain.InvalidArgumentError values (400) via *InvalidArchiveError.
var (
	// ErrTooLarge: the upload is over its byte limit, or the archive is over
	// one of archive.Limits' size limits (entry count, total or entry size,
	// compression ratio). HTTP 413 payload_too_large.
	ErrTooLarge = errors.New("snapshot too large")
	// ErrUnsupportedMediaType: the Content-Type names no archive format
	// Vega reads. HTTP 415 unsupported_media_type.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
)

// TooLargeError reports an upload refused for its size. Limit is the byte
// limit that was passed (0 when an archive limit, named by Err, refused
// it). errors.Is matches ErrTooLarge and, through Err, the archive reason
// (archive.ErrCompressionRatio, …).
type TooLargeError struct {
	Limit int64
	Err   error
}

// Error names the limit or the archive's reason.
func (e *TooLargeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("snapshot too large: %v", e.Err)
	}
	return fmt.Sprintf("snapshot too large: the upload is over %d bytes", e.Limit)
}

// Unwrap returns ErrTooLarge and the cause.
func (e *TooLargeError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrTooLarge}
	}
	return []error{ErrTooLarge, e.Err}
}

// UnsupportedMediaTypeError reports a Content-Type that is neither
// application/gzip (tar.gz) nor application/zip. errors.Is matches
// ErrUnsupportedMediaType.
type UnsupportedMediaTypeError struct {
	ContentType string
}

// Error names the refused type and the accepted ones.
func (e *UnsupportedMediaTypeError) Error() string {
	return fmt.Sprintf("unsupported media type %q: upload application/gzip (a tar.gz) or application/zip", e.ContentType)
}

// Unwrap returns ErrUnsupportedMediaType.
func (e *UnsupportedMediaTypeError) Unwrap() error { return ErrUnsupportedMediaType }

// InvalidArchiveError reports an archive refused by archive.Normalize for
// its content (a link, a ".." path, a corrupt stream, …). errors.As finds a
// *domain.InvalidArgumentError with Field "archive" whose Reason is the
// archive's client-safe message (HTTP 400), and errors.Is matches the
// archive reason (archive.ErrLink, …).
type InvalidArchiveError struct {
	Err error // the *archive.Error
}

// Error returns the archive's message.
func (e *InvalidArchiveError) Error() string { return "invalid archive: " + e.Err.Error() }

// Unwrap returns a *domain.InvalidArgumentError for field "archive" and the
// archive error.
func (e *InvalidArchiveError) Unwrap() []error {
	return []error{&domain.InvalidArgumentError{Field: "archive", Reason: e.Err.Error()}, e.Err}
}
