package nats

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vega-sec/vega/eventstore"
)

// Headers of every event message. Nats-Msg-Id is NATS's own deduplication
// header; the Vega-* headers repeat envelope fields so that a consumer can
// route or skip a message without decoding its body.
const (
	HeaderMsgID         = jetstream.MsgIDHeader // "Nats-Msg-Id": the event ID
	HeaderPosition      = "Vega-Position"       // eventstore.Position.String()
	HeaderStreamID      = "Vega-Stream-Id"
	HeaderVersion       = "Vega-Version"
	HeaderType          = "Vega-Type"
	HeaderSchemaVersion = "Vega-Schema-Version"
	HeaderRecordedAt    = "Vega-Recorded-At" // RFC 3339 with nanoseconds, UTC
	// HeaderReplayFor marks a message republished from the dead-letter queue:
	// only the named consumer handles it; every other consumer acks it and
	// moves on (see DeadLetterQueue.Replay).
	HeaderReplayFor = "Vega-Replay-For"
)

// Envelope is the body of every event message: the recorded event as JSON.
// Hashes stay in the store; auditors verify there.
type Envelope struct {
	EventID       string              `json:"event_id"`
	StreamID      eventstore.StreamID `json:"stream_id"`
	Version       int64               `json:"version"`
	Position      string              `json:"position"` // eventstore.Position.String()
	Type          string              `json:"type"`
	SchemaVersion int                 `json:"schema_version"`
	Data          json.RawMessage     `json:"data,omitempty"`
	Metadata      eventstore.Metadata `json:"metadata"`
	RecordedAt    time.Time           `json:"recorded_at"`
	// DataOmitted says that the event was too big for the server's
	// max_payload, so Data was left out: read the event from the store by
	// StreamID and Version.
	DataOmitted bool `json:"data_omitted,omitempty"`

	// Seq is the JetStream stream sequence the envelope was delivered at
	// (DecodeMsg sets it); it is not part of the JSON.
	Seq uint64 `json:"-"`
}

// NewEnvelope wraps a recorded event.
func NewEnvelope(e eventstore.RecordedEvent) Envelope {
	return Envelope{
		EventID:       e.ID,
		StreamID:      e.StreamID,
		Version:       e.Version,
		Position:      e.Position.String(),
		Type:          e.Type,
		SchemaVersion: e.SchemaVersion,
		Data:          e.Data,
		Metadata:      e.Metadata,
		RecordedAt:    e.RecordedAt.UTC(),
	}
}

// StorePosition parses Position.
func (e Envelope) StorePosition() (eventstore.Position, error) {
	return eventstore.ParsePosition(e.Position)
}

// RecordedEvent returns the event the envelope carries, without its hashes.
func (e Envelope) RecordedEvent() (eventstore.RecordedEvent, error) {
	pos, err := e.StorePosition()
	if err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("decode envelope %s: %w", e.EventID, err)
	}
	return eventstore.RecordedEvent{
		ID:            e.EventID,
		StreamID:      e.StreamID,
		Version:       e.Version,
		Position:      pos,
		Type:          e.Type,
		SchemaVersion: e.SchemaVersion,
		Data:          e.Data,
		Metadata:      e.Metadata,
		RecordedAt:    e.RecordedAt,
	}, nil
}

// DecodeEnvelope decodes a message body; it fails when the body is not an
// envelope (no event ID, stream ID or type).
func DecodeEnvelope(body []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	if e.EventID == "" || e.StreamID == "" || e.Type == "" {
		return Envelope{}, fmt.Errorf("decode envelope: event_id, stream_id or type missing")
	}
	return e, nil
}

// DecodeMsg decodes a JetStream message's envelope and sets its Seq.
func DecodeMsg(msg jetstream.Msg) (Envelope, error) {
	e, err := DecodeEnvelope(msg.Data())
	if err != nil {
		return Envelope{}, fmt.Errorf("message on %s: %w", msg.Subject(), err)
	}
	if md, err := msg.Metadata(); err == nil {
		e.Seq = md.Sequence.Stream
	}
	return e, nil
}

// headerOverhead is a generous bound of the bytes NATS adds to a message
// besides body and header values (the protocol line, header names).
const headerOverhead = 512

// newMsg builds the message of one event. When the message would exceed
// maxPayload (0: no limit), the data is left out (Envelope.DataOmitted).
func newMsg(prefix string, e eventstore.RecordedEvent, maxPayload int64) (*nats.Msg, error) {
	env := NewEnvelope(e)
	body, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	msg := nats.NewMsg(Subject(prefix, e.StreamID, e.Type))
	msg.Header.Set(HeaderMsgID, e.ID)
	msg.Header.Set(HeaderPosition, env.Position)
	msg.Header.Set(HeaderStreamID, string(e.StreamID))
	msg.Header.Set(HeaderVersion, strconv.FormatInt(e.Version, 10))
	msg.Header.Set(HeaderType, e.Type)
	msg.Header.Set(HeaderSchemaVersion, strconv.Itoa(e.SchemaVersion))
	msg.Header.Set(HeaderRecordedAt, env.RecordedAt.Format(time.RFC3339Nano))
	if maxPayload > 0 && int64(len(body)+len(msg.Subject)+len(e.Type)*2+len(e.StreamID)*2+headerOverhead) > maxPayload {
		env.Data, env.DataOmitted = nil, true
		if body, err = json.Marshal(env); err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
	}
	msg.Data = body
	return msg, nil
}
