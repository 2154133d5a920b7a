package nats

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vega-sec/vega/eventstore"
)

// ErrWrongStream is returned by Publish when the server stored an event in
// a stream other than Config.StreamName, which means another stream owns
// the subjects: a configuration error.
var ErrWrongStream = errors.New("event stored in an unexpected stream")

// Publisher publishes recorded events to the events stream with
// asynchronous publishes, at most Config.PublishWindow in flight, and
// checks every PubAck. It is safe for concurrent use.
type Publisher struct {
	js     jetstream.JetStream
	nc     *nats.Conn
	prefix string
	stream string
	window int
}

// PublishResult counts what one Publish call stored.
type PublishResult struct {
	// Stored is the number of events the stream stored now; Duplicates is
	// the number it had already (same Nats-Msg-Id within the window).
	Stored, Duplicates int
	// LastSeq is the stream sequence of the last event.
	LastSeq uint64
}

// NewPublisher returns a publisher on nc for the stream and subjects of cfg.
func NewPublisher(nc *nats.Conn, cfg Config) (*Publisher, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4*cfg.PublishWindow),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("new publisher: %w", err)
	}
	return &Publisher{js: js, nc: nc, prefix: cfg.SubjectPrefix, stream: cfg.StreamName, window: cfg.PublishWindow}, nil
}

// Publish publishes the events in order, each to its Subject with
// Nats-Msg-Id = event ID, and returns when every one was acknowledged by
// the stream. On error some events may have been stored: publish the same
// events again, and the stream's duplicate window absorbs the repeats. It
// returns ErrWrongStream (wrapped) if the stream that stored an event is not
// the configured one, and ctx.Err() when ctx ends first.
func (p *Publisher) Publish(ctx context.Context, events []eventstore.RecordedEvent) (PublishResult, error) {
	b, err := p.prepare(events)
	if err != nil {
		return PublishResult{}, err
	}
	return p.publish(ctx, b)
}

// batch is a run of events encoded as messages, ready to publish. A batch
// is published once: publishing stamps its messages, so a retry prepares
// the events again.
type batch struct {
	ids  []string
	msgs []*nats.Msg
}

// prepare encodes events as messages. It does no I/O, so the relay runs it
// off the publishing path.
func (p *Publisher) prepare(events []eventstore.RecordedEvent) (batch, error) {
	maxPayload := p.nc.MaxPayload()
	b := batch{ids: make([]string, len(events)), msgs: make([]*nats.Msg, len(events))}
	for i, e := range events {
		msg, err := newMsg(p.prefix, e, maxPayload)
		if err != nil {
			return batch{}, err
		}
		b.ids[i], b.msgs[i] = e.ID, msg
	}
	return b, nil
}

// publish publishes a prepared batch as Publish does its events.
func (p *Publisher) publish(ctx context.Context, b batch) (PublishResult, error) {
	var res PublishResult
	pending := make([]pendingAck, 0, min(len(b.msgs), p.window))
	var firstErr error
	wait := func(pa pendingAck) {
		ack, err := awaitAck(ctx, pa.fut)
		switch {
		case err != nil:
			if firstErr == nil {
				firstErr = fmt.Errorf("publish event %s: %w", pa.id, err)
			}
		case ack.Stream != p.stream:
			if firstErr == nil {
				firstErr = fmt.Errorf("publish event %s: stored in %s, want %s: %w", pa.id, ack.Stream, p.stream, ErrWrongStream)
			}
		case ack.Duplicate:
			res.Duplicates++
			res.LastSeq = max(res.LastSeq, ack.Sequence)
		default:
			res.Stored++
			res.LastSeq = max(res.LastSeq, ack.Sequence)
		}
	}
	for i, msg := range b.msgs {
		if firstErr != nil || ctx.Err() != nil {
			break
		}
		fut, err := p.js.PublishMsgAsync(msg, jetstream.WithExpectStream(p.stream))
		if err != nil {
			firstErr = fmt.Errorf("publish event %s: %w", b.ids[i], err)
			break
		}
		pending = append(pending, pendingAck{id: b.ids[i], fut: fut})
		if len(pending) >= p.window {
			wait(pending[0])
			pending = pending[1:]
		}
	}
	for _, pa := range pending {
		wait(pa)
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return res, firstErr
}

type pendingAck struct {
	id  string
	fut jetstream.PubAckFuture
}

// awaitAck waits for one future; the JetStream context's async timeout
// makes sure it ends.
func awaitAck(ctx context.Context, fut jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-fut.Ok():
		return ack, nil
	case err := <-fut.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
