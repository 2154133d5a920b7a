package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// Store is what the command side needs of an event store: appends and
// stream reads. Every eventstore.Store is one.
type Store interface {
	eventstore.Appender
	eventstore.StreamReader
}

// LoadPageSize is how many events Repository reads per ReadStream call when
// it loads a stream.
const LoadPageSize = 500

// Stream categories of the domain's aggregates (see DESIGN.md: Domain).
// They are part of every stream ID, so they never change.
const (
	CategoryProject    = "project"
	CategoryRepository = "repository"
	CategoryScan       = "scan"
	CategoryIssue      = "issue"
	CategoryAccess     = "access"
)

// Aggregate is a domain aggregate as a Repository handles it: a pointer
// type (such as *domain.Scan) that folds one event at a time.
type Aggregate interface {
	Apply(e domain.Event) error
}

// Result says what a command wrote. It is part of every command's result.
type Result struct {
	// Stream is the stream the command appended to (or would have).
	Stream eventstore.StreamID
	// FirstVersion is the version of the first event appended; 0 when the
	// command appended nothing.
	FirstVersion int64
	// Version is the stream's version after the command.
	Version int64
	// Position is the global position of the last event appended, for
	// read-your-own-writes; the zero Position when nothing was appended.
	Position eventstore.Position
	// Appended is the number of events appended: 0 when the command decided
	// that nothing needed to change (an idempotent repeat).
	Appended int
}

// Repository loads and saves the aggregates of one stream category. Load
// reads the stream in pages of LoadPageSize, decodes each event with the
// codec registry and folds them with the domain's Fold function; Save
// appends decided events at eventstore.Exact(version), so a concurrent
// writer makes it fail with eventstore.ErrConcurrency. It is safe for
// concurrent use; the aggregates it returns are not.
type Repository[A Aggregate] struct {
	store    Store
	codec    *eventstore.Registry
	ids      func() string
	category string
	idField  string
	fold     func([]domain.Event) (A, error)
}

// NewRepository returns a Repository of the streams "<category>-<id>",
// whose aggregate is rebuilt by fold (domain.FoldScan, …). idField names
// the ID in errors ("scan_id"); ids returns fresh ULIDs for event IDs.
func NewRepository[A Aggregate](store Store, codec *eventstore.Registry, ids func() string, category, idField string, fold func([]domain.Event) (A, error)) *Repository[A] {
	return &Repository[A]{store: store, codec: codec, ids: ids, category: category, idField: idField, fold: fold}
}

// StreamID returns the stream of the aggregate with the given ID.
func (r *Repository[A]) StreamID(id string) eventstore.StreamID {
	return eventstore.NewStreamID(r.category, id)
}

// Load rebuilds the aggregate id from its whole stream and returns it with
// the stream's version. It returns an *domain.InvalidArgumentError for a
// malformed ID, an error matching domain.ErrNotFound for an empty stream,
// and domain.ErrInvalidHistory for a stream the domain cannot fold.
func (r *Repository[A]) Load(ctx context.Context, id string) (A, int64, error) {
	return r.LoadUntil(ctx, id, nil)
}

