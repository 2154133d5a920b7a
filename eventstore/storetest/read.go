package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vega-sec/vega/eventstore"
)

func testFollowConcurrentWriters(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	const (
		writers          = 8
		appendsPerWriter = 20
		streamsPerWriter = 3
	)

	errStop := errors.New("sentinel seen")
	sentinel := newEvent("Sentinel", `{}`)
	type delivered struct {
		evs   []eventstore.RecordedEvent
		pages int
	}
	var got delivered
	followErr := make(chan error, 1)
	go func() {
		followErr <- eventstore.Follow(ctx, s, eventstore.Query{Limit: 16}, func(_ context.Context, page []eventstore.RecordedEvent, next eventstore.Position) error {
			got.evs = append(got.evs, page...)
			got.pages++
			if last := page[len(page)-1].Position; next.Less(last) {
				return fmt.Errorf("next %s is before the page's last event %s", next, last)
			}
			for _, e := range page {
				if e.ID == sentinel.ID {
					return errStop
				}
			}
			return nil
		})
	}()

	type written struct {
		ids  []string
		last map[string]eventstore.Position // event id -> AppendResult.Position of its call's last event
	}
	results := make([]written, writers)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			res := written{last: map[string]eventstore.Position{}}
			streams := make([]eventstore.StreamID, streamsPerWriter)
			vers := make([]int64, streamsPerWriter)
			for i := range streams {
				streams[i] = eventstore.NewStreamIDULID(fmt.Sprintf("w%d", w))
			}
			for i := range appendsPerWriter {
				k := i % streamsPerWriter
				evs := newEvents("Written", 1+(w+i)%3)
				r, err := s.Append(ctx, streams[k], eventstore.Exact(vers[k]), evs...)
				if err != nil {
					errs <- fmt.Errorf("writer %d append %d: %w", w, i, err)
					return
				}
				vers[k] = r.LastVersion
				for _, e := range evs {
					res.ids = append(res.ids, e.ID)
				}
				res.last[evs[len(evs)-1].ID] = r.Position
			}
			results[w] = res
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mustAppend(t, ctx, s, eventstore.NewStreamIDULID("sentinel"), eventstore.NoStream, sentinel)

	if err := <-followErr; !errors.Is(err, errStop) {
		t.Fatalf("follow: %v (delivered %d events)", err, len(got.evs))
	}
	checkIncreasing(t, got.evs)
	seen := make(map[string]eventstore.Position, len(got.evs))
	for _, e := range got.evs {
		if _, dup := seen[e.ID]; dup {
			t.Errorf("event %s delivered twice", e.ID)
		}
		seen[e.ID] = e.Position
	}
	want := 1
	for _, r := range results {
		want += len(r.ids)
		for _, id := range r.ids {
			if _, ok := seen[id]; !ok {
				t.Errorf("committed event %s never delivered", id)
			}
		}
		for id, pos := range r.last {
			if seen[id] != pos {
				t.Errorf("event %s delivered at %s, its append reported %s", id, seen[id], pos)
			}
		}
	}
	if len(seen) != want {
		t.Errorf("delivered %d distinct events, %d were written", len(seen), want)
	}
	// Every reader shares the order.
	if all := mustReadAll(t, ctx, s); !slices.Equal(ids(all), ids(got.evs)) {
		t.Errorf("a fresh ReadAll orders %d events differently from the follower's %d", len(all), len(got.evs))
	}
	t.Logf("follower received %d events in %d pages", len(got.evs), got.pages)
}

