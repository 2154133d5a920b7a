package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/vega-sec/vega/eventstore"
)

// LoadCheckpoint returns the position saved for the name, or the zero
// Position when none was saved. It is safe for concurrent use.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (eventstore.Position, error) {
	if name == "" {
		return eventstore.Position{}, fmt.Errorf("load checkpoint: %w: empty name", eventstore.ErrInvalid)
	}
	if err := s.ctx.Err(); err != nil {
		return eventstore.Position{}, fmt.Errorf("load checkpoint %s: %w", name, ErrClosed)
	}
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT position FROM checkpoints WHERE name = ?`, name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Position{}, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("load checkpoint %s: %w", name, mapErr(ctx, err))
	}
	return eventstore.Position{Seq: seq}, nil
}

// SaveCheckpoint records the position for the name, replacing any earlier
// one. Positions of another store (Tx != 0) fail with ErrInvalid. It is safe
// for concurrent use.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, pos eventstore.Position) error {
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, ErrClosed)
	}
	return SaveCheckpointTx(ctx, s.w, name, pos)
}

// Execer is what SaveCheckpointTx needs: a *sql.Tx of Store.DB(), or the
// *sql.DB itself.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// SaveCheckpointTx records the position for the name through db, usually a
// transaction on Store.DB() that also writes the read model the checkpoint
// covers, so that both commit or neither does. Positions of another store
// (Tx != 0) and empty names fail with ErrInvalid.
func SaveCheckpointTx(ctx context.Context, db Execer, name string, pos eventstore.Position) error {
	if name == "" {
		return fmt.Errorf("save checkpoint: %w: empty name", eventstore.ErrInvalid)
	}
	if pos.Tx != 0 || pos.Seq < 0 {
		return fmt.Errorf("save checkpoint %s: %w: %s is not a position of a SQLite store", name, eventstore.ErrInvalid, pos)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO checkpoints (name, position) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position`, name, pos.Seq); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, mapErr(ctx, err))
	}
	return nil
}

// Lead runs fn while holding the named lock, as eventstore.Leader documents.
// One process owns the SQLite file, so the lock is a mutex within this
// process: it excludes other Lead calls on this Store, not other processes.
// fn's context ends when ctx does or the Store closes. Lead returns ctx's
// error if ctx ends before the lock is taken, and fn's error otherwise.
func (s *Store) Lead(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	s.leadMu.Lock()
	lock, ok := s.leads[name]
	if !ok {
		lock = make(chan struct{}, 1)
		s.leads[name] = lock
	}
	s.leadMu.Unlock()

	select {
	case lock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("lead %s: %w", name, ctx.Err())
	case <-s.ctx.Done():
		return fmt.Errorf("lead %s: %w", name, ErrClosed)
	}
	defer func() { <-lock }()

	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	return fn(fctx)
}
