package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vega-sec/vega/eventstore"
)

// Append writes events to the stream atomically after checking the expected
// version, as eventstore.Appender documents. It is safe for concurrent use;
// appends queue on the single writer connection.
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
	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: see _txlock in Open
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: begin: %w", stream, mapErr(ctx, err))
	}
	res, err := s.appendTx(ctx, tx, stream, expected, events, data, meta)
	if err != nil || !res.Written {
		_ = tx.Rollback()
		return res, err
	}
	if err := tx.Commit(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: commit: %w", stream, mapErr(ctx, err))
	}
	s.raiseHead(res.Position.Seq)
	return res, nil
}

func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events []eventstore.NewEvent, data, meta [][]byte) (eventstore.AppendResult, error) {
	stored, err := storedByID(ctx, tx, events)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	if len(stored) > 0 {
		return repeat(stream, expected, events, data, meta, stored)
	}

	var (
		actual int64
		prev   = eventstore.GenesisHash
	)
	err = tx.QueryRowContext(ctx, `SELECT version, hash FROM events WHERE stream_id = ? ORDER BY version DESC LIMIT 1`, string(stream)).Scan(&actual, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: read version: %w", stream, mapErr(ctx, err))
	}
	if !expected.Matches(actual) {
		return eventstore.AppendResult{}, &eventstore.ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
	}

	ins, err := tx.PrepareContext(ctx, `INSERT INTO events
		(event_id, stream_id, category, version, type, schema_version, data, metadata, recorded_at, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: prepare: %w", stream, mapErr(ctx, err))
	}
	defer ins.Close()
	recordedAt := eventstore.RecordedTime(time.Now())
	res := eventstore.AppendResult{FirstVersion: actual + 1, Written: true}
	for i, e := range events {
		version := actual + 1 + int64(i)
		content := eventstore.ContentHash(stream, e.Type, e.SchemaVersion, data[i], meta[i], recordedAt)
		hash := eventstore.ChainHash(prev, version, content)
		r, err := ins.ExecContext(ctx, e.ID, string(stream), stream.Category(), version, e.Type, e.SchemaVersion,
			string(e.Data), string(meta[i]), recordedAt.UnixMicro(), prev, hash)
		if err != nil {
			if isUniqueViolation(err) {
				// Unreachable while this connection holds the write lock
				// from BEGIN IMMEDIATE; kept so a constraint never leaks
				// as driver text.
				return eventstore.AppendResult{}, &eventstore.ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
			}
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: insert version %d: %w", stream, version, mapErr(ctx, err))
		}
		seq, err := r.LastInsertId()
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: position: %w", stream, err)
		}
		res.LastVersion, res.Position = version, eventstore.Position{Seq: seq}
		prev = hash
	}
	return res, nil
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
