package eventstore

import (
	"encoding/json"
	"errors"
	"fmt"
)

var (
	// ErrConcurrency is matched (errors.Is) by every *ConcurrencyError.
	ErrConcurrency = errors.New("wrong expected version")
	// ErrDuplicateEvent is matched by every *IdempotencyError.
	ErrDuplicateEvent = errors.New("event id already used")
	// ErrInvalid is matched by errors for arguments a store refuses before
	// it writes anything: bad stream IDs, event IDs, types, data, limits.
	ErrInvalid = errors.New("invalid append")
	// ErrUnknownEvent is returned by a Registry for an unregistered type.
	ErrUnknownEvent = errors.New("unknown event type")
)

// ConcurrencyError says that a stream's version was not what Append expected.
type ConcurrencyError struct {
	Stream   StreamID
	Expected ExpectedVersion
	// Actual is the stream's last version when the conflict was seen (0: none).
	Actual int64
}

func (e *ConcurrencyError) Error() string {
	return fmt.Sprintf("append to %s: expected version %s, stream is at %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConcurrency) true.
func (e *ConcurrencyError) Is(target error) bool { return target == ErrConcurrency }

// IdempotencyError says that an Append reused event IDs that were written
// before with other content, at another place, or only in part.
type IdempotencyError struct {
	Stream  StreamID
	EventID string
	Reason  string
}

func (e *IdempotencyError) Error() string {
	return fmt.Sprintf("append to %s: event %s: %s", e.Stream, e.EventID, e.Reason)
}

// Is makes errors.Is(err, ErrDuplicateEvent) true.
func (e *IdempotencyError) Is(target error) bool { return target == ErrDuplicateEvent }

func canonicalJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return Canonicalize(b)
}
