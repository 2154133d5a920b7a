package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/eventstore"
)

func testExpectedVersion(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	tests := []struct {
		name     string
		existing int // events in the stream before the append
		expected eventstore.ExpectedVersion
		ok       bool
	}{
		{"empty/any", 0, eventstore.Any, true},
		{"empty/no stream", 0, eventstore.NoStream, true},
		{"empty/exact 0", 0, eventstore.Exact(0), true},
		{"empty/stream exists", 0, eventstore.StreamExists, false},
		{"empty/exact 1", 0, eventstore.Exact(1), false},
		{"empty/exact 5", 0, eventstore.Exact(5), false},
		{"existing/any", 2, eventstore.Any, true},
		{"existing/stream exists", 2, eventstore.StreamExists, true},
		{"existing/exact 2", 2, eventstore.Exact(2), true},
		{"existing/no stream", 2, eventstore.NoStream, false},
		{"existing/exact 1", 2, eventstore.Exact(1), false},
		{"existing/exact 3", 2, eventstore.Exact(3), false},
		{"existing/exact 10", 2, eventstore.Exact(10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := eventstore.NewStreamIDULID("ev")
			if tt.existing > 0 {
				mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvents("Seeded", tt.existing)...)
			}
			before := takeSnapshot(t, ctx, s)
			evs := newEvents("Tried", 2)
			res, err := s.Append(ctx, stream, tt.expected, evs...)
			n := int64(tt.existing)
			if !tt.ok {
				wantConcurrency(t, err, stream, tt.expected, n)
				before.check(t, ctx, s, "conflicting append")
				if got := mustReadStream(t, ctx, s, stream); int64(len(got)) != n {
					t.Errorf("stream has %d events after a conflict, want %d", len(got), n)
				}
				return
			}
			if err != nil {
				t.Fatalf("append at %s to a stream with %d events: %v", tt.expected, n, err)
			}
			if !res.Written || res.FirstVersion != n+1 || res.LastVersion != n+2 {
				t.Errorf("result %+v, want versions %d..%d written", res, n+1, n+2)
			}
			got := mustReadStream(t, ctx, s, stream)
			if !slices.Equal(versions(got), seq(1, n+2)) {
				t.Fatalf("versions %v, want 1..%d", versions(got), n+2)
			}
			for i, e := range evs {
				checkSame(t, got[int(n)+i], e, stream)
			}
			if got[len(got)-1].Position != res.Position {
				t.Errorf("result position %s, last event at %s", res.Position, got[len(got)-1].Position)
			}
			settle(t, ctx, s, res.Position)
			head, err := s.Head(ctx)
			if err != nil || head != res.Position {
				t.Errorf("head %s (%v), want %s", head, err, res.Position)
			}
		})
	}
}

func testIdempotentRepeat(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	tests := []struct {
		name string
		// seed events before the original append
		seed int
		// expected version of the original append and of the repeat
		first, repeat eventstore.ExpectedVersion
		events        int
		// events appended between the original and the repeat
		between int
		// reencode re-sends the data with other member order and spacing
		reencode bool
	}{
		{name: "exact", seed: 1, first: eventstore.Exact(1), repeat: eventstore.Exact(1), events: 2},
		{name: "any", first: eventstore.Any, repeat: eventstore.Any, events: 3},
		{name: "any after more appends", first: eventstore.Any, repeat: eventstore.Any, events: 2, between: 2},
		{name: "no stream single event", first: eventstore.NoStream, repeat: eventstore.NoStream, events: 1},
		{name: "no stream batch", first: eventstore.NoStream, repeat: eventstore.NoStream, events: 3},
		{name: "stream exists", seed: 2, first: eventstore.StreamExists, repeat: eventstore.StreamExists, events: 2},
		{name: "exact made stale by later appends", first: eventstore.Exact(0), repeat: eventstore.Exact(0), events: 2, between: 3},
		{name: "exact original, any repeat", seed: 1, first: eventstore.Exact(1), repeat: eventstore.Any, events: 2, between: 1},
		{name: "same content re-encoded", first: eventstore.NoStream, repeat: eventstore.NoStream, events: 2, reencode: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := eventstore.NewStreamIDULID("idem")
			if tt.seed > 0 {
				mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvents("Seeded", tt.seed)...)
			}
			evs := make([]eventstore.NewEvent, tt.events)
			for i := range evs {
				evs[i] = newEvent("Happened", `{"b":[1,2.50],"a":"x","i":`+strings.Repeat("1", i+1)+`}`)
				evs[i].Metadata.CausationID = "cause-" + evs[i].ID
			}
			orig := mustAppend(t, ctx, s, stream, tt.first, evs...)
			if tt.between > 0 {
				mustAppend(t, ctx, s, stream, eventstore.Any, newEvents("Later", tt.between)...)
			}
			repeat := slices.Clone(evs)
			if tt.reencode {
				for i := range repeat {
					repeat[i].Data = json.RawMessage(`{ "i" : ` + strings.Repeat("1", i+1) + `, "a":"x", "b":[1.0, 2.5] }`)
				}
			}
			before := takeSnapshot(t, ctx, s)
			res, err := s.Append(ctx, stream, tt.repeat, repeat...)
			if err != nil {
				t.Fatalf("repeat at %s: %v", tt.repeat, err)
			}
			want := orig
			want.Written = false
			if res != want {
				t.Errorf("repeat result %+v, want %+v", res, want)
			}
			before.check(t, ctx, s, "idempotent repeat")
			got := mustReadStream(t, ctx, s, stream)
			if n := tt.seed + tt.events + tt.between; len(got) != n {
				t.Errorf("stream has %d events, want %d", len(got), n)
			}
		})
	}
}

