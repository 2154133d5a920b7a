package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync/atomic"

	"github.com/vega-sec/vega/eventstore"
)

// Group commit. One goroutine (writeLoop) owns the appends: Append hands it
// a request and waits; the writer takes every request already queued (up to
// MaxGroupAppends calls or MaxGroupEvents events), runs each inside its own
// SAVEPOINT of one transaction, commits once — one fsync for the whole
// group — and then answers every caller. A call that fails (a conflict, an
// idempotency error) rolls back to its savepoint and leaves the others of the
// group alone; later calls of the group see earlier ones, as they would had
// they run one after the other.
const (
	// MaxGroupAppends is the most Append calls one commit carries.
	MaxGroupAppends = 256
	// MaxGroupEvents stops a group from taking more calls once it holds this
	// many events (one call may bring it to MaxGroupEvents +
	// eventstore.MaxAppendEvents - 1).
	MaxGroupEvents = 1000
	// insertChunkBits sizes the cached multi-row INSERT statements: one per
	// power of two from 1 to 1<<insertChunkBits rows. An append of n events
	// runs one statement per set bit of each chunk of n, so few statements,
	// and few cached plans, cover every n. 128 rows bind 1,408 parameters,
	// far below SQLite's limit of 32,766.
	insertChunkBits = 7
	maxInsertRows   = 1 << insertChunkBits
)

// Request states: queued until the writer takes it or the caller gives up.
const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

type appendReq struct {
	stream   eventstore.StreamID
	expected eventstore.ExpectedVersion
	events   []eventstore.NewEvent
	data     [][]byte // canonical data, for the hash chain and repeats
	meta     [][]byte // canonical metadata, as stored

	state atomic.Int32
	done  chan struct{} // closed when res and err are set
	res   eventstore.AppendResult
	err   error
}

// statements prepared once on the writer connection; a group uses them
// through tx.StmtContext, which finds them already prepared on that
// connection.
type statements struct {
	head      *sql.Stmt // last version and hash of a stream
	insert    [insertChunkBits + 1]*sql.Stmt
	savepoint *sql.Stmt
	rollback  *sql.Stmt
	release   *sql.Stmt
}

const insertColumns = `INSERT INTO events
	(event_id, stream_id, category, version, type, schema_version, data, metadata, recorded_at, prev_hash, hash) VALUES `

// insertArgs is the number of parameters one row of an insert binds.
const insertArgs = 11

func prepareStatements(ctx context.Context, db *sql.DB) (*statements, error) {
	st := &statements{}
	prep := func(dst **sql.Stmt, q string) error {
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %.40q: %w", q, mapErr(ctx, err))
		}
		*dst = s
		return nil
	}
	row := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	if err := prep(&st.head, `SELECT version, hash FROM events WHERE stream_id = ? ORDER BY version DESC LIMIT 1`); err != nil {
		return st, err
	}
	for b := range st.insert {
		n := 1 << b
		if err := prep(&st.insert[b], insertColumns+row+strings.Repeat(","+row, n-1)); err != nil {
			return st, err
		}
	}
	if err := prep(&st.savepoint, `SAVEPOINT append`); err != nil {
		return st, err
	}
	if err := prep(&st.rollback, `ROLLBACK TO append`); err != nil {
		return st, err
	}
	return st, prep(&st.release, `RELEASE append`)
}

func (st *statements) close() error {
	var errs []error
	for _, s := range append([]*sql.Stmt{st.head, st.savepoint, st.rollback, st.release}, st.insert[:]...) {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// insertPlan splits n rows into statements of the cached sizes, largest
// first.
func insertPlan(n int) []int {
	var plan []int
	for n > 0 {
		size := maxInsertRows
		if n < size {
			size = 1 << (bits.Len(uint(n)) - 1)
		}
		plan = append(plan, size)
		n -= size
	}
	return plan
}

// submit hands a validated append to the writer and waits for its answer.
// Until the writer takes the request, the caller's ctx can withdraw it (it
// is then never written); once taken, the call waits for the group's commit,
// so that its result says what happened.
func (s *Store) submit(ctx context.Context, r *appendReq) (eventstore.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", r.stream, err)
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", r.stream, ctx.Err())
	case <-s.ctx.Done():
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", r.stream, ErrClosed)
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", r.stream, ctx.Err())
		}
		<-r.done // taken: the group is running; its outcome is this call's
		return r.res, r.err
	}
}

