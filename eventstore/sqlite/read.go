package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/vega-sec/vega/eventstore"
)

const eventColumns = `position, event_id, stream_id, version, type, schema_version, data, metadata, recorded_at, prev_hash, hash`

// ReadStream returns up to limit events of the stream with versions >= from,
// in version order (limit <= 0 means eventstore.DefaultReadLimit). A stream
// without events gives an empty slice. It fails with ErrInvalid for a
// malformed stream ID.
func (s *Store) ReadStream(ctx context.Context, stream eventstore.StreamID, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	if err := stream.Validate(); err != nil {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	if err := s.ctx.Err(); err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, ErrClosed)
	}
	if limit <= 0 {
		limit = eventstore.DefaultReadLimit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventColumns+` FROM events
		WHERE stream_id = ? AND version >= ? ORDER BY version LIMIT ?`, string(stream), from, limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, mapErr(ctx, err))
	}
	evs, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, mapErr(ctx, err))
	}
	return evs, nil
}

// ReadAll returns up to q.Limit events after q.After in global order, and
// the position to resume from (see eventstore.AllReader). A page shorter than
// the limit resumes from the head seen by the same read transaction, so a
// filtered reader does not rescan what its filters skipped. Positions from
// another store (Tx != 0) fail with ErrInvalid.
func (s *Store) ReadAll(ctx context.Context, q eventstore.Query) ([]eventstore.RecordedEvent, eventstore.Position, error) {
	if q.After.Tx != 0 || q.After.Seq < 0 {
		return nil, q.After, fmt.Errorf("read all after %s: %w: not a position of a SQLite store", q.After, eventstore.ErrInvalid)
	}
	if err := s.ctx.Err(); err != nil {
		return nil, q.After, fmt.Errorf("read all: %w", ErrClosed)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = eventstore.DefaultReadLimit
	}
	var (
		where strings.Builder
		args  = []any{q.After.Seq}
	)
	where.WriteString("position > ?")
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		where.WriteString(" AND " + col + " IN (?" + strings.Repeat(",?", len(vals)-1) + ")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	in("category", q.Categories)
	in("type", q.Types)
	args = append(args, limit)

	// One read transaction: the page and the head it resumes from come from
	// the same snapshot.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, q.After, fmt.Errorf("read all after %s: %w", q.After, mapErr(ctx, err))
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE `+where.String()+` ORDER BY position LIMIT ?`, args...)
	if err != nil {
		return nil, q.After, fmt.Errorf("read all after %s: %w", q.After, mapErr(ctx, err))
	}
	evs, err := scanEvents(rows)
	if err != nil {
		return nil, q.After, fmt.Errorf("read all after %s: %w", q.After, mapErr(ctx, err))
	}
	next := q.After
	if len(evs) > 0 {
		next = evs[len(evs)-1].Position
	}
	if len(evs) < limit {
		var head int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&head); err != nil {
			return nil, q.After, fmt.Errorf("read all after %s: head: %w", q.After, mapErr(ctx, err))
		}
		if head > next.Seq {
			next = eventstore.Position{Seq: head}
		}
	}
	return evs, next, nil
}

// Head returns the position of the last committed event, or the zero
// Position for an empty store.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	if err := s.ctx.Err(); err != nil {
		return eventstore.Position{}, fmt.Errorf("head: %w", ErrClosed)
	}
	head, err := s.readHead(ctx)
	if err != nil {
		return eventstore.Position{}, err
	}
	s.raiseHead(head)
	return eventstore.Position{Seq: head}, nil
}

// Wait blocks until an event after the position is committed, ctx ends
// (returning ctx.Err()) or the Store is closed (ErrClosed). Appends through
// this Store wake it at once; another process's appends within the poll
// interval.
func (s *Store) Wait(ctx context.Context, after eventstore.Position) error {
	for {
		ch := s.changedCh()
		if after.Less(eventstore.Position{Seq: s.head.Load()}) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return fmt.Errorf("wait: %w", ErrClosed)
		}
	}
}

// Read buffers. A page is scanned into chunks of scanChunk events and
// copied once into a slice of the exact length, so that a large page never
// regrows (and a short one never allocates for the limit); data and hashes
// are copied into shared slabs of slabSize bytes rather than one allocation
// each.
const (
	scanChunk = 512
	slabSize  = 64 << 10
)

// slab hands out byte slices copied into large shared blocks. Each slice is
// capped at its length, so appending to one never writes into another.
type slab struct{ buf []byte }

func (s *slab) copy(b []byte) []byte {
	if len(b) > slabSize/4 {
		return append([]byte(nil), b...)
	}
	if cap(s.buf)-len(s.buf) < len(b) {
		s.buf = make([]byte, 0, slabSize)
	}
	start := len(s.buf)
	s.buf = append(s.buf, b...)
	return s.buf[start:len(s.buf):len(s.buf)]
}

func scanEvents(rows *sql.Rows) ([]eventstore.RecordedEvent, error) {
	defer rows.Close()
	var (
		chunks [][]eventstore.RecordedEvent
		cur    []eventstore.RecordedEvent
		n      int
		bytes  slab

		stream, typ        string
		data, meta, ph, h  sql.RawBytes
		recordedAt         int64
		lastMeta           []byte // the raw metadata lastMD was decoded from
		lastMD             eventstore.Metadata
		lastStream, lastTy string
	)
	for rows.Next() {
		if len(cur) == cap(cur) {
			if cur != nil {
				chunks = append(chunks, cur)
			}
			cur = make([]eventstore.RecordedEvent, 0, scanChunk)
		}
		cur = cur[:len(cur)+1]
		e := &cur[len(cur)-1]
		if err := rows.Scan(&e.Position.Seq, &e.ID, &stream, &e.Version, &typ, &e.SchemaVersion,
			&data, &meta, &recordedAt, &ph, &h); err != nil {
			return nil, err
		}
		// Consecutive events usually share a stream, a type and metadata
		// (one command's events): keep the previous row's values, so the
		// page holds one copy of each and decodes the metadata once.
		if stream != lastStream {
			lastStream = stream
		}
		if typ != lastTy {
			lastTy = typ
		}
		e.StreamID, e.Type = eventstore.StreamID(lastStream), lastTy
		e.Data = bytes.copy(data)
		if lastMeta == nil || string(meta) != string(lastMeta) {
			md, err := eventstore.DecodeMetadata(meta)
			if err != nil {
				return nil, fmt.Errorf("event %s: metadata: %w", e.ID, err)
			}
			lastMD, lastMeta = md, append(lastMeta[:0], meta...)
		}
		e.Metadata = lastMD
		e.RecordedAt = time.UnixMicro(recordedAt).UTC()
		e.PrevHash, e.Hash = bytes.copy(ph), bytes.copy(h)
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(chunks) == 0 {
		if cur == nil {
			return []eventstore.RecordedEvent{}, nil
		}
		return cur, nil
	}
	evs := make([]eventstore.RecordedEvent, 0, n)
	for _, c := range chunks {
		evs = append(evs, c...)
	}
	return append(evs, cur...), nil
}