func testReadStreamPaging(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	stream := eventstore.NewStreamIDULID("page")
	other := eventstore.NewStreamIDULID("page")
	var sent []eventstore.NewEvent
	for _, n := range []int{3, 3, 4} {
		evs := newEvents("Paged", n)
		mustAppend(t, ctx, s, stream, eventstore.Any, evs...)
		mustAppend(t, ctx, s, other, eventstore.Any, newEvents("Noise", 2)...)
		sent = append(sent, evs...)
	}
	tests := []struct {
		from  int64
		limit int
		want  []int64
	}{
		{1, 3, seq(1, 3)},
		{4, 3, seq(4, 6)},
		{7, 3, seq(7, 9)},
		{10, 3, seq(10, 10)},
		{11, 3, seq(11, 10)},
		{1, 100, seq(1, 10)},
		{5, 1, seq(5, 5)},
		{2, 9, seq(2, 10)},
		{1000, 5, seq(1, 0)},
	}
	for _, tt := range tests {
		got, err := s.ReadStream(ctx, stream, tt.from, tt.limit)
		if err != nil {
			t.Fatalf("ReadStream(from %d, limit %d): %v", tt.from, tt.limit, err)
		}
		if !slices.Equal(versions(got), tt.want) {
			t.Errorf("ReadStream(from %d, limit %d) = versions %v, want %v", tt.from, tt.limit, versions(got), tt.want)
		}
		for _, e := range got {
			checkSame(t, e, sent[e.Version-1], stream)
		}
	}
	got, err := s.ReadStream(ctx, eventstore.NewStreamIDULID("page"), 1, 10)
	if err != nil || len(got) != 0 {
		t.Errorf("ReadStream of a stream without events = %d events, %v; want none, nil", len(got), err)
	}
	// Positions within a stream follow its versions.
	all := mustReadStream(t, ctx, s, stream)
	checkIncreasing(t, all)
}

func testReadAllPaging(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	page, _, err := s.ReadAll(ctx, eventstore.Query{})
	if err != nil || len(page) != 0 {
		t.Fatalf("ReadAll of an empty store = %d events, %v; want none", len(page), err)
	}
	var sent []string
	streams := []eventstore.StreamID{eventstore.NewStreamIDULID("a"), eventstore.NewStreamIDULID("b"), eventstore.NewStreamIDULID("c")}
	for i := range 12 {
		evs := newEvents("Paged", 1+i%3)
		mustAppend(t, ctx, s, streams[i%3], eventstore.Any, evs...)
		for _, e := range evs {
			sent = append(sent, e.ID)
		}
	}
	full := mustReadAll(t, ctx, s)
	if !slices.Equal(ids(full), sent) {
		t.Fatalf("ReadAll order differs from the order of sequential appends")
	}
	for _, limit := range []int{1, 3, 7, len(full), len(full) + 5} {
		var (
			got   []eventstore.RecordedEvent
			after eventstore.Position
		)
		for range len(full) + 2 {
			page, next, err := s.ReadAll(ctx, eventstore.Query{After: after, Limit: limit})
			if err != nil {
				t.Fatalf("limit %d: ReadAll after %s: %v", limit, after, err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d events", limit, len(page))
			}
			if len(page) > 0 && next.Less(page[len(page)-1].Position) {
				t.Fatalf("limit %d: next %s is before the page's last event", limit, next)
			}
			got = append(got, page...)
			after = next
			if len(page) == 0 {
				break
			}
		}
		if !slices.Equal(ids(got), ids(full)) {
			t.Errorf("limit %d: paged read gave %d events, full read %d, or another order", limit, len(got), len(full))
		}
	}
	// Resuming from the last event's position gives exactly the later ones.
	mid := full[len(full)/2]
	rest, _, err := s.ReadAll(ctx, eventstore.Query{After: mid.Position})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(rest), ids(full[len(full)/2+1:])) {
		t.Errorf("ReadAll after %s gave %d events, want the %d after it", mid.Position, len(rest), len(full)-len(full)/2-1)
	}
}

