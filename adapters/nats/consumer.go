package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// Consumer defaults; each applies when its ConsumerConfig field is zero.
const (
	// DefaultAckWait is how long the server waits for an ack (or an
	// in-progress signal) before it redelivers.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxDeliver is how many deliveries a message gets before it is
	// parked.
	DefaultMaxDeliver = 5
	// DefaultNakDelay is the redelivery delay after the first failure; it
	// doubles with each delivery, up to AckWait.
	DefaultNakDelay = time.Second
	// DefaultConcurrency is how many handlers run at once.
	DefaultConcurrency = 1
	// DefaultMaxAckPending caps unacknowledged messages per consumer.
	DefaultMaxAckPending = 1000
)

// Handler handles one event. It must be idempotent: JetStream delivers at
// least once. A nil error acks the message; an error redelivers it after a
// delay, and after MaxDeliver deliveries parks it.
type Handler func(ctx context.Context, env Envelope) error

// ConsumerConfig describes a durable consumer.
type ConsumerConfig struct {
	// Name is the durable consumer's name, a permanent ID (renaming it
	// starts over from the beginning of the stream). Required.
	Name string
	// FilterSubject is the one subject filter (servers before 2.10 take only
	// one); see CategorySubject, TypeSubject. Default: every event.
	FilterSubject string
	// DeliverNew starts a new consumer at the end of the stream instead of
	// its beginning. It has no effect on a consumer that already exists.
	DeliverNew bool
	// AckWait, MaxDeliver, NakDelay, Concurrency, MaxAckPending: see the
	// Default constants.
	AckWait       time.Duration
	MaxDeliver    int
	NakDelay      time.Duration
	Concurrency   int
	MaxAckPending int
	// DeadLetters receives messages given up on. Required.
	DeadLetters DeadLetters
	// Logger (nil: discard).
	Logger *slog.Logger
}

// Consumer runs a Handler on a durable pull consumer of the events stream.
//
// It is hand-rolled on nats.go's jetstream package rather than on
// watermill-nats: watermill's poison-queue middleware publishes poison
// messages back to NATS, while Vega parks them in a table (DeadLetters) and
// must Term them in JetStream after parking; its retry middleware retries
// in-process, holding the message, where a Nak with delay lets another
// instance take over; and watermill-nats v2 hides the JetStream delivery
// count and in-progress acks that this needs. What remains is a loop of
// about a hundred lines.
//
// Delivery counting is done here, not by the server: the server's
// MaxDeliver is unlimited, and once a message has been delivered
// MaxDeliver times and failed, the Consumer parks it and then Terms it. If
// parking fails, the message is Nak'ed and parked on a later delivery, so
// no message is dropped without a trace (a server-side MaxDeliver would
// stop redelivering a message that could not be parked).
//
// While a handler works, the Consumer sends in-progress acks every AckWait/3
// so that long handlers are not redelivered elsewhere.
type Consumer struct {
	cons   jetstream.Consumer
	js     jetstream.JetStream
	stream string
	cfg    ConsumerConfig
	h      Handler
	log    *slog.Logger
}

// NewConsumer creates the durable consumer on the stream, or updates it to
// cfg, and returns a Consumer that runs h on its messages. Changing the
// filter subject or DeliverNew of an existing consumer may be refused by
// the server: delete it first (it then starts over).
func NewConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg ConsumerConfig, h Handler) (*Consumer, error) {
	if cfg.Name == "" {
		return nil, errors.New("new consumer: Name is required")
	}
	if cfg.DeadLetters == nil {
		return nil, fmt.Errorf("new consumer %s: DeadLetters is required", cfg.Name)
	}
	if h == nil {
		return nil, fmt.Errorf("new consumer %s: handler is nil", cfg.Name)
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = DefaultMaxDeliver
	}
	if cfg.NakDelay <= 0 {
		cfg.NakDelay = DefaultNakDelay
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = DefaultMaxAckPending
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Consumer{js: js, stream: stream, cfg: cfg, h: h,
		log: cfg.Logger.With("component", "consumer", "consumer", cfg.Name, "stream", stream)}
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Consumer) ensure(ctx context.Context) error {
	jc := jetstream.ConsumerConfig{
		Durable:       c.cfg.Name,
		Description:   "vega consumer " + c.cfg.Name,
		FilterSubject: c.cfg.FilterSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: c.cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if c.cfg.DeliverNew {
		jc.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.stream, jc)
	if err != nil {
		return fmt.Errorf("ensure consumer %s on %s: %w", c.cfg.Name, c.stream, err)
	}
	c.cons = cons
	return nil
}

// Run pulls and handles messages until ctx ends, then waits for running
// handlers (their context is cancelled) and returns nil. When the pull
// fails (the consumer was deleted, the server restarted without it) it
// logs, backs off, recreates the consumer and goes on. Run must not be
// called twice at once on the same Consumer; several processes may run
// Consumers of the same name, and JetStream spreads the messages.
func (c *Consumer) Run(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := c.pull(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("pull failed; recreating the consumer", "error", err, "attempt", attempt+1)
		if !sleep(ctx, min(DefaultRetryBase<<min(attempt, 10), DefaultRetryMax)) {
			return nil
		}
		if err := c.ensure(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("recreate consumer failed", "error", err)
		}
	}
}

// pull consumes until ctx ends or the subscription stops by itself (the
// consumer was deleted). It uses Consume rather than the Messages iterator:
// against nats-server 2.15 the iterator with a small pull buffer now and
// then stopped issuing pull requests and stalled.
func (c *Consumer) pull(ctx context.Context) error {
	sem := make(chan struct{}, c.cfg.Concurrency)
	var wg sync.WaitGroup
	var lastErr atomic.Value
	cc, err := c.cons.Consume(func(msg jetstream.Msg) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			_ = msg.Nak()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.handle(ctx, msg)
		}()
	},
		jetstream.PullMaxMessages(2*c.cfg.Concurrency),
		jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			lastErr.Store(err)
			c.log.Debug("consume", "error", err)
		}),
	)
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.cfg.Name, err)
	}
	select {
	case <-ctx.Done():
		cc.Stop()
		<-cc.Closed()
		wg.Wait()
		return ctx.Err()
	case <-cc.Closed():
		wg.Wait()
		err, _ := lastErr.Load().(error)
		return fmt.Errorf("consume %s: stopped: %w", c.cfg.Name, errors.Join(err, errConsumeStopped))
	}
}

