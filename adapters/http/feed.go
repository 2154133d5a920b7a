package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/eventstore"
)

// JetStreamFeed is the Feed of an API process in both shapes: one
// JetStream ordered consumer on every event of the stream (the relay
// publishes the store's global order there). The first Run starts with the
// messages stored after it began; a later Run (after a failure) resumes
// after the last message delivered, so that a restart loses nothing the
// stream still holds. An envelope whose data the relay left out (too big
// for the server) is completed from the store.
type JetStreamFeed struct {
	js      jetstream.JetStream
	stream  string
	prefix  string
	events  eventstore.StreamReader
	log     *slog.Logger
	lastSeq atomic.Uint64
}

var _ Feed = (*JetStreamFeed)(nil)

// NewJetStreamFeed returns a feed of the JetStream stream (VEGA_NATS_STREAM)
// whose subjects start with prefix (VEGA_NATS_SUBJECT_PREFIX). events may
// be nil when the relay never omits data. log may be nil.
func NewJetStreamFeed(js jetstream.JetStream, stream, prefix string, events eventstore.StreamReader, log *slog.Logger) *JetStreamFeed {
	if log == nil {
		log = discard
	}
	return &JetStreamFeed{js: js, stream: stream, prefix: prefix, events: events, log: log}
}

// Run delivers every event until ctx ends (nil) or the consumer fails.
func (f *JetStreamFeed) Run(ctx context.Context, deliver func(eventstore.RecordedEvent)) error {
	start := vnats.DeliverNew
	if seq := f.lastSeq.Load(); seq > 0 {
		start = vnats.StartAfter(seq)
	}
	return vnats.Subscribe(ctx, f.js, f.stream, vnats.SubscribeOptions{FilterSubject: vnats.AllSubject(f.prefix), Start: start, Logger: f.log},
		func(ctx context.Context, env vnats.Envelope) error {
			e, err := env.RecordedEvent()
			if err != nil {
				f.log.Warn("live feed: skipping an envelope", "err", err)
				return nil
			}
			if env.DataOmitted && f.events != nil {
				recs, err := f.events.ReadStream(ctx, e.StreamID, e.Version, 1)
				if err != nil {
					return fmt.Errorf("live feed: read omitted data of %s version %d: %w", e.StreamID, e.Version, err)
				}
				if len(recs) == 1 {
					e = recs[0]
				}
			}
			deliver(e)
			f.lastSeq.Store(env.Seq)
			return nil
		})
}

// StoreFollower is what StoreFeed reads of the event store.
type StoreFollower interface {
	eventstore.Follower
	Head(ctx context.Context) (eventstore.Position, error)
}

// StoreFeed is a Feed that follows the event store's global order itself
// (one follower per API process, woken by the store), for a process
// without a bus. It starts at the store's head and, after a failure,
// resumes after the last event it delivered.
type StoreFeed struct {
	store StoreFollower
	last  eventstore.Position
	begun bool
}

var _ Feed = (*StoreFeed)(nil)

// NewStoreFeed returns a feed that follows store.
func NewStoreFeed(store StoreFollower) *StoreFeed { return &StoreFeed{store: store} }

// Run delivers every event appended after it starts until ctx ends (nil)
// or a read fails. Runs must not overlap.
func (f *StoreFeed) Run(ctx context.Context, deliver func(eventstore.RecordedEvent)) error {
	if !f.begun {
		head, err := f.store.Head(ctx)
		if err != nil {
			return fmt.Errorf("store feed: head: %w", err)
		}
		f.last, f.begun = head, true
	}
	err := eventstore.Follow(ctx, f.store, eventstore.Query{After: f.last}, func(_ context.Context, page []eventstore.RecordedEvent, next eventstore.Position) error {
		for _, e := range page {
			deliver(e)
		}
		f.last = next
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("store feed: %w", err)
}

// JetStreamCheck returns a bus check for /readyz: the JetStream account
// answers.
func JetStreamCheck(js jetstream.JetStream) CheckFunc {
	return func(ctx context.Context) error {
		_, err := js.AccountInfo(ctx)
		return err
	}
}
