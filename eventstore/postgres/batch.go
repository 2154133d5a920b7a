package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vega-sec/vega/eventstore"
)

// Limits of group commit: how many concurrent appends one statement (and one
// transaction) may carry.
const (
	// MaxBatchAppends is the most Append calls grouped into one transaction.
	MaxBatchAppends = 64
	// MaxBatchEvents is the most events grouped into one transaction.
	MaxBatchEvents = 2000
	// DefaultAppendWorkers is how many statements carry appends at once.
	DefaultAppendWorkers = 8
	// appendTimeout bounds one statement of appends.
	appendTimeout = 30 * time.Second
)

// appendReq is one Append call waiting for a worker.
type appendReq struct {
	stream     eventstore.StreamID
	expected   eventstore.ExpectedVersion
	ids, types []string
	svs        []int32
	datas      []string
	metas      []string
	content    [][]byte
	recordedAt time.Time
	abandoned  atomic.Bool
	done       chan appendResp
}

type appendResp struct {
	res eventstore.AppendResult
	err error
}

// versionConflict is a mismatch reported by a batch (which does not abort
// for it); appendError turns it into an *eventstore.ConcurrencyError.
type versionConflict struct{ actual int64 }

func (v versionConflict) Error() string { return fmt.Sprintf("stream is at version %d", v.actual) }

// Group commit. Append calls are routed by stream to one of a few workers;
// a worker takes what has queued while its last statement ran and sends it
// as one statement in one transaction. An idle store adds no delay (a lone
// call goes at once); a busy one shares round trips and commits. Routing by
// stream keeps one stream's appends in one worker, in order, so they never
// race each other inside the process.

func (s *Store) startWorkers(ctx context.Context, n int) {
	s.queues = make([]chan *appendReq, n)
	for i := range s.queues {
		s.queues[i] = make(chan *appendReq, MaxBatchAppends)
		s.wg.Add(1)
		go s.appendWorker(ctx, s.queues[i])
	}
}

func (s *Store) queueFor(stream eventstore.StreamID) chan *appendReq {
	h := fnv.New32a()
	h.Write([]byte(stream))
	return s.queues[h.Sum32()%uint32(len(s.queues))]
}

// submit hands one attempt of an Append to its worker and waits for the
// answer. When ctx ends first the outcome is unknown (as with any lost
// connection); the caller's idempotent retry, if any, tells.
func (s *Store) submit(ctx context.Context, r *appendReq) (eventstore.AppendResult, error) {
	r.done = make(chan appendResp, 1)
	select {
	case <-s.closed:
		return eventstore.AppendResult{}, errStoreClosed
	default:
	}
	select {
	case s.queueFor(r.stream) <- r:
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.closed:
		return eventstore.AppendResult{}, errStoreClosed
	}
	select {
	case resp := <-r.done:
		return resp.res, resp.err
	case <-ctx.Done():
		r.abandoned.Store(true)
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.closed:
		// The workers may have drained their queues already; nobody
		// would answer. The outcome is unknown, as with a lost connection.
		r.abandoned.Store(true)
		return eventstore.AppendResult{}, errStoreClosed
	}
}

var errStoreClosed = errors.New("postgres event store is closed")

func (s *Store) appendWorker(ctx context.Context, q chan *appendReq) {
	defer s.wg.Done()
	batch := make([]*appendReq, 0, MaxBatchAppends)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			for {
				select {
				case r := <-q:
					r.done <- appendResp{err: errStoreClosed}
				default:
					return
				}
			}
		case r := <-q:
			batch = append(batch, r)
		}
		events := len(batch[0].ids)
	drain:
		for len(batch) < MaxBatchAppends && events < MaxBatchEvents {
			select {
			case r := <-q:
				batch = append(batch, r)
				events += len(r.ids)
			default:
				break drain
			}
		}
		live := batch[:0]
		for _, r := range batch {
			if r.abandoned.Load() {
				r.done <- appendResp{err: context.Canceled}
				continue
			}
			live = append(live, r)
		}
		s.execBatch(ctx, live)
	}
}

// AppendStats counts how appends were carried, for metrics and tuning.
type AppendStats struct {
	// Statements is how many append statements ran (each its own
	// transaction); Appends how many Append attempts they carried.
	Statements, Appends int64
}

