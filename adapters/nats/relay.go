package nats

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vega-sec/vega/eventstore"
)

// Relay defaults; each applies when its RelayOptions field is zero.
const (
	// DefaultRelayName is the relay's leader lock and checkpoint name. It
	// is a permanent ID: renaming it republishes everything (which the
	// duplicate window absorbs only for recent events).
	DefaultRelayName = "relay"
	// DefaultRelayPageSize is how many events the relay reads, publishes
	// and checkpoints at a time.
	DefaultRelayPageSize = 1000
	// DefaultRetryBase and DefaultRetryMax bound the relay's exponential
	// backoff while NATS (or the store) fails.
	DefaultRetryBase = 100 * time.Millisecond
	DefaultRetryMax  = 30 * time.Second
)

// RelayStore is what the relay needs of the event store: the global order,
// its wake-ups and head, checkpoints and the leader lock. The SQLite and
// PostgreSQL stores implement it.
type RelayStore interface {
	eventstore.Follower
	eventstore.Checkpoints
	eventstore.Leader
	Head(ctx context.Context) (eventstore.Position, error)
}

// RelayOptions tunes a Relay; the zero value is the defaults.
type RelayOptions struct {
	// Name is the leader lock and checkpoint name (DefaultRelayName).
	Name string
	// PageSize is the events per page (DefaultRelayPageSize). Keep it at
	// most Config.PublishWindow so a whole page is in flight at once.
	PageSize int
	// RetryBase and RetryMax bound the backoff (DefaultRetryBase, DefaultRetryMax).
	RetryBase, RetryMax time.Duration
	// Logger receives state changes (nil: discard).
	Logger *slog.Logger
	// Registerer, when not nil, gets the relay's metrics:
	// vega_relay_published_total, vega_relay_duplicates_total,
	// vega_relay_publish_errors_total and vega_relay_lag_events, each
	// labelled relay=<Name>.
	Registerer prometheus.Registerer
}

// Relay tails the event store in global order and publishes every event to
// JetStream (see Publisher), one page at a time: publish the page, wait for
// every ack, then save the checkpoint; the next page is read from the store
// and encoded while the current one's acks are outstanding. A crash between the two republishes
// the page after restart and the stream's duplicate window absorbs it.
// While NATS is away the relay retries the same page with exponential
// backoff; appends to the store are not affected.
type Relay struct {
	store    RelayStore
	js       jetstream.JetStream
	pub      *Publisher
	cfg      Config
	name     string
	pageSize int
	base     time.Duration
	maxWait  time.Duration
	log      *slog.Logger
	m        relayMetrics

	failing  atomic.Bool
	attempts atomic.Int64
}

type relayMetrics struct {
	published, duplicates, errors prometheus.Counter
	lag                           prometheus.Gauge
}

// NewRelay returns a relay from store to the stream cfg describes, over nc.
// It fails on an invalid cfg or when a metric cannot be registered.
func NewRelay(store RelayStore, nc *nats.Conn, cfg Config, opts RelayOptions) (*Relay, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	pub, err := NewPublisher(nc, cfg)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("new relay: %w", err)
	}
	r := &Relay{
		store: store, js: js, pub: pub, cfg: cfg,
		name: opts.Name, pageSize: opts.PageSize,
		base: opts.RetryBase, maxWait: opts.RetryMax, log: opts.Logger,
	}
	if r.name == "" {
		r.name = DefaultRelayName
	}
	if r.pageSize <= 0 {
		r.pageSize = DefaultRelayPageSize
	}
	if r.base <= 0 {
		r.base = DefaultRetryBase
	}
	if r.maxWait <= 0 {
		r.maxWait = DefaultRetryMax
	}
	if r.maxWait < r.base {
		r.maxWait = r.base
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "relay", "relay", r.name, "stream", cfg.StreamName)
	labels := prometheus.Labels{"relay": r.name}
	r.m = relayMetrics{
		published:  prometheus.NewCounter(prometheus.CounterOpts{Name: "vega_relay_published_total", Help: "Events the relay published and the stream stored.", ConstLabels: labels}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "vega_relay_duplicates_total", Help: "Events the relay republished that the stream already had (Nats-Msg-Id).", ConstLabels: labels}),
		errors:     prometheus.NewCounter(prometheus.CounterOpts{Name: "vega_relay_publish_errors_total", Help: "Failed attempts to publish a page or save its checkpoint.", ConstLabels: labels}),
		lag:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "vega_relay_lag_events", Help: "Store sequence numbers between the store's head and the relay's checkpoint.", ConstLabels: labels}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{r.m.published, r.m.duplicates, r.m.errors, r.m.lag} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("new relay: register metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Run relays until ctx ends, then returns nil. It takes the store's leader
// lock named after the relay first, so one relay publishes at a time
// across processes; when the lock is lost or anything fails it logs, backs
// off, and leads again from the saved checkpoint. Run is not meant to be
// called twice at once on the same Relay.
func (r *Relay) Run(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := r.store.Lead(ctx, r.name, r.lead)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			attempt = 0
			continue
		}
		r.m.errors.Inc()
		r.failed("relay stopped; restarting from the checkpoint", err)
		if !sleep(ctx, r.backoff(attempt)) {
			return nil
		}
	}
}

