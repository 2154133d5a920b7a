package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/vega-sec/vega/eventstore"
)

// Append writes events to the stream atomically after checking the expected
// version, as eventstore.Appender documents. It is safe for concurrent use.
// Concurrent calls are committed together (group commit, see
// MaxGroupAppends), each atomic on its own: one call's failure never touches
// another's events. A call whose ctx ends while it is still queued returns
// ctx's error and writes nothing; once the writer has taken it, Append waits
// for the group's commit and reports its outcome. Closing the Store fails
// the calls not yet committed with ErrClosed.
//
// Idempotency follows KurrentDB. When every event ID of the call is already
// stored in this stream, at consecutive versions in the call's order, with the
// same type, schema version, data and metadata (compared in canonical form),
// the call is a repeat: it succeeds with Written false and the versions and
// position of the stored events, if the expected version is Any or
// StreamExists, or names the version just before the stored events (so an
// exact expected version that later appends made stale still succeeds). Any
// other reuse of a stored ID is an *eventstore.IdempotencyError: other
// content, another stream, a partial overlap, another order, or an exact
// expected version that does not describe where the events are.
func (s *Store) Append(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (eventstore.AppendResult, error) {
	data, meta, err := eventstore.ValidateAppend(stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := s.ctx.Err(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, ErrClosed)
	}
	return s.submit(ctx, &appendReq{
		stream: stream, expected: expected, events: events, data: data, meta: meta,
		done: make(chan struct{}),
	})
}

// idTakenError says that an insert hit the UNIQUE constraint on event_id:
// the call is a repeat or an idempotency error, which repeatOrConflict
// decides after the call's savepoint is rolled back.
type idTakenError struct{ actual int64 }

func (e *idTakenError) Error() string { return "event id already stored" }

// appendTx writes one append inside the group's transaction, in its own
// savepoint. It assumes the event IDs are new and lets the UNIQUE constraint
// on event_id say otherwise (*idTakenError), which saves the common case a
// look-up; a version mismatch checks the IDs first, since a repeat wins
// over a conflict.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, r *appendReq) (eventstore.AppendResult, error) {
	var (
		actual int64
		prev   = eventstore.GenesisHash
	)
	err := tx.StmtContext(ctx, s.stmts.head).QueryRowContext(ctx, string(r.stream)).Scan(&actual, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: read version: %w", r.stream, mapErr(ctx, err))
	}
	if !r.expected.Matches(actual) {
		return s.repeatOrConflict(ctx, tx, r, actual)
	}

	recordedAt := eventstore.RecordedTime(time.Now())
	micros := recordedAt.UnixMicro()
	stream, category := string(r.stream), r.stream.Category()
	res := eventstore.AppendResult{FirstVersion: actual + 1, Written: true}
	args := s.args[:0]
	done := 0
	for _, size := range insertPlan(len(r.events)) {
		args = args[:0]
		for i := done; i < done+size; i++ {
			e := r.events[i]
			version := actual + 1 + int64(i)
			content := eventstore.ContentHash(r.stream, e.Type, e.SchemaVersion, r.data[i], r.meta[i], recordedAt)
			hash := eventstore.ChainHash(prev, version, content)
			args = append(args, e.ID, stream, category, version, e.Type, e.SchemaVersion,
				string(e.Data), string(r.meta[i]), micros, prev, hash)
			prev = hash
		}
		stmt := tx.StmtContext(ctx, s.stmts.insert[bits.Len(uint(size))-1])
		out, err := stmt.ExecContext(ctx, args...)
		if err != nil {
			if isUniqueViolation(err) {
				return eventstore.AppendResult{}, &idTakenError{actual: actual}
			}
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: insert versions %d..%d: %w", r.stream, actual+1+int64(done), actual+int64(done+size), mapErr(ctx, err))
		}
		done += size
		if done == len(r.events) {
			seq, err := out.LastInsertId()
			if err != nil {
				return eventstore.AppendResult{}, fmt.Errorf("append to %s: position: %w", r.stream, err)
			}
			// One writer inserts the rows of a statement at consecutive
			// positions; the last one is the call's.
			res.LastVersion, res.Position = actual+int64(done), eventstore.Position{Seq: seq}
		}
	}
	clear(args)
	s.args = args[:0]
	return res, nil
}

