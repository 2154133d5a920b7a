package projections

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// Defaults of Config.
const (
	// DefaultPageSize is how many events one projection transaction
	// applies at most. On SQLite a projection transaction holds the one
	// writer, so pages stay small enough not to stall appends.
	DefaultPageSize = 500
	// DefaultCatchUpPageSize is the page size while a projection reads a
	// backlog or rebuilds: a bigger page shares more of each grouped write
	// and commit. On SQLite a page holds the one writer (appends wait):
	// tens of milliseconds for 2,000 events.
	DefaultCatchUpPageSize = 2000
	// DefaultRetryInterval is the pause after a transient error (a lost
	// connection, a busy database) before a projection reads again.
	DefaultRetryInterval = time.Second
	// DefaultMetricsInterval is how often Run refreshes the lag gauges.
	DefaultMetricsInterval = 5 * time.Second
	// DefaultFailedPollInterval is how often a failed projection looks
	// whether another process rebuilt it.
	DefaultFailedPollInterval = 5 * time.Second
	// AnalyzeAfter is how many events a projection applies before it
	// refreshes the planner statistics of its tables (ANALYZE) once caught
	// up; AnalyzeAlways forces it during a long catch-up too. Without
	// fresh statistics after a bulk load (a scan's 100,000 findings), the
	// planners sort whole ranges instead of walking the list indexes.
	AnalyzeAfter  = 10_000
	AnalyzeAlways = 50_000
)

// State is a projection's state as Status reports it.
type State string

// States.
const (
	StateCatchingUp State = "catching_up" // reading a backlog
	StateLive       State = "live"        // caught up; following new events
	StateFailed     State = "failed"      // stopped on an event it cannot apply
	StateRebuilding State = "rebuilding"  // a rebuild runs aside; the live one still serves
)

var (
	// ErrUnknownProjection is returned by Rebuild for a name that is not
	// one of Names().
	ErrUnknownProjection = errors.New("unknown projection")
	// ErrRebuildInProgress is returned by Rebuild while this Runner already
	// rebuilds the projection.
	ErrRebuildInProgress = errors.New("projection rebuild already in progress")
)

// Source is what the Runner reads of the event store.
type Source interface {
	eventstore.AllReader
	eventstore.Waiter
	Head(ctx context.Context) (eventstore.Position, error)
}

// Config configures NewRunner. DB, Dialect, Store and Registry are
// required; every other field has a default.
type Config struct {
	// DB holds the events and the read models. On SQLite it must be the
	// store's writer (sqlite.Store.DB()); on PostgreSQL a database/sql
	// handle on the same database and search_path as the store, such as
	// stdlib.OpenDBFromPool(postgres.Store.Pool()).
	DB      *sql.DB
	Dialect Dialect
	Store   Source
	// Registry decodes domain events (commands.NewRegistry()).
	Registry *eventstore.Registry
	// Logger receives failures and transient errors; nil discards.
	Logger *slog.Logger
	// Metrics registers the vega_projection_* series; nil: not registered.
	Metrics prometheus.Registerer
	// PageSize is the most events a live projection applies in one
	// transaction: DefaultPageSize when 0.
	PageSize int
	// CatchUpPageSize is the page size while a projection reads a backlog
	// (its last page was full) or rebuilds. When 0: PageSize if that is
	// set, else DefaultCatchUpPageSize.
	CatchUpPageSize int
	// RetryInterval: DefaultRetryInterval when 0.
	RetryInterval time.Duration
	// MetricsInterval: DefaultMetricsInterval when 0.
	MetricsInterval time.Duration
	// FailedPollInterval: DefaultFailedPollInterval when 0.
	FailedPollInterval time.Duration
	// BeforeCommit, when set, runs inside every projection transaction
	// (live or rebuild) after the page was applied and before the commit;
	// an error rolls the transaction back. It exists for fault-injection
	// tests (a crash between the read-model writes and the commit). On
	// SQLite it runs while the one writer is held: it must not append.
	BeforeCommit func(ctx context.Context, c Commit) error
}

