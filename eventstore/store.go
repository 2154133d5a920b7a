package eventstore

import (
	"context"
)

// Appender writes events to one stream. See the package documentation for
// the contract: atomic, expected version, idempotent by event ID.
//
// Append returns *ConcurrencyError (errors.Is ErrConcurrency) when the stream
// is not at the expected version, *IdempotencyError (ErrDuplicateEvent) for
// reused event IDs that do not describe the same write, and an error matching
// ErrInvalid for arguments it refuses. It is safe for concurrent use.
type Appender interface {
	Append(ctx context.Context, stream StreamID, expected ExpectedVersion, events ...NewEvent) (AppendResult, error)
}

// StreamReader reads one stream forward.
type StreamReader interface {
	// ReadStream returns up to limit events of the stream with versions >=
	// from, in version order. A stream without events gives an empty slice.
	ReadStream(ctx context.Context, stream StreamID, from int64, limit int) ([]RecordedEvent, error)
}

// Query selects events of the global order.
type Query struct {
	// After is exclusive: the read starts with the first event after it.
	After Position
	// Categories and Types, when not empty, keep only events whose stream
	// category, or whose type, is one of them.
	Categories []string
	Types      []string
	// Limit caps the events returned; 0 or less means DefaultReadLimit.
	Limit int
}

// DefaultReadLimit is the page size of ReadAll when a Query sets none.
const DefaultReadLimit = 1000

// AllReader reads the global order.
type AllReader interface {
	// ReadAll returns up to q.Limit events after q.After, in global order,
	// and the position to resume from: the last event's, or, when filters
	// skipped events, a later one up to which nothing else matched. It never
	// returns an event while an earlier one (in that order) may still
	// commit, so a reader that resumes from next never skips a committed
	// event and never sees one twice.
	ReadAll(ctx context.Context, q Query) (events []RecordedEvent, next Position, err error)
}

// Waiter wakes readers of the global order.
type Waiter interface {
	// Wait blocks until events may exist after the position, or ctx ends
	// (returning ctx.Err()). It may return early without new events; callers
	// read and wait again.
	Wait(ctx context.Context, after Position) error
}

// Store is an event store: everything the rest of Vega needs of one.
type Store interface {
	Appender
	StreamReader
	AllReader
	Waiter
	// Head returns the position of the last event in the global order that
	// ReadAll would return now (the zero Position for an empty store).
	Head(ctx context.Context) (Position, error)
	// Close releases the store's resources; it waits for nothing else.
	Close() error
}

// Checkpoints keeps named positions in the global order (the relay's,
// each projection's) in the store itself, so a checkpoint and the writes it
// covers can share a database. Names are permanent IDs: renaming one starts
// it from zero.
type Checkpoints interface {
	// LoadCheckpoint returns the saved position, or the zero Position when
	// none was saved.
	LoadCheckpoint(ctx context.Context, name string) (Position, error)
	// SaveCheckpoint records the position for the name.
	SaveCheckpoint(ctx context.Context, name string, pos Position) error
}

// Leader runs work that must have one active instance across processes.
type Leader interface {
	// Lead blocks until this process holds the named lock (or ctx ends), then
	// runs fn with a context that is cancelled if the lock is lost, releases
	// the lock when fn returns, and returns fn's error. On PostgreSQL the lock
	// is a session advisory lock; on SQLite, where one process owns the
	// file, a lock within the process.
	Lead(ctx context.Context, name string, fn func(ctx context.Context) error) error
}
