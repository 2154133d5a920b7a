package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vega-sec/vega/eventstore"
)

// LoadCheckpoint implements eventstore.Checkpoints.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (eventstore.Position, error) {
	var p eventstore.Position
	var tx int64
	err := s.pool.QueryRow(ctx, `SELECT transaction_id, position FROM checkpoints WHERE name = $1`, name).Scan(&tx, &p.Seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Position{}, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("load checkpoint %s: %w", name, err)
	}
	p.Tx = uint64(tx)
	return p, nil
}

// SaveCheckpoint implements eventstore.Checkpoints.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, pos eventstore.Position) error {
	return SaveCheckpointTx(ctx, s.pool, name, pos)
}

// Execer is what SaveCheckpointTx needs: a pool, a connection or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// SaveCheckpointTx records a checkpoint through db, which may be the
// transaction that also wrote what the checkpoint covers.
func SaveCheckpointTx(ctx context.Context, db Execer, name string, pos eventstore.Position) error {
	_, err := db.Exec(ctx, `INSERT INTO checkpoints (name, transaction_id, position, updated_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (name) DO UPDATE SET transaction_id = excluded.transaction_id, position = excluded.position, updated_at = now()`,
		name, int64(pos.Tx), pos.Seq)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	return nil
}

// Lead implements eventstore.Leader with a session-level advisory lock held
// on a connection taken out of the pool for as long as fn runs. The lock key
// is derived from the schema and the name. A heartbeat on that connection
// cancels fn's context when the session dies (and with it the lock).
func (s *Store) Lead(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	key := "vega.lead." + s.schema + "." + name
	for {
		held, err := s.tryLead(ctx, key, fn)
		if held || ctx.Err() != nil {
			if ctx.Err() != nil && err == nil {
				err = ctx.Err()
			}
			return err
		}
		if err != nil {
			s.log.Warn("postgres: leader lock attempt failed", "name", name, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.opts.LeaderRetry):
		}
	}
}

func (s *Store) tryLead(ctx context.Context, key string, fn func(ctx context.Context) error) (held bool, err error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, key).Scan(&ok); err != nil {
		return false, err
	}
	if !ok {
		return false, nil
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.opts.LeaderHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if _, err := conn.Exec(runCtx, `SELECT 1`); err != nil && runCtx.Err() == nil {
					cancel(fmt.Errorf("leader lock %s lost: %w", key, err))
					return
				}
			}
		}
	}()
	err = fn(runCtx)
	cancel(nil)
	<-done
	// Closing the session (deferred) releases the lock; unlock first so a
	// connection that survives is clean either way.
	_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key)
	return true, err
}