// Commit describes a projection transaction about to commit, for
// Config.BeforeCommit.
type Commit struct {
	Projection string
	// Next is the position the page ends at.
	Next eventstore.Position
	// Rebuild is true for a rebuild's transaction, false for the live one.
	Rebuild bool
	// Events is the number of events in the page.
	Events int
}

// Failure describes the event a projection stopped on.
type Failure struct {
	Position  eventstore.Position `json:"-"`
	EventID   string              `json:"event_id"`
	EventType string              `json:"event_type"`
	StreamID  string              `json:"stream_id"`
	Version   int64               `json:"version"`
	Reason    string              `json:"reason"`
}

// MarshalJSON writes the position as "<tx>.<seq>".
func (f Failure) MarshalJSON() ([]byte, error) {
	type plain Failure
	return json.Marshal(struct {
		Position string `json:"position"`
		plain
	}{f.Position.String(), plain(f)})
}

// Status is one projection's progress.
type Status struct {
	Name string `json:"name"`
	// Position is where the live read model is; Head the store's head.
	Position eventstore.Position `json:"-"`
	Head     eventstore.Position `json:"-"`
	// LagEvents counts events between Position and Head (on PostgreSQL
	// an estimate from sequence numbers); LagSeconds is the age of the
	// oldest event of the projection's categories not applied yet.
	LagEvents  int64   `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"`
	State      State   `json:"state"`
	// Error says why the projection failed ("" otherwise); Failure names
	// the event.
	Error   string   `json:"error"`
	Failure *Failure `json:"failure,omitempty"`
	// Generation is the generation of tables the live read model uses.
	Generation int64 `json:"generation"`
	// RebuildPosition is how far a running rebuild got.
	RebuildPosition eventstore.Position `json:"-"`
}

// MarshalJSON writes positions as "<tx>.<seq>".
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	out := struct {
		Position        string `json:"position"`
		Head            string `json:"head"`
		RebuildPosition string `json:"rebuild_position,omitempty"`
		plain
	}{Position: s.Position.String(), Head: s.Head.String(), plain: plain(s)}
	if s.State == StateRebuilding {
		out.RebuildPosition = s.RebuildPosition.String()
	}
	return json.Marshal(out)
}

// Runner runs every projection: each catches up from its checkpoint and
// then follows the store live, applying each page of events and saving its
// checkpoint in one transaction. A projection that meets an event it cannot
// apply stops (StateFailed) with the event and the reason in Status and in
// the vega_projection_failed gauge; the others go on. Its methods are safe
// for concurrent use.
//
// Several processes may run Runners on one database: every projection
// transaction first moves the checkpoint from the position it read with a
// compare-and-set, so a page is applied once whoever applies it.
type Runner struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	workers []*worker
	byName  map[string]*worker
	changed broadcast
}

// worker is one projection's live state.
type worker struct {
	p *projection

	// applyMu serialises writes to the live generation and the swap of a
	// rebuild.
	applyMu sync.Mutex

	mu            sync.Mutex
	gen           int64
	b             *binder
	pos           eventstore.Position
	state         State
	failure       *Failure
	storedVersion int64
	rebuilding    bool
	rebuildPos    eventstore.Position
	reset         chan struct{} // a rebuild swapped the tables in
	sinceAnalyze  int           // events applied since the last ANALYZE
}

