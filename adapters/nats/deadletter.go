package nats

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is a message a Consumer gave up on: its handler failed
// MaxDeliver times, or its body was not an envelope.
type DeadLetter struct {
	// ID is a ULID the consumer assigns when it parks the message.
	ID string
	// Consumer is the durable consumer's name.
	Consumer string
	// Subject and StreamSeq say where the message was in the stream.
	Subject   string
	StreamSeq uint64
	// EventID is the Nats-Msg-Id header (the event ID); empty when absent.
	EventID string
	// Data is the message body as received.
	Data []byte
	// Error is the handler's last error.
	Error string
	// Deliveries is how many times the message was delivered.
	Deliveries int
	// ParkedAt is when the consumer parked it (UTC).
	ParkedAt time.Time
}

// DeadLetters is where a Consumer parks messages. Park must be idempotent
// by (Consumer, StreamSeq): a message parked again (its Term was lost and
// it came back) succeeds without a second entry. Implementations must be
// safe for concurrent use.
type DeadLetters interface {
	Park(ctx context.Context, dl DeadLetter) error
}

// DeadLetterStore is a dead-letter table as DeadLetterQueue needs it.
type DeadLetterStore interface {
	DeadLetters
	// List returns up to limit parked messages, oldest first.
	List(ctx context.Context, limit int) ([]DeadLetter, error)
	// Delete removes a parked message; deleting a missing ID is not an error.
	Delete(ctx context.Context, id string) error
}

// DeadLetterQueue lists and replays parked messages. It is safe for
// concurrent use as far as its store is.
type DeadLetterQueue struct {
	store  DeadLetterStore
	js     jetstream.JetStream
	stream string
}

// NewDeadLetterQueue returns a queue over store that republishes to the
// stream named streamName.
func NewDeadLetterQueue(js jetstream.JetStream, streamName string, store DeadLetterStore) *DeadLetterQueue {
	return &DeadLetterQueue{store: store, js: js, stream: streamName}
}

// List returns up to limit parked messages, oldest first.
func (q *DeadLetterQueue) List(ctx context.Context, limit int) ([]DeadLetter, error) {
	dls, err := q.store.List(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return dls, nil
}

// Replay republishes a parked message to its original subject, then
// deletes it from the store. The copy carries the Vega-* headers of the
// original, HeaderReplayFor = dl.Consumer so that only that consumer
// handles it (the others ack it unseen), and Nats-Msg-Id
// "<event>.replay.<dead letter ID>", so a Replay repeated after a failed
// Delete is absorbed by the duplicate window.
func (q *DeadLetterQueue) Replay(ctx context.Context, dl DeadLetter) error {
	msg := nats.NewMsg(dl.Subject)
	msg.Data = dl.Data
	if env, err := DecodeEnvelope(dl.Data); err == nil {
		msg.Header.Set(HeaderPosition, env.Position)
		msg.Header.Set(HeaderStreamID, string(env.StreamID))
		msg.Header.Set(HeaderVersion, strconv.FormatInt(env.Version, 10))
		msg.Header.Set(HeaderType, env.Type)
		msg.Header.Set(HeaderSchemaVersion, strconv.Itoa(env.SchemaVersion))
		msg.Header.Set(HeaderRecordedAt, env.RecordedAt.Format(time.RFC3339Nano))
	}
	msg.Header.Set(HeaderReplayFor, dl.Consumer)
	msg.Header.Set(HeaderMsgID, dl.EventID+".replay."+dl.ID)
	if _, err := q.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(q.stream)); err != nil {
		return fmt.Errorf("replay dead letter %s: %w", dl.ID, err)
	}
	if err := q.store.Delete(ctx, dl.ID); err != nil {
		return fmt.Errorf("replay dead letter %s: delete: %w", dl.ID, err)
	}
	return nil
}

// ReplayAll replays up to limit parked messages, oldest first, and returns
// how many it replayed; it stops at the first error.
func (q *DeadLetterQueue) ReplayAll(ctx context.Context, limit int) (int, error) {
	dls, err := q.List(ctx, limit)
	if err != nil {
		return 0, err
	}
	for i, dl := range dls {
		if err := q.Replay(ctx, dl); err != nil {
			return i, err
		}
	}
	return len(dls), nil
}