func testReadAllFilters(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	cats := []string{"alpha", "beta", "gamma"}
	types := []string{"Created", "Updated", "Deleted"}
	appendMix := func(t *testing.T, s eventstore.Store, round int) {
		t.Helper()
		for i := range 9 {
			stream := eventstore.NewStreamID(cats[(i+round)%3], fmt.Sprintf("s%d", i%2))
			evs := []eventstore.NewEvent{newEvent(types[i%3], `{}`), newEvent(types[(i+round)%3], `{}`)}
			mustAppend(t, ctx, s, stream, eventstore.Any, evs...)
		}
	}
	appendMix(t, s, 0)
	tests := []struct {
		name  string
		cats  []string
		types []string
	}{
		{"one category", []string{"beta"}, nil},
		{"two categories", []string{"alpha", "gamma"}, nil},
		{"one type", nil, []string{"Updated"}},
		{"category and type", []string{"alpha"}, []string{"Deleted", "Created"}},
		{"unknown category", []string{"nothing"}, nil},
		{"unknown type", nil, []string{"Nothing"}},
	}
	match := func(e eventstore.RecordedEvent, cats, types []string) bool {
		return (len(cats) == 0 || slices.Contains(cats, e.StreamID.Category())) &&
			(len(types) == 0 || slices.Contains(types, e.Type))
	}
	// read follows the filtered order from after, in pages of 2, until an
	// empty page, and returns what it read and where it stopped.
	read := func(t *testing.T, s eventstore.Store, after eventstore.Position, cats, types []string) ([]eventstore.RecordedEvent, eventstore.Position) {
		t.Helper()
		var got []eventstore.RecordedEvent
		for range 200 {
			page, next, err := s.ReadAll(ctx, eventstore.Query{After: after, Categories: cats, Types: types, Limit: 2})
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if next.Less(after) {
				t.Fatalf("next %s is before after %s", next, after)
			}
			for _, e := range page {
				if !after.Less(e.Position) {
					t.Fatalf("event %s at %s is not after %s", e.ID, e.Position, after)
				}
			}
			got = append(got, page...)
			after = next
			if len(page) == 0 {
				return got, after
			}
		}
		t.Fatal("filtered read did not reach the end")
		return nil, after
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full := mustReadAll(t, ctx, s)
			var want []string
			for _, e := range full {
				if match(e, tt.cats, tt.types) {
					want = append(want, e.ID)
				}
			}
			got, next := read(t, s, eventstore.Position{}, tt.cats, tt.types)
			if !slices.Equal(ids(got), want) {
				t.Fatalf("filtered read gave %d events, want %d in global order", len(got), len(want))
			}
			checkIncreasing(t, got)
			for _, e := range got {
				if !match(e, tt.cats, tt.types) {
					t.Errorf("event %s (%s, %s) does not match the filter", e.ID, e.StreamID, e.Type)
				}
			}
			// Nothing new: resuming gives nothing.
			again, _ := read(t, s, next, tt.cats, tt.types)
			if len(again) != 0 {
				t.Errorf("resume with nothing new gave %d events", len(again))
			}
		})
	}
	// A filtered reader resumes from next without skipping or repeating
	// events appended after it stopped, matching or not.
	for _, tt := range tests {
		t.Run(tt.name+"/resume", func(t *testing.T) {
			s := open(t, h)
			appendMix(t, s, 0)
			_, next := read(t, s, eventstore.Position{}, tt.cats, tt.types)
			before := mustReadAll(t, ctx, s)
			appendMix(t, s, 1)
			after := mustReadAll(t, ctx, s)[len(before):]
			var want []string
			for _, e := range after {
				if match(e, tt.cats, tt.types) {
					want = append(want, e.ID)
				}
			}
			got, _ := read(t, s, next, tt.cats, tt.types)
			if !slices.Equal(ids(got), want) {
				t.Errorf("resumed filtered read gave %d events, want the %d new matching ones", len(got), len(want))
			}
		})
	}
}

func testHead(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	head, err := s.Head(ctx)
	if err != nil || !head.IsZero() {
		t.Fatalf("head of an empty store = %s, %v; want zero", head, err)
	}
	stream := eventstore.NewStreamIDULID("head")
	var prev eventstore.Position
	for i := range 3 {
		res := mustAppend(t, ctx, s, stream, eventstore.Any, newEvents("Moved", i+1)...)
		head, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if head != res.Position {
			t.Errorf("head %s after an append that ended at %s", head, res.Position)
		}
		if !prev.Less(head) {
			t.Errorf("head %s did not move past %s", head, prev)
		}
		prev = head
	}
	all := mustReadAll(t, ctx, s)
	if all[len(all)-1].Position != prev {
		t.Errorf("last event at %s, head %s", all[len(all)-1].Position, prev)
	}
	if _, err := s.Append(ctx, stream, eventstore.NoStream, newEvent("Nope", `{}`)); !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("conflicting append: %v", err)
	}
	if head, err := s.Head(ctx); err != nil || head != prev {
		t.Errorf("head %s (%v) after a failed append, want %s", head, err, prev)
	}
}