// pullExpiry bounds each pull request. Against the embedded 2.15 server
// over an in-process connection, a pull subscription was seen (rarely,
// under the race detector) to believe a pull request was outstanding that
// the server no longer had; a short expiry bounds such a stall to a few
// seconds, since the client re-pulls when the request expires.
const pullExpiry = 5 * time.Second

var errConsumeStopped = errors.New("subscription closed")

// handle runs the handler on one message and acks, naks or parks it.
func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		c.log.Error("message without metadata; terminating it", "subject", msg.Subject(), "error", err)
		_ = msg.Term()
		return
	}
	if target := msg.Headers().Get(HeaderReplayFor); target != "" && target != c.cfg.Name {
		c.ack(msg, md)
		return
	}
	deliveries := int(md.NumDelivered)
	env, err := DecodeMsg(msg)
	if err != nil {
		// Redelivering cannot fix a body that is not an envelope.
		c.park(ctx, msg, md, err)
		return
	}
	err = c.run(ctx, msg, env)
	switch {
	case err == nil:
		c.ack(msg, md)
	case ctx.Err() != nil:
		// Shutting down: let the server redeliver, to us or another instance.
		_ = msg.Nak()
	case deliveries >= c.cfg.MaxDeliver:
		c.park(ctx, msg, md, err)
	default:
		delay := min(c.cfg.NakDelay<<min(deliveries-1, 20), c.cfg.AckWait)
		c.log.Debug("handler failed; redelivering", "subject", msg.Subject(), "seq", md.Sequence.Stream, "deliveries", deliveries, "delay", delay, "error", err)
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			c.log.Warn("nak failed; the message returns after AckWait", "seq", md.Sequence.Stream, "error", nerr)
		}
	}
}

// run calls the handler, with in-progress acks while it works and a
// recovered panic turned into an error.
func (c *Consumer) run(ctx context.Context, msg jetstream.Msg, env Envelope) (err error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return c.h(ctx, env)
}

func (c *Consumer) ack(msg jetstream.Msg, md *jetstream.MsgMetadata) {
	if err := msg.Ack(); err != nil {
		c.log.Warn("ack failed; the message will be redelivered", "seq", md.Sequence.Stream, "error", err)
	}
}

// park stores the message in DeadLetters and terminates it; when parking
// fails the message is Nak'ed so that a later delivery parks it.
func (c *Consumer) park(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata, cause error) {
	dl := DeadLetter{
		ID:         ulid.Make().String(),
		Consumer:   c.cfg.Name,
		Subject:    msg.Subject(),
		StreamSeq:  md.Sequence.Stream,
		EventID:    msg.Headers().Get(HeaderMsgID),
		Data:       msg.Data(),
		Error:      cause.Error(),
		Deliveries: int(md.NumDelivered),
		ParkedAt:   time.Now().UTC(),
	}
	if err := c.cfg.DeadLetters.Park(ctx, dl); err != nil {
		c.log.Error("park failed; redelivering", "seq", dl.StreamSeq, "event_id", dl.EventID, "error", err)
		_ = msg.NakWithDelay(c.cfg.AckWait)
		return
	}
	c.log.Error("message parked", "seq", dl.StreamSeq, "event_id", dl.EventID, "subject", dl.Subject, "deliveries", dl.Deliveries, "error", cause)
	if err := msg.Term(); err != nil {
		c.log.Warn("term failed; the message will be parked again on redelivery", "seq", dl.StreamSeq, "error", err)
	}
}
