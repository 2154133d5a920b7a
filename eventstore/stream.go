package eventstore

import (
	"fmt"
	"strings"

	"github.com/oklog/ulid/v2"
)

// MaxStreamIDLength is the longest stream ID a store accepts.
const MaxStreamIDLength = 200

// StreamID names one stream: "<category>-<id>", for example "scan-01J…". The
// category is everything before the first '-': lower-case ASCII letters,
// digits and '_', starting with a letter. The id is 1 or more characters of
// [A-Za-z0-9._:-].
type StreamID string

// NewStreamID returns "<category>-<id>". It does not validate; use Validate.
func NewStreamID(category, id string) StreamID {
	return StreamID(category + "-" + id)
}

// NewStreamIDULID returns a stream ID of the category with a fresh ULID.
func NewStreamIDULID(category string) StreamID {
	return NewStreamID(category, ulid.Make().String())
}

// Category returns the part before the first '-', or "" when there is none.
func (s StreamID) Category() string {
	c, _, ok := strings.Cut(string(s), "-")
	if !ok {
		return ""
	}
	return c
}

// ID returns the part after the first '-'.
func (s StreamID) ID() string {
	_, id, _ := strings.Cut(string(s), "-")
	return id
}

// String returns the stream ID as text.
func (s StreamID) String() string { return string(s) }

// Validate reports whether s is a well-formed stream ID; the error names what
// is wrong and wraps ErrInvalid.
func (s StreamID) Validate() error {
	if s == "" {
		return invalidf("stream id is empty")
	}
	if len(s) > MaxStreamIDLength {
		return invalidf("stream id %.40q… is longer than %d bytes", s, MaxStreamIDLength)
	}
	cat, id, ok := strings.Cut(string(s), "-")
	if !ok || cat == "" || id == "" {
		return invalidf("stream id %q is not <category>-<id>", s)
	}
	for i, r := range cat {
		switch {
		case r >= 'a' && r <= 'z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_'):
		default:
			return invalidf("stream id %q: category must be lower-case letters, digits and '_', starting with a letter", s)
		}
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == ':', r == '-':
		default:
			return invalidf("stream id %q: id has the character %q", s, r)
		}
	}
	return nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