// AppendStats returns the counters since Open.
func (s *Store) AppendStats() AppendStats {
	return AppendStats{Statements: s.statements.Load(), Appends: s.appends.Load()}
}

func (s *Store) execBatch(ctx context.Context, batch []*appendReq) {
	if len(batch) == 0 {
		return
	}
	s.statements.Add(1)
	s.appends.Add(int64(len(batch)))
	ctx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	if len(batch) == 1 {
		res, err := s.appendOne(ctx, batch[0])
		batch[0].done <- appendResp{res, err}
		return
	}
	results, err := s.appendMany(ctx, batch)
	if err == nil {
		for i, r := range batch {
			r.done <- results[i]
		}
		return
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		// The connection failed: every caller's outcome is unknown and
		// their idempotent retries will tell.
		for _, r := range batch {
			r.done <- appendResp{err: err}
		}
		return
	}
	// A reused ID or a race with another process aborted the batch: nothing
	// of it was written; run the appends one by one so each gets its own
	// answer.
	for _, r := range batch {
		res, err := s.appendOne(ctx, r)
		r.done <- appendResp{res, err}
	}
}

func (s *Store) appendOne(ctx context.Context, r *appendReq) (eventstore.AppendResult, error) {
	rows, err := s.pool.Query(ctx, `SELECT out_version, out_tx, out_position
		FROM vega_append($1, $2, $3, $4, $5, $6, $7::jsonb[], $8::jsonb[], $9, $10)`,
		string(r.stream), r.stream.Category(), int64(r.expected), r.ids, r.types, r.svs, r.datas, r.metas, r.recordedAt, r.content)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	res, err := appendResult(rows, len(r.ids))
	res.Written = err == nil
	return res, err
}

func (s *Store) appendMany(ctx context.Context, batch []*appendReq) ([]appendResp, error) {
	var (
		streams, cats            []string
		expected                 []int64
		counts                   []int32
		ids, types, datas, metas []string
		svs                      []int32
		content                  [][]byte
		times                    []time.Time
	)
	for _, r := range batch {
		streams = append(streams, string(r.stream))
		cats = append(cats, r.stream.Category())
		expected = append(expected, int64(r.expected))
		counts = append(counts, int32(len(r.ids)))
		ids = append(ids, r.ids...)
		types = append(types, r.types...)
		svs = append(svs, r.svs...)
		datas = append(datas, r.datas...)
		metas = append(metas, r.metas...)
		content = append(content, r.content...)
		for range r.ids {
			times = append(times, r.recordedAt)
		}
	}
	// Each request hashed its content with its own recorded time, so the
	// batch carries one time per event.
	rows, err := s.pool.Query(ctx, `SELECT out_append, out_version, out_tx, out_position, out_actual
		FROM vega_append_batch($1, $2, $3, $4, $5, $6, $7, $8::jsonb[], $9::jsonb[], $10, $11)`,
		streams, cats, expected, counts, ids, types, svs, datas, metas, times, content)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]appendResp, len(batch))
	seen := make([]int, len(batch))
	for rows.Next() {
		var a int32
		var version, pos, actual *int64
		var tx *uint64
		if err := rows.Scan(&a, &version, &tx, &pos, &actual); err != nil {
			return nil, err
		}
		i := int(a) - 1
		if i < 0 || i >= len(batch) {
			return nil, fmt.Errorf("batch answered for append %d of %d", a, len(batch))
		}
		if version == nil {
			out[i].err = versionConflict{actual: *actual}
			continue
		}
		res := &out[i].res
		if seen[i] == 0 || *version < res.FirstVersion {
			res.FirstVersion = *version
		}
		if *version >= res.LastVersion {
			res.LastVersion, res.Position = *version, eventstore.Position{Tx: *tx, Seq: *pos}
		}
		res.Written = true
		seen[i]++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, r := range batch {
		if out[i].err == nil && seen[i] != len(r.ids) {
			return nil, fmt.Errorf("batch acknowledged %d of %d events of %s", seen[i], len(r.ids), r.stream)
		}
	}
	return out, nil
}