// repeatOrConflict decides a call that cannot simply be written: a repeat
// when its IDs are stored (see Append), an *eventstore.IdempotencyError for
// other reuse, and otherwise an *eventstore.ConcurrencyError at actual.
func (s *Store) repeatOrConflict(ctx context.Context, tx *sql.Tx, r *appendReq, actual int64) (eventstore.AppendResult, error) {
	stored, err := storedByID(ctx, tx, r.events)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", r.stream, err)
	}
	if len(stored) > 0 {
		return repeat(r.stream, r.expected, r.events, r.data, r.meta, stored)
	}
	return eventstore.AppendResult{}, &eventstore.ConcurrencyError{Stream: r.stream, Expected: r.expected, Actual: actual}
}

// storedEvent is what the idempotency check needs of an event already stored.
type storedEvent struct {
	stream        eventstore.StreamID
	version       int64
	position      int64
	typ           string
	schemaVersion int
	data          string
	metadata      string
}

func storedByID(ctx context.Context, tx *sql.Tx, events []eventstore.NewEvent) (map[string]storedEvent, error) {
	args := make([]any, len(events))
	for i, e := range events {
		args[i] = e.ID
	}
	q := `SELECT event_id, stream_id, version, position, type, schema_version, data, metadata
		FROM events WHERE event_id IN (?` + strings.Repeat(",?", len(events)-1) + `)`
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("look up event ids: %w", mapErr(ctx, err))
	}
	defer rows.Close()
	out := make(map[string]storedEvent)
	for rows.Next() {
		var (
			id string
			e  storedEvent
		)
		if err := rows.Scan(&id, &e.stream, &e.version, &e.position, &e.typ, &e.schemaVersion, &e.data, &e.metadata); err != nil {
			return nil, fmt.Errorf("look up event ids: %w", mapErr(ctx, err))
		}
		out[id] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up event ids: %w", mapErr(ctx, err))
	}
	return out, nil
}

// repeat decides whether a call whose event IDs are (at least partly) stored
// is an idempotent repeat; see Append.
func repeat(stream eventstore.StreamID, expected eventstore.ExpectedVersion, events []eventstore.NewEvent, data, meta [][]byte, stored map[string]storedEvent) (eventstore.AppendResult, error) {
	idemErr := func(id, format string, args ...any) error {
		return &eventstore.IdempotencyError{Stream: stream, EventID: id, Reason: fmt.Sprintf(format, args...)}
	}
	var first storedEvent
	for i, e := range events {
		got, ok := stored[e.ID]
		if !ok {
			var old string
			for _, o := range events {
				if _, ok := stored[o.ID]; ok {
					old = o.ID
					break
				}
			}
			return eventstore.AppendResult{}, idemErr(e.ID, "new, but the same call reuses event %s written before (partial overlap)", old)
		}
		if got.stream != stream {
			return eventstore.AppendResult{}, idemErr(e.ID, "already written to stream %s", got.stream)
		}
		if i == 0 {
			first = got
		} else if got.version != first.version+int64(i) {
			return eventstore.AppendResult{}, idemErr(e.ID, "already written at version %d, not in the order of this call", got.version)
		}
		if got.typ != e.Type || got.schemaVersion != e.SchemaVersion {
			return eventstore.AppendResult{}, idemErr(e.ID, "already written with type %s schema version %d", got.typ, got.schemaVersion)
		}
		canon, err := eventstore.Canonicalize([]byte(got.data))
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: stored event %s: %w", stream, e.ID, err)
		}
		if !bytes.Equal(canon, data[i]) || got.metadata != string(meta[i]) {
			return eventstore.AppendResult{}, idemErr(e.ID, "already written at version %d with other data or metadata", got.version)
		}
	}
	if expected != eventstore.Any && expected != eventstore.StreamExists && first.version != int64(expected)+1 {
		return eventstore.AppendResult{}, idemErr(events[0].ID, "already written at version %d, which expected version %s does not describe", first.version, expected)
	}
	last := stored[events[len(events)-1].ID]
	return eventstore.AppendResult{
		FirstVersion: first.version,
		LastVersion:  last.version,
		Position:     eventstore.Position{Seq: last.position},
		Written:      false,
	}, nil
}
