package eventstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// Limits every store enforces on Append. They are part of the contract: a
// call that breaks one fails with ErrInvalid and writes nothing.
const (
	// MaxAppendEvents is the most events one Append call may carry.
	MaxAppendEvents = 1000
	// MaxEventDataBytes is the largest data or metadata document of one event.
	MaxEventDataBytes = 4 << 20
	// MaxEventTypeLength is the longest event type name.
	MaxEventTypeLength = 200
)

// ExpectedVersion is what Append requires of the stream before it writes.
// Versions start at 1, so Exact(0) and NoStream mean the same thing: the
// stream has no events yet.
type ExpectedVersion int64

const (
	// Any appends whatever the stream's version.
	Any ExpectedVersion = -1
	// NoStream requires that the stream has no events.
	NoStream ExpectedVersion = 0
	// StreamExists requires that the stream has at least one event.
	StreamExists ExpectedVersion = -2
)

// Exact requires that the stream's last version is v (0: no events).
func Exact(v int64) ExpectedVersion {
	if v < 0 {
		panic(fmt.Sprintf("eventstore: Exact(%d): negative version", v))
	}
	return ExpectedVersion(v)
}

// String describes the expectation for errors and logs.
func (e ExpectedVersion) String() string {
	switch e {
	case Any:
		return "any"
	case NoStream:
		return "no stream"
	case StreamExists:
		return "stream exists"
	default:
		return strconv.FormatInt(int64(e), 10)
	}
}

// Matches reports whether a stream whose last version is actual (0: no
// events) satisfies e.
func (e ExpectedVersion) Matches(actual int64) bool {
	switch {
	case e == Any:
		return true
	case e == StreamExists:
		return actual > 0
	default:
		return int64(e) == actual
	}
}

// Metadata travels with every event: who caused it and why. It is hashed
// into the chain with the data.
type Metadata struct {
	// CorrelationID ties together every event caused by one request.
	CorrelationID string `json:"correlation_id,omitempty"`
	// CausationID is the ID of the command or event that caused this one.
	CausationID string `json:"causation_id,omitempty"`
	// Actor is the principal on whose behalf the event was written.
	Actor string `json:"actor,omitempty"`
	// TraceParent is the W3C trace context, when there is one.
	TraceParent string `json:"traceparent,omitempty"`
}

// NewEvent is an event to append. ID is a ULID chosen by the caller: it is the
// durable idempotency key.
type NewEvent struct {
	ID            string
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
}

// Position is a place in the global order. Events are ordered by (Tx, Seq):
// Tx is the writing transaction's ID on PostgreSQL (0 on SQLite) and Seq the
// store-wide sequence number. The zero Position is before every event.
type Position struct {
	Tx  uint64
	Seq int64
}

// Less reports whether p comes before q in the global order.
func (p Position) Less(q Position) bool {
	if p.Tx != q.Tx {
		return p.Tx < q.Tx
	}
	return p.Seq < q.Seq
}

// IsZero reports whether p is the start of the global order.
func (p Position) IsZero() bool { return p == Position{} }

// String encodes p as "<tx>.<seq>"; ParsePosition reverses it.
func (p Position) String() string {
	return strconv.FormatUint(p.Tx, 10) + "." + strconv.FormatInt(p.Seq, 10)
}

// ParsePosition decodes the output of Position.String. The empty string is
// the zero Position.
func ParsePosition(s string) (Position, error) {
	if s == "" {
		return Position{}, nil
	}
	a, b, ok := strings.Cut(s, ".")
	if !ok {
		return Position{}, invalidf("position %q is not <tx>.<seq>", s)
	}
	tx, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return Position{}, invalidf("position %q: bad transaction part", s)
	}
	seq, err := strconv.ParseInt(b, 10, 64)
	if err != nil || seq < 0 {
		return Position{}, invalidf("position %q: bad sequence part", s)
	}
	return Position{Tx: tx, Seq: seq}, nil
}

// RecordedEvent is an event as the store holds it.
type RecordedEvent struct {
	ID            string
	StreamID      StreamID
	Version       int64
	Position      Position
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
	RecordedAt    time.Time
	PrevHash      []byte
	Hash          []byte
}

// AppendResult says what an Append did.
type AppendResult struct {
	// FirstVersion and LastVersion are the versions of the call's events.
	FirstVersion, LastVersion int64
	// Position is the global position of the call's last event.
	Position Position
	// Written is false when the call was an idempotent repeat that wrote nothing.
	Written bool
}

