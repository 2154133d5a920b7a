package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vega-sec/vega/eventstore"
)

// swapTimeout bounds the clean-up of a failed rebuild's tables.
const swapTimeout = 30 * time.Second

// Rebuild rebuilds the named projection from position zero into a new
// generation of tables while the live one keeps serving (its Status state
// is StateRebuilding meanwhile), then, holding the live projection still,
// applies what arrived since and swaps the new tables in, in one
// transaction: the views queries read point at them, the old generation is
// dropped, and the checkpoint moves to where the rebuild got. A failed
// projection resumes live from there. It blocks until the swap (or an
// error: the new tables are then dropped and the live projection is left
// as it was). It returns ErrUnknownProjection, ErrRebuildInProgress, ctx's
// error, or an error naming the event the rebuild could not apply.
//
// Another process may rebuild while this one's Runner runs: the runner
// notices the new generation through its checkpoint's compare-and-set. Two
// rebuilds of one projection at once in different processes are not
// supported.
func (r *Runner) Rebuild(ctx context.Context, name string) error {
	_, err := r.rebuild(ctx, name)
	return err
}

// rebuild is Rebuild; it also returns the number of events applied.
func (r *Runner) rebuild(ctx context.Context, name string) (applied int, err error) {
	w, ok := r.byName[name]
	if !ok {
		return 0, fmt.Errorf("rebuild %q: %w", name, ErrUnknownProjection)
	}
	w.mu.Lock()
	if w.rebuilding {
		w.mu.Unlock()
		return 0, fmt.Errorf("rebuild %s: %w", name, ErrRebuildInProgress)
	}
	w.rebuilding, w.rebuildPos = true, eventstore.Position{}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.rebuilding = false
		w.mu.Unlock()
	}()

	gen, err := r.prepareRebuild(ctx, w)
	if err != nil {
		return 0, fmt.Errorf("rebuild %s: %w", name, err)
	}
	swapped := false
	defer func() {
		if !swapped {
			r.abandonRebuild(context.WithoutCancel(ctx), w, gen)
		}
	}()
	b := newBinder(r.cfg.Dialect, w.p, gen)
	pos, n, err := r.catchUp(ctx, w, gen, b, eventstore.Position{})
	if err != nil {
		return 0, fmt.Errorf("rebuild %s: %w", name, err)
	}

	if err := r.indexRebuild(ctx, w.p, gen); err != nil {
		return 0, fmt.Errorf("rebuild %s: %w", name, err)
	}
	if n >= AnalyzeAfter {
		if err := r.analyze(ctx, w.p, gen); err != nil {
			return 0, fmt.Errorf("rebuild %s: %w", name, err)
		}
	}

	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	pos, m, err := r.catchUp(ctx, w, gen, b, pos)
	if err != nil {
		return 0, fmt.Errorf("rebuild %s: %w", name, err)
	}
	if err := r.swap(ctx, w, gen, pos); err != nil {
		return 0, fmt.Errorf("rebuild %s: %w", name, err)
	}
	swapped = true
	w.mu.Lock()
	w.gen, w.b, w.pos, w.state, w.failure, w.storedVersion = gen, b, pos, StateLive, nil, w.p.version
	w.mu.Unlock()
	r.m.failed.WithLabelValues(name).Set(0)
	r.m.position.WithLabelValues(name).Set(float64(pos.Seq))
	select {
	case w.reset <- struct{}{}:
	default:
	}
	r.changed.fire()
	r.log.Info("projection rebuilt", "projection", name, "generation", gen, "position", pos.String(), "events", n+m)
	return n + m, nil
}

// prepareRebuild creates the tables of the next generation and records them
// as the rebuild's, dropping those of an earlier rebuild that never
// finished.
func (r *Runner) prepareRebuild(ctx context.Context, w *worker) (int64, error) {
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var (
		gen   int64
		stale sql.NullInt64
	)
	if err := tx.QueryRowContext(ctx, r.cfg.Dialect.Rebind(`SELECT generation, rebuild_generation FROM projection_state WHERE name = ?`),
		w.p.name).Scan(&gen, &stale); err != nil {
		return 0, fmt.Errorf("read state: %w", err)
	}
	next := gen + 1
	if stale.Valid {
		if err := dropGeneration(ctx, tx, w.p, stale.Int64); err != nil {
			return 0, err
		}
		next = max(next, stale.Int64+1)
	}
	if err := createGeneration(ctx, tx, r.cfg.Dialect, w.p, next, true); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, r.cfg.Dialect.Rebind(`UPDATE projection_state SET rebuild_generation = ?, updated_at = ? WHERE name = ?`),
		next, time.Now().UnixMicro(), w.p.name); err != nil {
		return 0, fmt.Errorf("record rebuild: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return next, nil
}

// indexRebuild creates the indexes a rebuild's tables were created without.
func (r *Runner) indexRebuild(ctx context.Context, p *projection, gen int64) error {
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create indexes: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := createIndexes(ctx, tx, r.cfg.Dialect, p, gen); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create indexes: commit: %w", err)
	}
	return nil
}