func testIdempotencyConflict(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	tests := []struct {
		name string
		// call builds the conflicting call, given the stream and the two
		// events appended to it at NoStream.
		call func(stream eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent)
	}{
		{"other data", func(st eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			e := old[0]
			e.Data = json.RawMessage(`{"n":42}`)
			return st, eventstore.NoStream, []eventstore.NewEvent{e, old[1]}
		}},
		{"other type", func(st eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			e := old[1]
			e.Type = "Other"
			return st, eventstore.NoStream, []eventstore.NewEvent{old[0], e}
		}},
		{"other schema version", func(st eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			e := old[0]
			e.SchemaVersion = 2
			return st, eventstore.Any, []eventstore.NewEvent{e, old[1]}
		}},
		{"other metadata", func(st eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			e := old[0]
			e.Metadata.Actor = "mallory"
			return st, eventstore.Any, []eventstore.NewEvent{e, old[1]}
		}},
		{"partial overlap, old first", func(st eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			return st, eventstore.Any, []eventstore.NewEvent{old[0], old[1], newEvent("New", `{}`)}
		}},
		{"partial overlap, new first", func(st eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			return st, eventstore.Exact(2), []eventstore.NewEvent{newEvent("New", `{}`), old[1]}
		}},
		{"partial overlap at the original version", func(st eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			return st, eventstore.NoStream, []eventstore.NewEvent{old[0], newEvent("New", `{}`)}
		}},
		{"other order", func(st eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			return st, eventstore.Any, []eventstore.NewEvent{old[1], old[0]}
		}},
		{"id used in another stream", func(_ eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			return eventstore.NewStreamIDULID("other"), eventstore.NoStream, old[:1]
		}},
		{"id used in another stream, any", func(_ eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			return eventstore.NewStreamIDULID("idem"), eventstore.Any, old
		}},
		{"exact version that does not describe the write", func(st eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			return st, eventstore.Exact(2), old
		}},
		{"exact version of the second event alone", func(st eventstore.StreamID, old []eventstore.NewEvent) (eventstore.StreamID, eventstore.ExpectedVersion, []eventstore.NewEvent) {
			return st, eventstore.Exact(0), old[1:]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := eventstore.NewStreamIDULID("idem")
			old := newEvents("Happened", 2)
			mustAppend(t, ctx, s, stream, eventstore.NoStream, old...)
			target, expected, evs := tt.call(stream, old)
			before := takeSnapshot(t, ctx, s)
			_, err := s.Append(ctx, target, expected, evs...)
			wantIdempotency(t, err, "append to "+string(target)+" at "+expected.String())
			before.check(t, ctx, s, "conflicting reuse of event ids")
		})
	}
}