// ValidateAppend checks the arguments of an Append and returns the data and
// metadata of each event in canonical form (RFC 8785), which is what the hash
// chain covers. Stores call it before touching the database; they store the
// data as sent (so numbers keep their exact text) and the canonical metadata.
func ValidateAppend(stream StreamID, expected ExpectedVersion, events []NewEvent) (data, meta [][]byte, err error) {
	if err := stream.Validate(); err != nil {
		return nil, nil, err
	}
	if expected < StreamExists {
		return nil, nil, invalidf("expected version %d is not valid", int64(expected))
	}
	if len(events) == 0 {
		return nil, nil, invalidf("append to %s: no events", stream)
	}
	if len(events) > MaxAppendEvents {
		return nil, nil, invalidf("append to %s: %d events, more than %d", stream, len(events), MaxAppendEvents)
	}
	data = make([][]byte, len(events))
	meta = make([][]byte, len(events))
	seen := make(map[string]struct{}, len(events))
	for i, e := range events {
		if _, err := ulid.ParseStrict(e.ID); err != nil {
			return nil, nil, invalidf("append to %s: event %d: id %q is not a ULID", stream, i, e.ID)
		}
		if _, dup := seen[e.ID]; dup {
			return nil, nil, invalidf("append to %s: event id %s appears twice in one call", stream, e.ID)
		}
		seen[e.ID] = struct{}{}
		if e.Type == "" || len(e.Type) > MaxEventTypeLength || !utf8.ValidString(e.Type) {
			return nil, nil, invalidf("append to %s: event %s: type must be 1 to %d bytes of UTF-8", stream, e.ID, MaxEventTypeLength)
		}
		if e.SchemaVersion < 1 {
			return nil, nil, invalidf("append to %s: event %s: schema version %d < 1", stream, e.ID, e.SchemaVersion)
		}
		if len(e.Data) == 0 {
			return nil, nil, invalidf("append to %s: event %s: data is empty (use {} for none)", stream, e.ID)
		}
		if len(e.Data) > MaxEventDataBytes {
			return nil, nil, invalidf("append to %s: event %s: data is %d bytes, more than %d", stream, e.ID, len(e.Data), MaxEventDataBytes)
		}
		d, err := Canonicalize(e.Data)
		if err != nil {
			return nil, nil, invalidf("append to %s: event %s: data: %v", stream, e.ID, err)
		}
		m, err := canonicalMetadata(e.Metadata)
		if err != nil {
			return nil, nil, invalidf("append to %s: event %s: metadata: %v", stream, e.ID, err)
		}
		data[i], meta[i] = d, m
	}
	return data, meta, nil
}

// DecodeMetadata parses stored metadata. Stores keep it as a flat JSON
// object of strings, so this reads that shape directly (readers decode it
// once per event, which made encoding/json the cost of a global read) and
// falls back to encoding/json for anything else.
func DecodeMetadata(b []byte) (Metadata, error) {
	var m Metadata
	if fastMetadata(b, &m) {
		return m, nil
	}
	m = Metadata{}
	if err := json.Unmarshal(b, &m); err != nil {
		return Metadata{}, err
	}
	return m, nil
}

// fastMetadata parses {"key": "value", …} with strings free of escapes; it
// reports false for anything else, leaving the work to encoding/json.
func fastMetadata(b []byte, m *Metadata) bool {
	i := 0
	skip := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
			i++
		}
	}
	str := func() (string, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		i++
		start := i
		for i < len(b) && b[i] != '"' {
			if b[i] == '\\' || b[i] < 0x20 {
				return "", false
			}
			i++
		}
		if i >= len(b) {
			return "", false
		}
		s := string(b[start:i])
		i++
		return s, true
	}
	skip()
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	skip()
	if i < len(b) && b[i] == '}' {
		i++
		skip()
		return i == len(b)
	}
	for {
		skip()
		k, ok := str()
		if !ok {
			return false
		}
		skip()
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i++
		skip()
		v, ok := str()
		if !ok {
			return false
		}
		switch k {
		case "correlation_id":
			m.CorrelationID = v
		case "causation_id":
			m.CausationID = v
		case "actor":
			m.Actor = v
		case "traceparent":
			m.TraceParent = v
		default:
			return false
		}
		skip()
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			i++
			skip()
			return i == len(b)
		}
		return false
	}
}