// LoadUntil is Load over a prefix of the stream: it stops before the first
// event for which keep returns false (nil keeps everything). Audit replay
// uses it with a version or time bound, so that a scan "as it was then" is
// folded by the same code as the live one.
func (r *Repository[A]) LoadUntil(ctx context.Context, id string, keep func(eventstore.RecordedEvent) bool) (A, int64, error) {
	var zero A
	if err := domain.ValidateID(r.idField, id); err != nil {
		return zero, 0, err
	}
	stream := r.StreamID(id)
	var recs []eventstore.RecordedEvent
	for from := int64(1); ; {
		page, err := r.store.ReadStream(ctx, stream, from, LoadPageSize)
		if err != nil {
			return zero, 0, fmt.Errorf("load %s: %w", stream, err)
		}
		stop := false
		for _, rec := range page {
			if rec.Version != from {
				return zero, 0, fmt.Errorf("load %s: read version %d where %d was expected: %w", stream, rec.Version, from, domain.ErrInvalidHistory)
			}
			if keep != nil && !keep(rec) {
				stop = true
				break
			}
			recs = append(recs, rec)
			from++
		}
		if stop || len(page) < LoadPageSize {
			break
		}
	}
	if len(recs) == 0 {
		return zero, 0, fmt.Errorf("%s %s: %w", r.category, id, domain.ErrNotFound)
	}
	events, err := DecodeEvents(r.codec, recs)
	if err != nil {
		return zero, 0, fmt.Errorf("load %s: %w", stream, err)
	}
	agg, err := r.fold(events)
	if err != nil {
		return zero, 0, fmt.Errorf("load %s: %w", stream, err)
	}
	return agg, int64(len(recs)), nil
}

// Save applies the decided events to agg (so the caller gets the new state,
// and an event the aggregate cannot apply is never written) and appends
// them to the stream of id at eventstore.Exact(version). No events: nothing
// is written and Result.Version is version. It returns an error matching
// eventstore.ErrConcurrency when the stream moved since it was loaded.
func (r *Repository[A]) Save(ctx context.Context, id string, agg A, version int64, events []domain.Event) (Result, error) {
	for _, e := range events {
		if err := agg.Apply(e); err != nil {
			return Result{Stream: r.StreamID(id), Version: version}, fmt.Errorf("save %s: %w", r.StreamID(id), err)
		}
	}
	return r.Append(ctx, id, version, events)
}

// Append appends events that the caller already applied to its aggregate
// (or that start the stream) at eventstore.Exact(version), each with a fresh
// ULID and the metadata of the context's Request. It refuses a context
// without an actor (an *domain.InvalidArgumentError for "actor"); empty
// correlation and causation IDs get a fresh ULID. No events: nothing is
// written.
func (r *Repository[A]) Append(ctx context.Context, id string, version int64, events []domain.Event) (Result, error) {
	stream := r.StreamID(id)
	res := Result{Stream: stream, Version: version}
	if len(events) == 0 {
		return res, nil
	}
	req := RequestFromContext(ctx)
	if err := req.validate(); err != nil {
		return res, err
	}
	meta := req.withDefaults(r.ids()).metadata()
	batch := make([]eventstore.NewEvent, len(events))
	for i, e := range events {
		ne, err := EncodeEvent(r.codec, r.ids(), e, meta)
		if err != nil {
			return res, fmt.Errorf("save %s: %w", stream, err)
		}
		batch[i] = ne
	}
	ar, err := r.store.Append(ctx, stream, eventstore.Exact(version), batch...)
	if err != nil {
		return res, fmt.Errorf("save %s: %w", stream, err)
	}
	return Result{Stream: stream, FirstVersion: ar.FirstVersion, Version: ar.LastVersion, Position: ar.Position,
		Appended: int(ar.LastVersion - ar.FirstVersion + 1)}, nil
}

// Create starts the stream of id with the events of a creation decision
// (domain.NewProject, …): it folds them with the domain's Fold function,
// the same path Load takes, and appends them to an empty stream. A stream
// that already exists is an error matching domain.ErrConflict (not
// eventstore.ErrConcurrency: retrying would not help).
func (r *Repository[A]) Create(ctx context.Context, id string, events []domain.Event) (A, Result, error) {
	var zero A
	agg, err := r.fold(events)
	if err != nil {
		return zero, Result{Stream: r.StreamID(id)}, fmt.Errorf("create %s: %w", r.StreamID(id), err)
	}
	res, err := r.Append(ctx, id, 0, events)
	if errors.Is(err, eventstore.ErrConcurrency) {
		return zero, res, fmt.Errorf("%s %s already exists: %w", r.category, id, domain.ErrConflict)
	}
	if err != nil {
		return zero, res, err
	}
	return agg, res, nil
}
