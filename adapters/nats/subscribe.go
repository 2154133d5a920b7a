package nats

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Start says where Subscribe begins. The zero value is the beginning of
// the stream.
type Start struct {
	afterSeq uint64
	new      bool
}

// StartAfter begins after the stream sequence seq (an Envelope.Seq a
// client saw last); StartAfter(0) is the beginning.
func StartAfter(seq uint64) Start { return Start{afterSeq: seq} }

// DeliverNew begins with the first message stored after Subscribe starts.
var DeliverNew = Start{new: true}

// SubscribeOptions tunes Subscribe.
type SubscribeOptions struct {
	// FilterSubject is the one subject filter; default every event under
	// the stream's subjects.
	FilterSubject string
	// Start is where to begin.
	Start Start
	// Logger gets the messages skipped because their body is not an
	// envelope (nil: discard).
	Logger *slog.Logger
}

// Subscribe delivers the stream's messages to h in stream order through an
// ordered consumer: ephemeral, no acks, recreated by the client after a gap
// or a reconnect, so h sees each message once and in order (a message
// removed from the stream meanwhile is skipped). It is for live fan-out
// (SSE hubs): nothing is remembered across calls; resume with StartAfter.
// It blocks until ctx ends (returning nil) or h fails (returning h's
// error, wrapped).
func Subscribe(ctx context.Context, js jetstream.JetStream, stream string, opts SubscribeOptions, h Handler) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	oc := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if opts.FilterSubject != "" {
		oc.FilterSubjects = []string{opts.FilterSubject}
	}
	switch {
	case opts.Start.new:
		oc.DeliverPolicy = jetstream.DeliverNewPolicy
	case opts.Start.afterSeq > 0:
		oc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		oc.OptStartSeq = opts.Start.afterSeq + 1
	}
	cons, err := js.OrderedConsumer(ctx, stream, oc)
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", stream, err)
	}
	var (
		mu     sync.Mutex
		failed error
	)
	stopped := make(chan struct{})
	var stopOnce sync.Once
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if failed != nil {
			return
		}
		env, err := DecodeMsg(msg)
		if err != nil {
			log.Warn("skipping a message that is not an event envelope", "subject", msg.Subject(), "error", err)
			return
		}
		if err := h(ctx, env); err != nil {
			failed = err
			stopOnce.Do(func() { close(stopped) })
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		log.Debug("ordered consumer", "stream", stream, "error", err)
	}))
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", stream, err)
	}
	select {
	case <-ctx.Done():
	case <-stopped:
	case <-cc.Closed():
	}
	cc.Stop()
	<-cc.Closed()
	mu.Lock()
	defer mu.Unlock()
	switch {
	case failed != nil:
		return fmt.Errorf("subscribe to %s: handler: %w", stream, failed)
	case ctx.Err() != nil:
		return nil
	default:
		return fmt.Errorf("subscribe to %s: ordered consumer stopped", stream)
	}
}
