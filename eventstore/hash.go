package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// HashSize is the length of prev_hash and hash.
const HashSize = sha256.Size

// GenesisHash is the prev_hash of every stream's first event.
var GenesisHash = make([]byte, HashSize)

// TimeLayout is how recorded_at enters the hash: UTC, microseconds, which is
// the precision both stores keep.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// RecordedTime truncates t to what stores keep and hash: UTC microseconds.
func RecordedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// ContentHash is the SHA-256 of one event's content without its version and
// predecessor: stream, type, schema version, canonical data, canonical
// metadata and recorded time, each length-prefixed so that no two different
// contents frame to the same bytes.
func ContentHash(stream StreamID, typ string, schemaVersion int, canonicalData, canonicalMeta []byte, recordedAt time.Time) []byte {
	h := sha256.New()
	var n [8]byte
	length := func(l int) {
		binary.BigEndian.PutUint64(n[:], uint64(l))
		h.Write(n[:])
	}
	field := func(b []byte) {
		length(len(b))
		h.Write(b)
	}
	text := func(s string) {
		length(len(s))
		io.WriteString(h, s)
	}
	text(string(stream))
	text(typ)
	var sv [8]byte
	binary.BigEndian.PutUint64(sv[:], uint64(schemaVersion))
	field(sv[:])
	field(canonicalData)
	field(canonicalMeta)
	var at [len(TimeLayout)]byte
	field(RecordedTime(recordedAt).AppendFormat(at[:0], TimeLayout))
	return h.Sum(make([]byte, 0, HashSize))
}

// ChainHash links an event to its predecessor: SHA-256(prev_hash ‖ version as
// 8 bytes big-endian ‖ content hash). PostgreSQL computes the same expression
// (sha256(prev || int8send(version) || content)) inside its append function.
func ChainHash(prev []byte, version int64, content []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(version))
	h.Write(v[:])
	h.Write(content)
	return h.Sum(nil)
}

// EventHash recomputes the hash an event must carry, given its predecessor's
// hash, from the event's stored content.
func EventHash(prev []byte, e RecordedEvent) ([]byte, error) {
	data, err := Canonicalize(e.Data)
	if err != nil {
		return nil, fmt.Errorf("event %s version %d: data: %w", e.StreamID, e.Version, err)
	}
	meta, err := canonicalMetadata(e.Metadata)
	if err != nil {
		return nil, err
	}
	return ChainHash(prev, e.Version, ContentHash(e.StreamID, e.Type, e.SchemaVersion, data, meta, e.RecordedAt)), nil
}

// Chain verifies a stream's events one at a time, in version order. The zero
// Chain expects version 1 with the genesis hash.
type Chain struct {
	prev    []byte
	version int64
	broken  int64
}

// Next checks e against the chain so far and reports whether it holds. After
// the first failure Next keeps returning false; Broken names that version.
func (c *Chain) Next(e RecordedEvent) bool {
	if c.broken != 0 {
		return false
	}
	if c.prev == nil {
		c.prev = GenesisHash
	}
	want := c.version + 1
	ok := e.Version == want && bytes.Equal(e.PrevHash, c.prev)
	if ok {
		h, err := EventHash(c.prev, e)
		ok = err == nil && bytes.Equal(h, e.Hash)
	}
	if !ok {
		c.broken = want
		if e.Version > 0 && e.Version < want {
			c.broken = e.Version
		}
		return false
	}
	c.prev, c.version = e.Hash, e.Version
	return true
}

// Broken returns the first version that failed verification, or 0.
func (c *Chain) Broken() int64 { return c.broken }

// Verified returns how many events passed.
func (c *Chain) Verified() int64 { return c.version }

// VerifyChain checks a whole stream read in version order and returns the
// first version that fails (a missing version counts), or 0 when all hold.
func VerifyChain(events []RecordedEvent) int64 {
	var c Chain
	for _, e := range events {
		if !c.Next(e) {
			break
		}
	}
	return c.Broken()
}

// canonicalMetadata is canonicalJSON(m), written directly: the members of
// Metadata, in the order their JSON names sort, each left out when empty
// (omitempty), each value escaped as Canonicalize escapes strings.
// writeCanonicalString turns bytes that are not UTF-8 into U+FFFD as
// json.Marshal does, and refuses U+0000 as Canonicalize does.
func canonicalMetadata(m Metadata) ([]byte, error) {
	fields := [...]struct{ name, value string }{
		{`"actor":`, m.Actor},
		{`"causation_id":`, m.CausationID},
		{`"correlation_id":`, m.CorrelationID},
		{`"traceparent":`, m.TraceParent},
	}
	n := 2
	for _, f := range fields {
		n += len(f.name) + len(f.value) + 3
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	buf.WriteByte('{')
	first := true
	for _, f := range fields {
		if f.value == "" {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.WriteString(f.name)
		if err := writeCanonicalString(buf, f.value); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