// NewRunner loads every projection's checkpoint. On SQLite it first applies
// the read-model migrations (Migrate); on PostgreSQL it fails with
// ErrNotMigrated unless `vega migrate` ran.
func NewRunner(ctx context.Context, cfg Config) (*Runner, error) {
	switch {
	case cfg.DB == nil || cfg.Store == nil || cfg.Registry == nil:
		return nil, errors.New("new projection runner: DB, Store and Registry are required")
	case !cfg.Dialect.Valid():
		return nil, fmt.Errorf("new projection runner: %s is not a dialect", cfg.Dialect)
	case cfg.PageSize < 0 || cfg.CatchUpPageSize < 0 || cfg.RetryInterval < 0 || cfg.MetricsInterval < 0 || cfg.FailedPollInterval < 0:
		return nil, errors.New("new projection runner: negative page size or interval")
	}
	if cfg.CatchUpPageSize == 0 {
		cfg.CatchUpPageSize = cfg.PageSize
		if cfg.PageSize == 0 {
			cfg.CatchUpPageSize = DefaultCatchUpPageSize
		}
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.MetricsInterval == 0 {
		cfg.MetricsInterval = DefaultMetricsInterval
	}
	if cfg.FailedPollInterval == 0 {
		cfg.FailedPollInterval = DefaultFailedPollInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Dialect == SQLite {
		if err := Migrate(ctx, cfg.DB, cfg.Dialect); err != nil {
			return nil, fmt.Errorf("new projection runner: %w", err)
		}
	} else if err := checkMigrated(ctx, cfg.DB, cfg.Dialect); err != nil {
		return nil, fmt.Errorf("new projection runner: %w", err)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("new projection runner: %w", err)
	}
	r := &Runner{cfg: cfg, log: log, m: m, byName: map[string]*worker{}, changed: broadcast{ch: make(chan struct{})}}
	for _, p := range all() {
		w := &worker{p: p, state: StateCatchingUp, reset: make(chan struct{}, 1)}
		if err := r.load(ctx, w); err != nil {
			return nil, fmt.Errorf("new projection runner: %w", err)
		}
		r.workers = append(r.workers, w)
		r.byName[p.name] = w
		m.failed.WithLabelValues(p.name).Set(0)
		m.position.WithLabelValues(p.name).Set(float64(w.pos.Seq))
	}
	return r, nil
}

// load reads w's generation and checkpoint from the database.
func (r *Runner) load(ctx context.Context, w *worker) error {
	var (
		gen, version, tx, seq int64
	)
	err := r.cfg.DB.QueryRowContext(ctx, r.cfg.Dialect.Rebind(`SELECT generation, version, tx, seq FROM projection_state WHERE name = ?`),
		w.p.name).Scan(&gen, &version, &tx, &seq)
	if err != nil {
		return fmt.Errorf("load projection %s: %w", w.p.name, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if gen != w.gen || w.b == nil {
		w.b = newBinder(r.cfg.Dialect, w.p, gen)
	}
	w.gen, w.storedVersion = gen, version
	w.pos = eventstore.Position{Tx: uint64(tx), Seq: seq}
	return nil
}

// Run runs every projection until ctx ends, then returns nil once they all
// stopped. A projection whose stored schema version differs from the
// binary's is rebuilt aside first, while its old tables keep serving.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runWorker(ctx, w)
		}()
		w.mu.Lock()
		stale := w.storedVersion != w.p.version
		w.mu.Unlock()
		if stale {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.log.Info("projection schema changed: rebuilding", "projection", w.p.name)
				if err := r.Rebuild(ctx, w.p.name); err != nil && ctx.Err() == nil {
					r.log.Error("projection rebuild failed", "projection", w.p.name, "err", err)
				}
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.cfg.MetricsInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := r.Status(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("projection status", "err", err)
			}
		}
	}()
	wg.Wait()
	return nil
}

var (
	errFailed = errors.New("projection failed")
	errMoved  = errors.New("projection checkpoint moved")
)

func (r *Runner) runWorker(ctx context.Context, w *worker) {
	for {
		err := r.follow(ctx, w)
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, errFailed):
			r.waitFailed(ctx, w)
		case errors.Is(err, errMoved):
			if err := r.load(ctx, w); err != nil && ctx.Err() == nil {
				r.log.Warn("projection reload", "projection", w.p.name, "err", err)
				sleep(ctx, r.cfg.RetryInterval)
			}
		default:
			r.log.Warn("projection: transient error, retrying", "projection", w.p.name, "err", err, "retry_in", r.cfg.RetryInterval)
			sleep(ctx, r.cfg.RetryInterval)
		}
	}
}