// abandonRebuild drops a rebuild's tables after it failed.
func (r *Runner) abandonRebuild(ctx context.Context, w *worker, gen int64) {
	ctx, cancel := context.WithTimeout(ctx, swapTimeout)
	defer cancel()
	err := func() error {
		tx, err := r.cfg.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		if err := dropGeneration(ctx, tx, w.p, gen); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, r.cfg.Dialect.Rebind(`UPDATE projection_state SET rebuild_generation = NULL
			WHERE name = ? AND rebuild_generation = ?`), w.p.name, gen); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		r.log.Warn("projection: drop abandoned rebuild tables", "projection", w.p.name, "generation", gen, "err", err)
	}
}

// catchUp applies every event after pos to generation gen until a read
// comes back short, and returns the position reached and the number of
// events applied. It reads the next page while it applies one, so that a
// rebuild costs about the larger of reading and applying, not their sum.
func (r *Runner) catchUp(ctx context.Context, w *worker, gen int64, b *binder, pos eventstore.Position) (eventstore.Position, int, error) {
	type read struct {
		page []eventstore.RecordedEvent
		next eventstore.Position
		err  error
	}
	limit := r.cfg.CatchUpPageSize
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a read ahead of a failed apply ends with it
	fetch := func(after eventstore.Position) <-chan read {
		ch := make(chan read, 1)
		go func() {
			page, next, err := r.cfg.Store.ReadAll(ctx, r.query(w.p, after, limit))
			ch <- read{page, next, err}
		}()
		return ch
	}
	applied := 0
	ahead := fetch(pos)
	for {
		rd := <-ahead
		if rd.err != nil {
			return pos, applied, fmt.Errorf("read after %s: %w", pos, rd.err)
		}
		full := len(rd.page) >= limit
		if full {
			ahead = fetch(rd.next)
		}
		if len(rd.page) > 0 {
			if err := r.applyTx(ctx, w.p, gen, b, nil, rd.page, rd.next); err != nil {
				var ee *eventError
				if errors.As(err, &ee) {
					return pos, applied, fmt.Errorf("cannot apply %w", ee)
				}
				return pos, applied, err
			}
		}
		applied += len(rd.page)
		pos = rd.next
		w.mu.Lock()
		w.rebuildPos = pos
		w.mu.Unlock()
		if !full {
			return pos, applied, nil
		}
	}
}

// swap points the views at generation gen, drops the old generation and
// moves the checkpoint, in one transaction.
func (r *Runner) swap(ctx context.Context, w *worker, gen int64, pos eventstore.Position) error {
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("swap: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	lock := ""
	if r.cfg.Dialect == Postgres {
		lock = " FOR UPDATE"
	}
	var (
		old     int64
		current sql.NullInt64
	)
	if err := tx.QueryRowContext(ctx, r.cfg.Dialect.Rebind(`SELECT generation, rebuild_generation FROM projection_state WHERE name = ?`+lock),
		w.p.name).Scan(&old, &current); err != nil {
		return fmt.Errorf("swap: read state: %w", err)
	}
	if !current.Valid || current.Int64 != gen {
		return fmt.Errorf("swap: another rebuild replaced generation %d", gen)
	}
	if err := createViews(ctx, tx, w.p, gen); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	if err := dropGeneration(ctx, tx, w.p, old); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	if _, err := tx.ExecContext(ctx, r.cfg.Dialect.Rebind(`UPDATE projection_state SET generation = ?, version = ?, tx = ?, seq = ?,
		state = ?, error = '', rebuild_generation = NULL, updated_at = ? WHERE name = ?`),
		gen, w.p.version, int64(pos.Tx), pos.Seq, string(StateLive), time.Now().UnixMicro(), w.p.name); err != nil {
		return fmt.Errorf("swap: save checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("swap: commit: %w", err)
	}
	return nil
}
