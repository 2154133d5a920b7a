// Package deadletters keeps the messages that bus consumers gave up on in the
// dead_letters table of the event store's database (PostgreSQL or SQLite;
// the stores' migrations create it). It implements nats.DeadLetterStore.
package deadletters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	vnats "github.com/vega-sec/vega/adapters/nats"
)

var _ vnats.DeadLetterStore = (*Store)(nil)

// MaxList caps one List call.
const MaxList = 1000

// Store is the dead-letter table. It is safe for concurrent use.
type Store struct {
	db *sql.DB
}

// New returns a store over db, which must reach the table: the SQLite store's
// DB(), or a database/sql handle on the PostgreSQL schema.
func New(db *sql.DB) *Store { return &Store{db: db} }

// NewPostgres returns a store over a pgx pool (shared, not owned).
func NewPostgres(pool *pgxpool.Pool) *Store { return New(stdlib.OpenDBFromPool(pool)) }

// Park implements nats.DeadLetters; parking the same (consumer, stream
// sequence) again succeeds without a second row.
func (s *Store) Park(ctx context.Context, dl vnats.DeadLetter) error {
	// $1…$9 in order, each once: both PostgreSQL and SQLite bind them by
	// position.
	_, err := s.db.ExecContext(ctx, `INSERT INTO dead_letters
		(id, consumer, subject, stream_seq, event_id, data, error, deliveries, parked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (consumer, stream_seq) DO NOTHING`,
		dl.ID, dl.Consumer, dl.Subject, int64(dl.StreamSeq), dl.EventID, nonNil(dl.Data), dl.Error, dl.Deliveries, dl.ParkedAt.UTC().UnixMicro())
	if err != nil {
		return fmt.Errorf("park dead letter %s/%d: %w", dl.Consumer, dl.StreamSeq, err)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// List implements nats.DeadLetterStore: oldest first, at most limit
// (capped at MaxList).
func (s *Store) List(ctx context.Context, limit int) ([]vnats.DeadLetter, error) {
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, consumer, subject, stream_seq, event_id, data, error, deliveries, parked_at
		FROM dead_letters ORDER BY parked_at, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	var out []vnats.DeadLetter
	for rows.Next() {
		var dl vnats.DeadLetter
		var seq, parked int64
		if err := rows.Scan(&dl.ID, &dl.Consumer, &dl.Subject, &seq, &dl.EventID, &dl.Data, &dl.Error, &dl.Deliveries, &parked); err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		dl.StreamSeq = uint64(seq)
		dl.ParkedAt = time.UnixMicro(parked).UTC()
		out = append(out, dl)
	}
	return out, rows.Err()
}

// ErrNotFound is returned by Get for an ID that is not parked.
var ErrNotFound = errors.New("no such dead letter")

// Get returns one parked message by ID (ErrNotFound when there is none).
func (s *Store) Get(ctx context.Context, id string) (vnats.DeadLetter, error) {
	var dl vnats.DeadLetter
	var seq, parked int64
	err := s.db.QueryRowContext(ctx, `SELECT id, consumer, subject, stream_seq, event_id, data, error, deliveries, parked_at
		FROM dead_letters WHERE id = $1`, id).Scan(&dl.ID, &dl.Consumer, &dl.Subject, &seq, &dl.EventID, &dl.Data, &dl.Error, &dl.Deliveries, &parked)
	if errors.Is(err, sql.ErrNoRows) {
		return dl, fmt.Errorf("dead letter %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return dl, fmt.Errorf("get dead letter %s: %w", id, err)
	}
	dl.StreamSeq = uint64(seq)
	dl.ParkedAt = time.UnixMicro(parked).UTC()
	return dl, nil
}

// Delete implements nats.DeadLetterStore.
func (s *Store) Delete(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM dead_letters WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete dead letter %s: %w", id, err)
	}
	return nil
}