// waitFailed parks a failed projection until a rebuild (here or in another
// process) replaces its tables, or ctx ends.
func (r *Runner) waitFailed(ctx context.Context, w *worker) {
	w.mu.Lock()
	gen := w.gen
	w.mu.Unlock()
	t := time.NewTicker(r.cfg.FailedPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.reset:
			return
		case <-t.C:
		}
		var g int64
		err := r.cfg.DB.QueryRowContext(ctx, r.cfg.Dialect.Rebind(`SELECT generation FROM projection_state WHERE name = ?`), w.p.name).Scan(&g)
		if err == nil && g != gen {
			if err := r.load(ctx, w); err == nil {
				w.mu.Lock()
				w.state, w.failure = StateCatchingUp, nil
				w.mu.Unlock()
				r.m.failed.WithLabelValues(w.p.name).Set(0)
				return
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (r *Runner) query(p *projection, after eventstore.Position, limit int) eventstore.Query {
	return eventstore.Query{After: after, Categories: p.categories, Types: p.types, Limit: limit}
}

// follow is eventstore.Follow for one projection, except that it also
// advances the projection's position over pages its filters emptied (so
// that WaitFor sees it reach the head) and re-reads its position after each
// page (a rebuild may have swapped it).
func (r *Runner) follow(ctx context.Context, w *worker) error {
	for {
		w.mu.Lock()
		after := w.pos
		limit := r.cfg.CatchUpPageSize
		if w.state == StateLive {
			limit = r.cfg.PageSize
		}
		w.mu.Unlock()
		page, next, err := r.cfg.Store.ReadAll(ctx, r.query(w.p, after, limit))
		if err != nil {
			return fmt.Errorf("read after %s: %w", after, err)
		}
		if len(page) > 0 {
			if err := r.applyLive(ctx, w, after, page, next); err != nil {
				return err
			}
		} else {
			w.mu.Lock()
			if w.pos == after && after.Less(next) {
				w.pos = next
			}
			w.mu.Unlock()
		}
		w.mu.Lock()
		full := len(page) >= limit
		analyze := w.sinceAnalyze >= AnalyzeAlways || !full && w.sinceAnalyze >= AnalyzeAfter
		if analyze {
			w.sinceAnalyze = 0
		}
		gen := w.gen
		if w.state != StateFailed {
			if full {
				w.state = StateCatchingUp
			} else {
				w.state = StateLive
			}
		}
		pos := w.pos
		w.mu.Unlock()
		r.m.position.WithLabelValues(w.p.name).Set(float64(pos.Seq))
		r.changed.fire()
		if analyze {
			if err := r.analyze(ctx, w.p, gen); err != nil && ctx.Err() == nil {
				r.log.Warn("projection: analyze", "projection", w.p.name, "err", err)
			}
		}
		if full {
			continue
		}
		if err := r.cfg.Store.Wait(ctx, pos); err != nil {
			return err
		}
	}
}

// applyLive applies one page to the live tables and moves the checkpoint
// from after to next, unless a rebuild swapped the tables meanwhile.
func (r *Runner) applyLive(ctx context.Context, w *worker, after eventstore.Position, page []eventstore.RecordedEvent, next eventstore.Position) error {
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	w.mu.Lock()
	if w.pos != after {
		w.mu.Unlock()
		return nil
	}
	gen, b := w.gen, w.b
	w.mu.Unlock()
	err := r.applyTx(ctx, w.p, gen, b, &after, page, next)
	var ee *eventError
	switch {
	case err == nil:
		w.mu.Lock()
		w.pos = next
		w.sinceAnalyze += len(page)
		w.mu.Unlock()
		r.m.applied.WithLabelValues(w.p.name).Add(float64(len(page)))
		return nil
	case errors.As(err, &ee):
		if ee.index > 0 {
			// Keep what precedes the bad event: the projection stops
			// exactly on it.
			good := page[:ee.index]
			last := good[len(good)-1].Position
			if err := r.applyTx(ctx, w.p, gen, b, &after, good, last); err != nil {
				return err
			}
			w.mu.Lock()
			w.pos = last
			w.mu.Unlock()
		}
		r.fail(ctx, w, gen, ee)
		return errFailed
	}
	return err
}

// eventError is an event a projection cannot apply.
type eventError struct {
	index int
	event eventstore.RecordedEvent
	err   error
}

func (e *eventError) Error() string {
	return fmt.Sprintf("event %s (%s, %s version %d) at %s: %v", e.event.ID, e.event.Type, e.event.StreamID, e.event.Version, e.event.Position, e.err)
}

func (e *eventError) Unwrap() error { return e.err }

// applyTx applies page to generation gen of p in one transaction. With
// from set, it also moves the live checkpoint from *from to next
// (compare-and-set: errMoved when it is elsewhere); without, it writes a
// rebuild's tables only. An event p cannot apply gives an *eventError; other
// errors are transient.
//
// It first applies the page with grouped writes (see group.go). A grouped
// write that fails names no event, so on an *eventError it applies the
// page again, in a new transaction, one event at a time: that error names
// the exact event.
func (r *Runner) applyTx(ctx context.Context, p *projection, gen int64, b *binder, from *eventstore.Position, page []eventstore.RecordedEvent, next eventstore.Position) error {
	err := r.applyPage(ctx, p, gen, b, from, page, next, true)
	var ee *eventError
	if errors.As(err, &ee) {
		r.log.Debug("projection: grouped page failed, applying it event by event", "projection", p.name, "err", err)
		return r.applyPage(ctx, p, gen, b, from, page, next, false)
	}
	return err
}

// applyPage is applyTx with grouped writes or without.
func (r *Runner) applyPage(ctx context.Context, p *projection, gen int64, b *binder, from *eventstore.Position, page []eventstore.RecordedEvent, next eventstore.Position, grouped bool) error {
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projection %s: begin: %w", p.name, err)
	}
	defer func() { _ = tx.Rollback() }()
	if from != nil {
		state := StateLive
		if len(page) >= r.cfg.PageSize {
			state = StateCatchingUp
		}
		res, err := tx.ExecContext(ctx, r.cfg.Dialect.Rebind(`UPDATE projection_state SET tx = ?, seq = ?, state = ?, error = '', updated_at = ?
			WHERE name = ? AND generation = ? AND tx = ? AND seq = ?`),
			int64(next.Tx), next.Seq, string(state), time.Now().UnixMicro(), p.name, gen, int64(from.Tx), from.Seq)
		if err != nil {
			return fmt.Errorf("projection %s: save checkpoint: %w", p.name, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errMoved
		}
	}
	t := &txn{tx: tx, b: b, grouped: grouped}
	defer t.close()
	fail := func(i int, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if transient(err) {
			return fmt.Errorf("projection %s: event %s: %w", p.name, page[i].ID, err)
		}
		return &eventError{index: i, event: page[i], err: err}
	}
	for i, e := range page {
		ev, err := r.decode(p, e)
		if err == nil {
			err = p.apply(ctx, t, e, ev)
		}
		if err != nil {
			return fail(i, err)
		}
	}
	if err := t.flush(ctx); err != nil {
		return fail(len(page)-1, err)
	}
	if r.cfg.BeforeCommit != nil {
		if err := r.cfg.BeforeCommit(ctx, Commit{Projection: p.name, Next: next, Rebuild: from == nil, Events: len(page)}); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projection %s: commit: %w", p.name, err)
	}
	return nil
}

// decode turns a stored event into its domain event value (nil when the
// projection does not need it).
func (r *Runner) decode(p *projection, e eventstore.RecordedEvent) (domain.Event, error) {
	if p.decode != nil && !p.decode(e.Type) {
		return nil, nil
	}
	v, err := r.cfg.Registry.Decode(e)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		v = rv.Elem().Interface()
	}
	ev, ok := v.(domain.Event)
	if !ok {
		return nil, fmt.Errorf("decode: %s decodes to %T, not a domain event", e.Type, v)
	}
	return ev, nil
}

// transient reports whether err may go away on retry: a lost connection, a
// busy database, a serialisation failure.
func transient(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "08", "53", "57", "40":
			return true
		}
		return false
	}
	if pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}