func testConcurrentSameVersion(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	const writers = 16
	stream := eventstore.NewStreamIDULID("race")
	mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvents("Seeded", 2)...)

	type outcome struct {
		evs []eventstore.NewEvent
		res eventstore.AppendResult
		err error
	}
	out := make([]outcome, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		out[i].evs = newEvents("Raced", 1+i%3)
		wg.Go(func() {
			<-start
			out[i].res, out[i].err = s.Append(ctx, stream, eventstore.Exact(2), out[i].evs...)
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, o := range out {
		if o.err == nil {
			if winner >= 0 {
				t.Fatalf("writers %d and %d both appended at version 2", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won; first error: %v", out[0].err)
	}
	last := 2 + int64(len(out[winner].evs))
	for i, o := range out {
		if i != winner {
			wantConcurrency(t, o.err, stream, eventstore.Exact(2), last)
		}
	}
	got := mustReadStream(t, ctx, s, stream)
	if !slices.Equal(versions(got), seq(1, last)) {
		t.Fatalf("versions %v, want 1..%d", versions(got), last)
	}
	for i, e := range out[winner].evs {
		checkSame(t, got[2+i], e, stream)
	}
	if r := out[winner].res; !r.Written || r.FirstVersion != 3 || r.LastVersion != last || r.Position != got[len(got)-1].Position {
		t.Errorf("winner's result %+v, want 3..%d at %s", r, last, got[len(got)-1].Position)
	}
	if v := eventstore.VerifyChain(got); v != 0 {
		t.Errorf("hash chain broken at version %d", v)
	}
}

func testAtomicity(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	stream := eventstore.NewStreamIDULID("atom")
	mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvents("Seeded", 1)...)

	tests := []struct {
		name     string
		expected eventstore.ExpectedVersion
		bad      func(evs []eventstore.NewEvent)
		wantErr  error
	}{
		{"invalid last event", eventstore.Any, func(evs []eventstore.NewEvent) { evs[len(evs)-1].Data = json.RawMessage(`{"broken":`) }, eventstore.ErrInvalid},
		{"invalid middle event", eventstore.Exact(1), func(evs []eventstore.NewEvent) { evs[2].ID = "not-a-ulid" }, eventstore.ErrInvalid},
		{"conflict", eventstore.Exact(7), nil, eventstore.ErrConcurrency},
		{"no stream on existing stream", eventstore.NoStream, nil, eventstore.ErrConcurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := newEvents("Batch", 5)
			if tt.bad != nil {
				tt.bad(evs)
			}
			before := takeSnapshot(t, ctx, s)
			_, err := s.Append(ctx, stream, tt.expected, evs...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("append: %v, want %v", err, tt.wantErr)
			}
			before.check(t, ctx, s, "failed append")
			// The valid events' IDs were not consumed: they append now.
			var valid []eventstore.NewEvent
			for _, e := range evs {
				if _, err := ulid.ParseStrict(e.ID); err == nil && json.Valid(e.Data) {
					valid = append(valid, e)
				}
			}
			mustAppend(t, ctx, s, stream, eventstore.Any, valid...)
		})
	}
	if v := eventstore.VerifyChain(mustReadStream(t, ctx, s, stream)); v != 0 {
		t.Errorf("hash chain broken at version %d", v)
	}
}

func testInvalidInput(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	existing := eventstore.NewStreamIDULID("inv")
	mustAppend(t, ctx, s, existing, eventstore.NoStream, newEvents("Seeded", 1)...)

	one := func(mod func(e *eventstore.NewEvent)) []eventstore.NewEvent {
		e := newEvent("Valid", `{"ok":true}`)
		mod(&e)
		return []eventstore.NewEvent{e}
	}
	tooMany := newEvents("Many", eventstore.MaxAppendEvents+1)
	huge := `{"s":"` + strings.Repeat("x", eventstore.MaxEventDataBytes) + `"}`
	dup := newEvent("Dup", `{}`)
	tests := []struct {
		name     string
		stream   eventstore.StreamID
		expected eventstore.ExpectedVersion
		evs      []eventstore.NewEvent
	}{
		{"empty stream id", "", eventstore.Any, one(func(*eventstore.NewEvent) {})},
		{"stream id without category", "nodash", eventstore.Any, one(func(*eventstore.NewEvent) {})},
		{"upper-case category", "Bad-1", eventstore.Any, one(func(*eventstore.NewEvent) {})},
		{"stream id with space", "bad-a b", eventstore.Any, one(func(*eventstore.NewEvent) {})},
		{"stream id too long", eventstore.StreamID("long-" + strings.Repeat("x", eventstore.MaxStreamIDLength)), eventstore.Any, one(func(*eventstore.NewEvent) {})},
		{"bad expected version", existing, eventstore.ExpectedVersion(-3), one(func(*eventstore.NewEvent) {})},
		{"no events", existing, eventstore.Any, nil},
		{"non-ULID event id", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.ID = "event-1" })},
		{"ULID out of range", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.ID = "8" + e.ID[1:] })},
		{"duplicate id in one call", existing, eventstore.Any, []eventstore.NewEvent{dup, dup}},
		{"empty type", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.Type = "" })},
		{"schema version 0", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.SchemaVersion = 0 })},
		{"empty data", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.Data = nil })},
		{"bad JSON", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.Data = json.RawMessage(`{"a":}`) })},
		{"two JSON values", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.Data = json.RawMessage(`{} {}`) })},
		{"invalid UTF-8", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.Data = json.RawMessage("{\"a\":\"\xff\"}") })},
		{"NUL in a string", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.Data = json.RawMessage(`{"a":"x\u0000y"}`) })},
		{"NUL in a key", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.Data = json.RawMessage(`{"\u0000":1}`) })},
		{"NUL in metadata", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.Metadata.Actor = "a\x00b" })},
		{"data too large", existing, eventstore.Any, one(func(e *eventstore.NewEvent) { e.Data = json.RawMessage(huge) })},
		{"too many events", existing, eventstore.Any, tooMany},
		{"one bad event among good ones", existing, eventstore.Any, append(newEvents("Good", 3), one(func(e *eventstore.NewEvent) { e.Data = json.RawMessage(`nope`) })...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := takeSnapshot(t, ctx, s)
			_, err := s.Append(ctx, tt.stream, tt.expected, tt.evs...)
			if !errors.Is(err, eventstore.ErrInvalid) {
				t.Fatalf("append: %v, want ErrInvalid", err)
			}
			if errors.Is(err, eventstore.ErrConcurrency) || errors.Is(err, eventstore.ErrDuplicateEvent) {
				t.Errorf("append: %v also matches a conflict sentinel", err)
			}
			before.check(t, ctx, s, "invalid append")
		})
	}
}