func testRecordedFields(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	stream := eventstore.NewStreamIDULID("fields")
	e := newEvent("Recorded", `{"num": 1.50, "big": 12345678901234567890, "neg": -0.0, "nested": {"z": [true, null], "a": {}}}`)
	e.SchemaVersion = 3
	e.Metadata = eventstore.Metadata{CorrelationID: "c-1", CausationID: "cmd-9", Actor: "user:ada", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	res := mustAppend(t, ctx, s, stream, eventstore.NoStream, e)
	byStream := mustReadStream(t, ctx, s, stream)
	all := mustReadAll(t, ctx, s)
	if len(byStream) != 1 || len(all) != 1 {
		t.Fatalf("read %d events by stream and %d in all, want 1", len(byStream), len(all))
	}
	got := byStream[0]
	checkSame(t, got, e, stream)
	if got.Version != 1 || got.Position != res.Position {
		t.Errorf("version %d position %s, want 1 at %s", got.Version, got.Position, res.Position)
	}
	if got.RecordedAt.IsZero() || got.RecordedAt.Location() != time.UTC || !got.RecordedAt.Equal(eventstore.RecordedTime(got.RecordedAt)) {
		t.Errorf("recorded at %v: want a non-zero UTC time in whole microseconds", got.RecordedAt)
	}
	a := all[0]
	if a.ID != got.ID || a.Position != got.Position || !a.RecordedAt.Equal(got.RecordedAt) ||
		string(a.Hash) != string(got.Hash) || string(a.PrevHash) != string(got.PrevHash) ||
		canonical(t, a.Data) != canonical(t, got.Data) || a.Metadata != got.Metadata {
		t.Errorf("ReadAll and ReadStream disagree about event %s", got.ID)
	}
}

func testUpcasting(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	type thing struct {
		Name   string `json:"name"`
		Source string `json:"source"`
	}
	reg := eventstore.NewRegistry()
	if err := reg.Register("ThingAdded", 2, func() any { return new(thing) }); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterUpcaster("ThingAdded", 1, func(d json.RawMessage) (json.RawMessage, error) {
		var old struct {
			N string `json:"n"`
		}
		if err := json.Unmarshal(d, &old); err != nil {
			return nil, err
		}
		return json.Marshal(thing{Name: old.N, Source: "upcast"})
	}); err != nil {
		t.Fatal(err)
	}
	stream := eventstore.NewStreamIDULID("thing")
	v1 := newEvent("ThingAdded", `{"n":"ada"}`)
	sv, data, err := reg.Encode("ThingAdded", thing{Name: "grace", Source: "new"})
	if err != nil {
		t.Fatal(err)
	}
	v2 := newEvent("ThingAdded", string(data))
	v2.SchemaVersion = sv
	mustAppend(t, ctx, s, stream, eventstore.NoStream, v1, v2)

	want := []thing{{"ada", "upcast"}, {"grace", "new"}}
	for name, evs := range map[string][]eventstore.RecordedEvent{"ReadStream": mustReadStream(t, ctx, s, stream), "ReadAll": mustReadAll(t, ctx, s)} {
		if len(evs) != 2 {
			t.Fatalf("%s: %d events, want 2", name, len(evs))
		}
		for i, e := range evs {
			v, err := reg.Decode(e)
			if err != nil {
				t.Fatalf("%s: decode %s: %v", name, e.ID, err)
			}
			if got := *v.(*thing); got != want[i] {
				t.Errorf("%s: event %d decoded to %+v, want %+v", name, i+1, got, want[i])
			}
		}
	}
	// History is not rewritten: the stored event is still schema version 1.
	stored := mustReadStream(t, ctx, s, stream)
	checkSame(t, stored[0], v1, stream)
	if up, err := reg.Upcast(stored[0]); err != nil || up.SchemaVersion != 2 {
		t.Errorf("upcast = schema version %d, %v; want 2", up.SchemaVersion, err)
	}
}

func testLargePayload(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	stream := eventstore.NewStreamIDULID("large")
	big := strings.Repeat("0123456789abcdef", (1<<20)/16) // 1 MiB
	evs := []eventstore.NewEvent{
		newEvent("Large", `{"blob":"`+big+`"}`),
		newEvent("Small", `{}`),
		newEvent("Large", `{"items":[`+strings.TrimSuffix(strings.Repeat(`"`+big[:1000]+`",`, 100), ",")+`]}`),
	}
	res := mustAppend(t, ctx, s, stream, eventstore.NoStream, evs...)
	got := mustReadStream(t, ctx, s, stream)
	if len(got) != len(evs) {
		t.Fatalf("read %d events, want %d", len(got), len(evs))
	}
	for i, e := range evs {
		checkSame(t, got[i], e, stream)
	}
	if v := eventstore.VerifyChain(got); v != 0 {
		t.Errorf("hash chain broken at version %d", v)
	}
	// A repeat of the large append is recognised as such.
	again, err := s.Append(ctx, stream, eventstore.NoStream, evs...)
	if err != nil || again.Written || again.LastVersion != res.LastVersion {
		t.Errorf("repeat of a large append = %+v, %v", again, err)
	}
}

func testUnicode(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	stream := eventstore.NewStreamIDULID("text")
	docs := []string{
		"{\"de\":\"Grüße aus Köln\",\"ja\":\"日本語のテキスト\",\"emoji\":\"🔐🚀👩🏽\u200d💻\",\"rtl\":\"שלום עולם مرحبا بالعالم\",\"mixed\":\"abc \u202edef\u202c ghi\"}",
		`{"escaped":"\u00e9\ud83d\ude00\u200b","ctrl":"tab\tnew\nline\r\"quote\" back\\slash \u001f","slash":"a/b<c>&d"}`,
		`{"ключ":"значение","🔑":"🗝","€":1,"z":2,"\ud800\udc00":"surrogate pair key"}`,
		`{"combining":"e\u0301 vs \u00e9","zero_width":"a\u200db","bom":"\ufeff"}`,
		`["array", "of", "текст", 1, 2.5, -3e-7, true, null]`,
		`"a plain string 🌍"`,
	}
	var evs []eventstore.NewEvent
	for _, d := range docs {
		e := newEvent("Texted", d)
		e.Metadata.Actor = "José 👩\u200d💻 מנהל"
		evs = append(evs, e)
	}
	mustAppend(t, ctx, s, stream, eventstore.NoStream, evs...)
	got := mustReadStream(t, ctx, s, stream)
	if len(got) != len(evs) {
		t.Fatalf("read %d events, want %d", len(got), len(evs))
	}
	for i, e := range evs {
		checkSame(t, got[i], e, stream)
	}
	if v := eventstore.VerifyChain(got); v != 0 {
		t.Errorf("hash chain broken at version %d", v)
	}
}

func testContextCancel(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	stream := eventstore.NewStreamIDULID("cancel")
	pad := strings.Repeat("x", 4096)
	for range 4 {
		evs := make([]eventstore.NewEvent, 100)
		for i := range evs {
			evs[i] = newEvent("Padded", fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, pad))
		}
		mustAppend(t, ctx, s, stream, eventstore.Any, evs...)
	}
	before := takeSnapshot(t, ctx, s)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	wantCanceled := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", what, err)
		}
	}
	_, _, err := s.ReadAll(cancelled, eventstore.Query{})
	wantCanceled("ReadAll", err)
	_, err = s.ReadStream(cancelled, stream, 1, 10)
	wantCanceled("ReadStream", err)
	_, err = s.Head(cancelled)
	wantCanceled("Head", err)
	wantCanceled("Wait", s.Wait(cancelled, before.head))
	_, err = s.Append(cancelled, stream, eventstore.Any, newEvent("Cancelled", `{}`))
	wantCanceled("Append", err)
	before.check(t, ctx, s, "append with a cancelled context")

	// Cancel while a follower is between pages.
	n := 0
	fctx, fcancel := context.WithCancel(ctx)
	err = eventstore.Follow(fctx, s, eventstore.Query{Limit: 50}, func(_ context.Context, page []eventstore.RecordedEvent, _ eventstore.Position) error {
		n += len(page)
		fcancel()
		return nil
	})
	wantCanceled("Follow", err)
	if n != 50 {
		t.Errorf("follower saw %d events before the cancel, want one page of 50", n)
	}

	// Cancel while reads are running: each read either completes or fails
	// with the context's error, never with anything else.
	var wg sync.WaitGroup
	for i := range 20 {
		rctx, rcancel := context.WithCancel(ctx)
		wg.Go(func() {
			for range 2 {
				page, _, err := s.ReadAll(rctx, eventstore.Query{})
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("ReadAll cancelled mid-read: %v, want context.Canceled", err)
					}
					return
				}
				if len(page) != len(before.ids) {
					t.Errorf("ReadAll returned %d events without error, want %d", len(page), len(before.ids))
				}
			}
		})
		time.Sleep(time.Duration(i%4) * time.Millisecond) // spread the cancels over the reads; not asserted
		rcancel()
	}
	wg.Wait()

	// The store still works, on every pooled connection.
	for range 6 {
		before.check(t, ctx, s, "reads after cancels")
	}
	mustAppend(t, ctx, s, stream, eventstore.Exact(400), newEvent("After", `{}`))
	if got := mustReadStream(t, ctx, s, stream); len(got) != 401 || eventstore.VerifyChain(got) != 0 {
		t.Errorf("after cancels: %d events, chain broken at %d", len(got), eventstore.VerifyChain(got))
	}
}