// lead runs while this process holds the lock.
func (r *Relay) lead(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		_, err := EnsureStream(ctx, r.js, r.cfg)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.m.errors.Inc()
		r.failed("cannot ensure the stream; retrying", err)
		if !sleep(ctx, r.backoff(attempt)) {
			return ctx.Err()
		}
	}
	from, err := r.store.LoadCheckpoint(ctx, r.name)
	if err != nil {
		return fmt.Errorf("load checkpoint %s: %w", r.name, err)
	}
	r.log.Info("relay leading", "from", from.String())
	r.updateLag(ctx, from)
	// The next page is read and encoded while the current one is
	// published and acknowledged; it is published only once the current
	// page's checkpoint is saved, so the stream never runs more than a page
	// ahead of the checkpoint.
	cur := r.fetch(ctx, from)
	for {
		if cur.err != nil {
			return cur.err
		}
		var ahead <-chan fetched
		full := len(cur.page) >= r.pageSize
		if full {
			ahead = r.prefetch(ctx, cur.next)
		}
		if len(cur.page) > 0 {
			if err := r.publishPage(ctx, cur, from); err != nil {
				return err
			}
			if err := r.store.SaveCheckpoint(ctx, r.name, cur.next); err != nil {
				return fmt.Errorf("save checkpoint %s at %s: %w", r.name, cur.next, err)
			}
			r.updateLag(ctx, cur.next)
		}
		from = cur.next
		if full {
			select {
			case cur = <-ahead:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		if err := r.store.Wait(ctx, from); err != nil {
			return err
		}
		cur = r.fetch(ctx, from)
	}
}

// fetched is one page read from the store, with its messages prepared.
type fetched struct {
	page  []eventstore.RecordedEvent
	next  eventstore.Position
	batch batch
	// prepErr is an encoding failure, which publishPage reports and
	// retries like a publish failure; err is a read failure, which ends
	// the lead.
	prepErr, err error
}

// fetch reads the page after from and prepares its messages.
func (r *Relay) fetch(ctx context.Context, from eventstore.Position) fetched {
	page, next, err := r.store.ReadAll(ctx, eventstore.Query{After: from, Limit: r.pageSize})
	if err != nil {
		return fetched{err: fmt.Errorf("read after %s: %w", from, err)}
	}
	f := fetched{page: page, next: next}
	if len(page) > 0 {
		f.batch, f.prepErr = r.pub.prepare(page)
	}
	return f
}

// prefetch runs fetch in the background; its channel never blocks the
// sender, so the goroutine ends even when nobody receives.
func (r *Relay) prefetch(ctx context.Context, from eventstore.Position) <-chan fetched {
	ch := make(chan fetched, 1)
	go func() { ch <- r.fetch(ctx, from) }()
	return ch
}

// publishPage publishes one page until every event is acknowledged or ctx
// ends, backing off between attempts. The first attempt sends the messages
// prepared with the page; a retry prepares them again.
func (r *Relay) publishPage(ctx context.Context, f fetched, checkpoint eventstore.Position) error {
	b, prepErr := f.batch, f.prepErr
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			b, prepErr = r.pub.prepare(f.page)
		}
		var res PublishResult
		err := prepErr
		if err == nil {
			res, err = r.pub.publish(ctx, b)
		}
		r.m.published.Add(float64(res.Stored))
		r.m.duplicates.Add(float64(res.Duplicates))
		if err == nil {
			r.recovered()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.m.errors.Inc()
		r.failed("publishing failed; retrying the page", err, "page_first", f.page[0].Position.String(), "page_events", len(f.page))
		r.updateLag(ctx, checkpoint)
		if !sleep(ctx, r.backoff(attempt)) {
			return ctx.Err()
		}
	}
}

// failed logs the first failure after a healthy state at Warn and the
// rest at Debug, so a long outage does not flood the log.
func (r *Relay) failed(msg string, err error, args ...any) {
	n := r.attempts.Add(1)
	args = append(args, "error", err, "attempt", n)
	if r.failing.CompareAndSwap(false, true) {
		r.log.Warn(msg, args...)
		return
	}
	r.log.Debug(msg, args...)
}

func (r *Relay) recovered() {
	if r.failing.CompareAndSwap(true, false) {
		r.log.Info("relay publishing again", "failed_attempts", r.attempts.Swap(0))
	}
}

func (r *Relay) updateLag(ctx context.Context, checkpoint eventstore.Position) {
	head, err := r.store.Head(ctx)
	if err != nil {
		return
	}
	r.m.lag.Set(float64(max(0, head.Seq-checkpoint.Seq)))
}

// backoff is base·2^attempt, capped, with ±20% jitter.
func (r *Relay) backoff(attempt int) time.Duration {
	d := r.base
	for i := 0; i < attempt && d < r.maxWait; i++ {
		d *= 2
	}
	d = min(d, r.maxWait)
	j := time.Duration(rand.Int64N(int64(d)/5 + 1))
	if rand.IntN(2) == 0 {
		return d - j
	}
	return d + j
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