// fail stops w on the event of ee.
func (r *Runner) fail(ctx context.Context, w *worker, gen int64, ee *eventError) {
	f := &Failure{Position: ee.event.Position, EventID: ee.event.ID, EventType: ee.event.Type,
		StreamID: string(ee.event.StreamID), Version: ee.event.Version, Reason: ee.err.Error()}
	msg := failureMessage(w.p.name, f)
	w.mu.Lock()
	w.state, w.failure = StateFailed, f
	w.mu.Unlock()
	r.m.failed.WithLabelValues(w.p.name).Set(1)
	r.log.Error("projection stopped on an event it cannot apply", "projection", w.p.name, "position", f.Position.String(),
		"event_id", f.EventID, "event_type", f.EventType, "stream_id", f.StreamID, "version", f.Version, "reason", f.Reason)
	if _, err := r.cfg.DB.ExecContext(ctx, r.cfg.Dialect.Rebind(`UPDATE projection_state SET state = ?, error = ?, updated_at = ?
		WHERE name = ? AND generation = ?`), string(StateFailed), msg, time.Now().UnixMicro(), w.p.name, gen); err != nil {
		r.log.Warn("projection: record failure", "projection", w.p.name, "err", err)
	}
	r.changed.fire()
}

func failureMessage(name string, f *Failure) string {
	return fmt.Sprintf("projection %s stopped at position %s on event %s (%s, stream %s version %d): %s",
		name, f.Position, f.EventID, f.EventType, f.StreamID, f.Version, f.Reason)
}

