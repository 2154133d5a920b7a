// Package storetest is the conformance suite of eventstore.Store: one set of
// tests that every implementation (SQLite, PostgreSQL) runs through Run, so
// that both keep the same contract.
//
// The suite assumes nothing of an implementation beyond the eventstore
// package's documentation: positions are compared with Position.Less only
// (never Tx == 0, never contiguous Seq), stored data is compared in its
// canonical form (a store may re-encode JSON), and no test decides anything by
// timing. Each subtest opens its own store with Harness.New and may run in
// parallel with the others.
//
// Decisions the suite pins down where the package documentation leaves room
// (KurrentDB's idempotency rules are the model):
//
//   - A repeat (every event ID of the call stored in this stream, at
//     consecutive versions in the call's order, with the same type, schema
//     version and canonical data and metadata) succeeds with Written false and
//     the stored versions and position, when the expected version is Any,
//     StreamExists, or names the version just before the stored events, even
//     if later appends have made that exact version stale (KurrentDB reports
//     success there too).
//   - A repeat whose exact expected version does not describe where the
//     events are is an *IdempotencyError, not a ConcurrencyError: the IDs are
//     known, and retrying with a fresh version would never succeed.
//   - Content is compared in canonical form: re-sending the same document with
//     other member order or spacing is a repeat, not a conflict.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/eventstore"
)

// Harness adapts one implementation to the suite.
type Harness struct {
	// New returns an empty, open store for one test; the suite closes it.
	New func(t *testing.T) eventstore.Store
	// Tamper overwrites the stored data of one event with plain SQL, bypassing the store (tamper-detection test).
	Tamper func(t *testing.T, s eventstore.Store, stream eventstore.StreamID, version int64, data string)
}

// HangGuard is the deadline of every subtest's context. It only keeps a
// broken store from hanging the test run; nothing is asserted about speed.
const HangGuard = 60 * time.Second

// Run runs the conformance suite against the harness's stores, one t.Run
// subtest per case, in parallel. Cases for eventstore.Checkpoints and
// eventstore.Leader run when the store implements them.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("storetest: Harness.New is nil")
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"ExpectedVersion", testExpectedVersion},
		{"IdempotentRepeat", testIdempotentRepeat},
		{"IdempotencyConflict", testIdempotencyConflict},
		{"ConcurrentSameVersion", testConcurrentSameVersion},
		{"FollowConcurrentWriters", testFollowConcurrentWriters},
		{"Atomicity", testAtomicity},
		{"InvalidInput", testInvalidInput},
		{"ReadStreamPaging", testReadStreamPaging},
		{"ReadAllPaging", testReadAllPaging},
		{"ReadAllFilters", testReadAllFilters},
		{"Head", testHead},
		{"RecordedFields", testRecordedFields},
		{"Upcasting", testUpcasting},
		{"LargePayload", testLargePayload},
		{"Unicode", testUnicode},
		{"ContextCancel", testContextCancel},
		{"HashChain", testHashChain},
		{"TamperDetection", testTamperDetection},
		{"Wait", testWait},
		{"Checkpoints", testCheckpoints},
		{"Leader", testLeader},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, h)
		})
	}
}

// open returns a fresh store that is closed when the test ends.
func open(t *testing.T, h Harness) eventstore.Store {
	t.Helper()
	s := h.New(t)
	if s == nil {
		t.Fatal("Harness.New returned nil")
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// testContext is the test's context bounded by HangGuard.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), HangGuard)
	t.Cleanup(cancel)
	return ctx
}

// newEvent returns an event with a fresh ULID and schema version 1.
func newEvent(typ, data string) eventstore.NewEvent {
	return eventstore.NewEvent{
		ID:            ulid.Make().String(),
		Type:          typ,
		SchemaVersion: 1,
		Data:          json.RawMessage(data),
		Metadata:      eventstore.Metadata{CorrelationID: "corr-1", Actor: "storetest"},
	}
}

// newEvents returns n events of the type with data {"n": i}.
func newEvents(typ string, n int) []eventstore.NewEvent {
	evs := make([]eventstore.NewEvent, n)
	for i := range evs {
		evs[i] = newEvent(typ, fmt.Sprintf(`{"n":%d}`, i))
	}
	return evs
}

func mustAppend(t *testing.T, ctx context.Context, s eventstore.Store, stream eventstore.StreamID, expected eventstore.ExpectedVersion, evs ...eventstore.NewEvent) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctx, stream, expected, evs...)
	if err != nil {
		t.Fatalf("append %d events to %s at %s: %v", len(evs), stream, expected, err)
	}
	if !res.Written {
		t.Fatalf("append to %s at %s: Written = false for new events", stream, expected)
	}
	if got := res.LastVersion - res.FirstVersion + 1; got != int64(len(evs)) {
		t.Fatalf("append to %s: versions %d..%d for %d events", stream, res.FirstVersion, res.LastVersion, len(evs))
	}
	settle(t, ctx, s, res.Position)
	return res
}

// settle waits until the global order shows pos. A store may hold back an
// acknowledged event from global readers until every transaction that could
// precede it has ended (PostgreSQL's rule, and on a shared server those
// include other tests' transactions); tests that then read the global order
// wait for that, bounded by the test's hang guard, instead of assuming it.
func settle(t *testing.T, ctx context.Context, s eventstore.Store, pos eventstore.Position) {
	t.Helper()
	for {
		head, err := s.Head(ctx)
		if err != nil {
			t.Fatalf("head while waiting for %s to become visible: %v", pos, err)
		}
		if !head.Less(pos) {
			return
		}
		if err := s.Wait(ctx, head); err != nil {
			t.Fatalf("waiting for %s to become visible (head %s): %v", pos, head, err)
		}
	}
}