func testHashChain(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	a, b := eventstore.NewStreamIDULID("chain"), eventstore.NewStreamIDULID("chain")
	for _, n := range []int{1, 3, 2, 1, 4} {
		mustAppend(t, ctx, s, a, eventstore.Any, newEvents("Linked", n)...)
		mustAppend(t, ctx, s, b, eventstore.Any, newEvents("Other", 1)...)
	}
	all := mustReadAll(t, ctx, s)
	for _, stream := range []eventstore.StreamID{a, b} {
		evs := mustReadStream(t, ctx, s, stream)
		prev := eventstore.GenesisHash
		for _, e := range evs {
			if len(e.Hash) != eventstore.HashSize || string(e.PrevHash) != string(prev) {
				t.Fatalf("%s version %d: prev hash %x, want %x (hash %d bytes)", stream, e.Version, e.PrevHash, prev, len(e.Hash))
			}
			prev = e.Hash
		}
		if v := eventstore.VerifyChain(evs); v != 0 {
			t.Errorf("%s: chain broken at version %d", stream, v)
		}
		var fromAll []eventstore.RecordedEvent
		for _, e := range all {
			if e.StreamID == stream {
				fromAll = append(fromAll, e)
			}
		}
		if v := eventstore.VerifyChain(fromAll); v != 0 || len(fromAll) != len(evs) {
			t.Errorf("%s read through ReadAll: %d events, chain broken at %d", stream, len(fromAll), v)
		}
	}
}