// writeLoop is the one writer: it gathers groups of queued appends and
// commits each group in one transaction, until the Store closes. Requests
// still queued then are refused by submit, which watches s.ctx.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	group := make([]*appendReq, 0, MaxGroupAppends)
	for {
		var first *appendReq
		select {
		case first = <-s.reqs:
		case <-s.ctx.Done():
			return
		}
		group = append(group[:0], first)
		events := len(first.events)
	gather:
		for len(group) < MaxGroupAppends && events < MaxGroupEvents {
			select {
			case r := <-s.reqs:
				group = append(group, r)
				events += len(r.events)
			default:
				break gather
			}
		}
		s.commitGroup(group)
		clear(group)
	}
}

// commitGroup runs one group and answers every request in it, after the
// commit (or the rollback).
func (s *Store) commitGroup(group []*appendReq) {
	defer func() {
		for _, r := range group {
			close(r.done) // withdrawn callers no longer listen
		}
	}()
	ctx := s.ctx // Close aborts a running group: its transaction rolls back
	// BEGIN IMMEDIATE (see _txlock in Open) waits for the connection, which
	// DB() callers share, and for another process's lock. Callers can still
	// withdraw meanwhile: nothing is taken before the lock is held.
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		err = s.groupErr(ctx, "begin", err)
		for _, r := range group {
			r.err = fmt.Errorf("append to %s: %w", r.stream, err)
		}
		return
	}
	var (
		head  int64
		wrote bool
		fatal error
		taken []*appendReq
	)
	for _, r := range group {
		if fatal != nil {
			r.err = fmt.Errorf("append to %s: %w", r.stream, fatal)
			continue
		}
		if !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue // withdrawn by its caller
		}
		taken = append(taken, r)
		r.res, r.err, fatal = s.appendInGroup(ctx, tx, r)
		if fatal == nil && r.err == nil && r.res.Written {
			wrote = true
			head = max(head, r.res.Position.Seq)
		}
	}
	if fatal == nil && wrote {
		if err := tx.Commit(); err != nil {
			fatal = s.groupErr(ctx, "commit", err)
		}
	} else {
		_ = tx.Rollback()
	}
	if fatal == nil {
		if wrote {
			s.raiseHead(head)
		}
		return
	}
	// Nothing of the group is stored: calls that had succeeded inside it
	// (written, or repeats of what it wrote) fail with the cause.
	for _, r := range taken {
		if r.err == nil {
			r.res, r.err = eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", r.stream, fatal)
		}
	}
}

// groupErr describes an error that ends a whole group.
func (s *Store) groupErr(ctx context.Context, what string, err error) error {
	if s.ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ErrClosed)
	}
	return fmt.Errorf("%s: %w", what, mapErr(ctx, err))
}

// appendInGroup runs one append inside its savepoint. err is the call's own
// outcome (its savepoint is rolled back); fatal means the transaction can no
// longer be trusted and the whole group must roll back.
func (s *Store) appendInGroup(ctx context.Context, tx *sql.Tx, r *appendReq) (res eventstore.AppendResult, err, fatal error) {
	if _, err := tx.StmtContext(ctx, s.stmts.savepoint).ExecContext(ctx); err != nil {
		return res, nil, s.groupErr(ctx, "savepoint", err)
	}
	res, err = s.appendTx(ctx, tx, r)
	if taken, ok := err.(*idTakenError); ok {
		// Some event ID is stored: undo any chunk already inserted, then
		// decide between a repeat and an idempotency error.
		if _, rerr := tx.StmtContext(ctx, s.stmts.rollback).ExecContext(ctx); rerr != nil {
			return res, nil, s.groupErr(ctx, "rollback to savepoint", rerr)
		}
		res, err = s.repeatOrConflict(ctx, tx, r, taken.actual)
	}
	if err != nil || !res.Written {
		if _, rerr := tx.StmtContext(ctx, s.stmts.rollback).ExecContext(ctx); rerr != nil {
			return res, nil, s.groupErr(ctx, "rollback to savepoint", rerr)
		}
	}
	if _, rerr := tx.StmtContext(ctx, s.stmts.release).ExecContext(ctx); rerr != nil {
		return res, nil, s.groupErr(ctx, "release savepoint", rerr)
	}
	if err != nil && s.ctx.Err() != nil {
		return res, nil, ErrClosed
	}
	return res, err, nil
}