func mustReadStream(t *testing.T, ctx context.Context, s eventstore.Store, stream eventstore.StreamID) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	from := int64(1)
	for {
		page, err := s.ReadStream(ctx, stream, from, 500)
		if err != nil {
			t.Fatalf("read stream %s from %d: %v", stream, from, err)
		}
		out = append(out, page...)
		if len(page) < 500 {
			return out
		}
		from = page[len(page)-1].Version + 1
	}
}

// mustReadAll reads the whole global order and checks that positions
// strictly increase.
func mustReadAll(t *testing.T, ctx context.Context, s eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var (
		out   []eventstore.RecordedEvent
		after eventstore.Position
	)
	for range 10000 {
		page, next, err := s.ReadAll(ctx, eventstore.Query{After: after, Limit: 500})
		if err != nil {
			t.Fatalf("read all after %s: %v", after, err)
		}
		out = append(out, page...)
		if next.Less(after) {
			t.Fatalf("read all after %s: next %s goes backwards", after, next)
		}
		after = next
		if len(page) == 0 {
			checkIncreasing(t, out)
			return out
		}
	}
	t.Fatal("read all: did not reach the end")
	return nil
}

func checkIncreasing(t *testing.T, evs []eventstore.RecordedEvent) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if !evs[i-1].Position.Less(evs[i].Position) {
			t.Fatalf("positions not strictly increasing: %s (%s) then %s (%s)", evs[i-1].Position, evs[i-1].ID, evs[i].Position, evs[i].ID)
		}
	}
}

func ids(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func versions(evs []eventstore.RecordedEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}

func seq(from, to int64) []int64 {
	out := []int64{}
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

// snapshot is the whole store's content, to show that a failed call wrote
// nothing.
type snapshot struct {
	head eventstore.Position
	ids  []string
}

func takeSnapshot(t *testing.T, ctx context.Context, s eventstore.Store) snapshot {
	t.Helper()
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	return snapshot{head: head, ids: ids(mustReadAll(t, ctx, s))}
}

func (want snapshot) check(t *testing.T, ctx context.Context, s eventstore.Store, what string) {
	t.Helper()
	got := takeSnapshot(t, ctx, s)
	if got.head != want.head {
		t.Errorf("%s: head moved from %s to %s", what, want.head, got.head)
	}
	if !slices.Equal(got.ids, want.ids) {
		t.Errorf("%s: store changed: %d events before, %d after", what, len(want.ids), len(got.ids))
	}
}

// canonical returns the RFC 8785 form of a document, failing the test if it
// is not JSON.
func canonical(t *testing.T, doc []byte) string {
	t.Helper()
	c, err := eventstore.Canonicalize(doc)
	if err != nil {
		t.Fatalf("canonicalize %.80q: %v", doc, err)
	}
	return string(c)
}

// checkSame checks that a recorded event carries what was sent.
func checkSame(t *testing.T, got eventstore.RecordedEvent, want eventstore.NewEvent, stream eventstore.StreamID) {
	t.Helper()
	if got.ID != want.ID || got.StreamID != stream || got.Type != want.Type || got.SchemaVersion != want.SchemaVersion {
		t.Errorf("event %s: got id %s stream %s type %s schema %d, want stream %s type %s schema %d",
			want.ID, got.ID, got.StreamID, got.Type, got.SchemaVersion, stream, want.Type, want.SchemaVersion)
	}
	if g, w := canonical(t, got.Data), canonical(t, want.Data); g != w {
		t.Errorf("event %s: data %.200s, want %.200s", want.ID, g, w)
	}
	if got.Metadata != want.Metadata {
		t.Errorf("event %s: metadata %+v, want %+v", want.ID, got.Metadata, want.Metadata)
	}
}

// wantConcurrency checks that err is a *ConcurrencyError with the actual
// version.
func wantConcurrency(t *testing.T, err error, stream eventstore.StreamID, expected eventstore.ExpectedVersion, actual int64) {
	t.Helper()
	var ce *eventstore.ConcurrencyError
	switch {
	case err == nil:
		t.Errorf("append to %s at %s: no error, want ConcurrencyError (actual %d)", stream, expected, actual)
	case !errors.As(err, &ce):
		t.Errorf("append to %s at %s: %v (%T), want *ConcurrencyError", stream, expected, err, err)
	case !errors.Is(err, eventstore.ErrConcurrency) || errors.Is(err, eventstore.ErrDuplicateEvent):
		t.Errorf("append to %s at %s: %v does not match ErrConcurrency alone", stream, expected, err)
	case ce.Stream != stream || ce.Expected != expected || ce.Actual != actual:
		t.Errorf("append to %s at %s: ConcurrencyError{%s, %s, actual %d}, want actual %d", stream, expected, ce.Stream, ce.Expected, ce.Actual, actual)
	}
}

// wantIdempotency checks that err is an *IdempotencyError.
func wantIdempotency(t *testing.T, err error, what string) {
	t.Helper()
	var ie *eventstore.IdempotencyError
	switch {
	case err == nil:
		t.Errorf("%s: no error, want IdempotencyError", what)
	case !errors.As(err, &ie):
		t.Errorf("%s: %v (%T), want *IdempotencyError", what, err, err)
	case !errors.Is(err, eventstore.ErrDuplicateEvent) || errors.Is(err, eventstore.ErrConcurrency):
		t.Errorf("%s: %v does not match ErrDuplicateEvent alone", what, err)
	}
}