// analyze refreshes the planner statistics of one generation of p's
// tables. On SQLite it samples (analysis_limit) so that it holds the writer
// briefly.
func (r *Runner) analyze(ctx context.Context, p *projection, gen int64) error {
	for _, t := range p.tables {
		q := "ANALYZE " + physical(t.name, gen)
		if r.cfg.Dialect == SQLite {
			conn, err := r.cfg.DB.Conn(ctx)
			if err != nil {
				return err
			}
			_, err = conn.ExecContext(ctx, "PRAGMA analysis_limit = 2000")
			if err == nil {
				_, err = conn.ExecContext(ctx, q)
			}
			_ = conn.Close()
			if err != nil {
				return fmt.Errorf("analyze %s: %w", t.name, err)
			}
			continue
		}
		if _, err := r.cfg.DB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("analyze %s: %w", t.name, err)
		}
	}
	return nil
}

// Status reports every projection's position, lag and state, and refreshes
// the lag gauges. It reads the store's head once.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	head, err := r.cfg.Store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("projection status: %w", err)
	}
	now := time.Now()
	out := make([]Status, 0, len(r.workers))
	for _, w := range r.workers {
		w.mu.Lock()
		s := Status{Name: w.p.name, Position: w.pos, Head: head, State: w.state, Generation: w.gen}
		if w.failure != nil {
			f := *w.failure
			s.Failure, s.Error = &f, failureMessage(w.p.name, &f)
		}
		if w.rebuilding && w.state != StateFailed {
			s.State, s.RebuildPosition = StateRebuilding, w.rebuildPos
		}
		w.mu.Unlock()
		if s.Position.Less(head) {
			s.LagEvents = max(head.Seq-s.Position.Seq, 1)
			page, _, err := r.cfg.Store.ReadAll(ctx, eventstore.Query{After: s.Position, Categories: w.p.categories, Types: w.p.types, Limit: 1})
			if err != nil {
				return nil, fmt.Errorf("projection status %s: %w", w.p.name, err)
			}
			if len(page) > 0 {
				s.LagSeconds = max(now.Sub(page[0].RecordedAt).Seconds(), 0)
			}
		}
		failed := 0.0
		if s.State == StateFailed {
			failed = 1
		}
		r.m.failed.WithLabelValues(s.Name).Set(failed)
		r.m.position.WithLabelValues(s.Name).Set(float64(s.Position.Seq))
		r.m.lagEvents.WithLabelValues(s.Name).Set(float64(s.LagEvents))
		r.m.lagSeconds.WithLabelValues(s.Name).Set(s.LagSeconds)
		out = append(out, s)
	}
	return out, nil
}

// WaitFor blocks until every projection that has not failed has reached
// pos (read-your-own-writes: pass the Position an append returned), or ctx
// ends (ctx.Err()). Bound it with a deadline.
func (r *Runner) WaitFor(ctx context.Context, pos eventstore.Position) error {
	for {
		ch := r.changed.wait()
		done := true
		for _, w := range r.workers {
			w.mu.Lock()
			behind := w.state != StateFailed && w.pos.Less(pos)
			w.mu.Unlock()
			if behind {
				done = false
				break
			}
		}
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// broadcast wakes every waiter at once.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}