func testTamperDetection(t *testing.T, h Harness) {
	if h.Tamper == nil {
		t.Skip("Harness.Tamper is nil: this implementation cannot be tampered with from the suite")
	}
	s := open(t, h)
	ctx := testContext(t)
	stream := eventstore.NewStreamIDULID("tamper")
	mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvents("Signed", 2)...)
	mustAppend(t, ctx, s, stream, eventstore.Exact(2), newEvents("Signed", 3)...)
	if v := eventstore.VerifyChain(mustReadStream(t, ctx, s, stream)); v != 0 {
		t.Fatalf("chain broken at version %d before tampering", v)
	}
	h.Tamper(t, s, stream, 3, `{"n":999,"forged":true}`)
	evs := mustReadStream(t, ctx, s, stream)
	if !strings.Contains(string(evs[2].Data), "forged") {
		t.Fatalf("Tamper did not change version 3: %s", evs[2].Data)
	}
	if v := eventstore.VerifyChain(evs); v != 3 {
		t.Errorf("VerifyChain after tampering with version 3 = %d, want 3", v)
	}
}

func testWait(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := testContext(t)
	stream := eventstore.NewStreamIDULID("wait")

	// Events already after the position: Wait returns.
	mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvent("First", `{}`))
	if err := s.Wait(ctx, eventstore.Position{}); err != nil {
		t.Fatalf("wait with an event after the position: %v", err)
	}

	// Waiters at the head wake up after an append from another goroutine.
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 4
	woke := make(chan error, waiters)
	for range waiters {
		go func() { woke <- s.Wait(ctx, head) }()
	}
	e := newEvent("Second", `{}`)
	go func() {
		time.Sleep(20 * time.Millisecond) // let the waiters block first; not asserted
		if _, err := s.Append(ctx, stream, eventstore.Exact(1), e); err != nil {
			t.Errorf("append: %v", err)
		}
	}()
	for range waiters {
		if err := <-woke; err != nil {
			t.Fatalf("wait for an append: %v", err)
		}
		// Wait may return early (the contract allows it); the event is
		// visible once the append has returned, so read until it is.
		page, _, err := waitRead(ctx, s, head)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 1 || page[0].ID != e.ID {
			t.Fatalf("after wake-up read %v, want [%s]", ids(page), e.ID)
		}
	}

	// A waiter whose context ends returns its error.
	head, err = s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Wait(wctx, head) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context: %v, want context.Canceled", err)
	}
}

// waitRead reads after the position, waiting while nothing is there.
func waitRead(ctx context.Context, s eventstore.Store, after eventstore.Position) ([]eventstore.RecordedEvent, eventstore.Position, error) {
	for {
		page, next, err := s.ReadAll(ctx, eventstore.Query{After: after})
		if err != nil || len(page) > 0 {
			return page, next, err
		}
		if err := s.Wait(ctx, after); err != nil {
			return nil, after, err
		}
	}
}
