package eventstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/eventstore"
)

func TestCanonicalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"member order", `{"b":1,"a":2}`, `{"a":2,"b":1}`},
		{"spacing", "{ \"a\" : [ 1 , 2 ] }", `{"a":[1,2]}`},
		{"numbers", `[1.0, 1e6, 1e21, 0.000001, 1e-7, -0, 123456789012, 4.50]`, `[1,1000000,1e+21,0.000001,1e-7,0,123456789012,4.5]`},
		{"escapes", `"\u0041\n\u001f\u00e9/"`, "\"A\\n\\u001f\u00e9/\""},
		{"utf16 order", `{"\u20ac":1,"\ud83d\ude00":2,"z":3}`, "{\"z\":3,\"\u20ac\":1,\"\U0001F600\":2}"},
		{"literals", `[true,false,null]`, `[true,false,null]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eventstore.Canonicalize([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Canonicalize(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
	for _, bad := range []string{``, `{`, `{"a":1} {}`, `{} x`, `1x`, `[1] ]`, `"\u0000"`, "\"\xff\"", `NaN`} {
		if _, err := eventstore.Canonicalize([]byte(bad)); err == nil {
			t.Errorf("Canonicalize(%q) accepted a bad document", bad)
		}
	}
}

func TestStreamID(t *testing.T) {
	t.Parallel()
	s := eventstore.NewStreamID("scan", "01J0000000000000000000000")
	if s.Category() != "scan" || s.ID() != "01J0000000000000000000000" {
		t.Errorf("category %q id %q", s.Category(), s.ID())
	}
	for _, ok := range []string{"scan-1", "a_b2-x.y:z-w"} {
		if err := eventstore.StreamID(ok).Validate(); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "scan", "-x", "scan-", "Scan-1", "1scan-x", "scan-a b", "scan-é"} {
		if err := eventstore.StreamID(bad).Validate(); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%q: got %v, want ErrInvalid", bad, err)
		}
	}
}

func TestPosition(t *testing.T) {
	t.Parallel()
	p := eventstore.Position{Tx: 7, Seq: 42}
	got, err := eventstore.ParsePosition(p.String())
	if err != nil || got != p {
		t.Fatalf("round trip %v: %v %v", p, got, err)
	}
	if !(eventstore.Position{Tx: 1, Seq: 9}).Less(eventstore.Position{Tx: 2, Seq: 1}) {
		t.Error("tx must order before seq")
	}
	for _, bad := range []string{"x", "1.", ".1", "1.-1"} {
		if _, err := eventstore.ParsePosition(bad); err == nil {
			t.Errorf("ParsePosition(%q) accepted", bad)
		}
	}
}

func TestExpectedVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e      eventstore.ExpectedVersion
		actual int64
		want   bool
	}{
		{eventstore.Any, 0, true}, {eventstore.Any, 5, true},
		{eventstore.NoStream, 0, true}, {eventstore.NoStream, 1, false},
		{eventstore.StreamExists, 0, false}, {eventstore.StreamExists, 3, true},
		{eventstore.Exact(3), 3, true}, {eventstore.Exact(3), 2, false},
	}
	for _, tt := range tests {
		if got := tt.e.Matches(tt.actual); got != tt.want {
			t.Errorf("%s.Matches(%d) = %v", tt.e, tt.actual, got)
		}
	}
}

// chain builds a valid stream the way a store does.
func chain(t *testing.T, n int) []eventstore.RecordedEvent {
	t.Helper()
	stream := eventstore.StreamID("test-1")
	prev := eventstore.GenesisHash
	var out []eventstore.RecordedEvent
	for i := 1; i <= n; i++ {
		e := eventstore.RecordedEvent{
			ID: ulid.Make().String(), StreamID: stream, Version: int64(i), Type: "Happened", SchemaVersion: 1,
			Data:       json.RawMessage(fmt.Sprintf(`{"n": %d, "a": "ü"}`, i)),
			Metadata:   eventstore.Metadata{Actor: "admin"},
			RecordedAt: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		}
		h, err := eventstore.EventHash(prev, e)
		if err != nil {
			t.Fatal(err)
		}
		e.PrevHash, e.Hash = prev, h
		prev = h
		out = append(out, e)
	}
	return out
}

func TestVerifyChain(t *testing.T) {
	t.Parallel()
	if got := eventstore.VerifyChain(chain(t, 5)); got != 0 {
		t.Fatalf("valid chain broken at %d", got)
	}
	// Reordered members and spacing verify the same: the hash covers the canonical form.
	evs := chain(t, 3)
	evs[1].Data = json.RawMessage(`{ "a" : "ü", "n" : 2 }`)
	if got := eventstore.VerifyChain(evs); got != 0 {
		t.Fatalf("re-encoded data broke the chain at %d", got)
	}
	tamper := []struct {
		name string
		mod  func(e []eventstore.RecordedEvent)
		want int64
	}{
		{"data", func(e []eventstore.RecordedEvent) { e[2].Data = json.RawMessage(`{"n":99,"a":"ü"}`) }, 3},
		{"type", func(e []eventstore.RecordedEvent) { e[0].Type = "Other" }, 1},
		{"metadata", func(e []eventstore.RecordedEvent) { e[3].Metadata.Actor = "mallory" }, 4},
		{"time", func(e []eventstore.RecordedEvent) { e[1].RecordedAt = e[1].RecordedAt.Add(time.Microsecond) }, 2},
		{"missing version", func(e []eventstore.RecordedEvent) { copy(e[2:], e[3:]) }, 3},
		{"prev hash", func(e []eventstore.RecordedEvent) { e[4].PrevHash = eventstore.GenesisHash }, 5},
	}
	for _, tt := range tamper {
		evs := chain(t, 5)
		tt.mod(evs)
		if got := eventstore.VerifyChain(evs); got != tt.want {
			t.Errorf("%s: broken at %d, want %d", tt.name, got, tt.want)
		}
	}
}

type v2 struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

func TestRegistryUpcast(t *testing.T) {
	t.Parallel()
	r := eventstore.NewRegistry()
	if err := r.Register("UserAdded", 2, func() any { return new(v2) }); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("UserAdded", 1, func() any { return new(v2) }); err == nil {
		t.Error("duplicate registration accepted")
	}
	if err := r.RegisterUpcaster("UserAdded", 1, func(d json.RawMessage) (json.RawMessage, error) {
		var old struct {
			N string `json:"n"`
		}
		if err := json.Unmarshal(d, &old); err != nil {
			return nil, err
		}
		return json.Marshal(v2{Name: old.N, Email: "unknown"})
	}); err != nil {
		t.Fatal(err)
	}
	got, err := r.Decode(eventstore.RecordedEvent{Type: "UserAdded", SchemaVersion: 1, Data: json.RawMessage(`{"n":"ada"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if u := got.(*v2); u.Name != "ada" || u.Email != "unknown" {
		t.Errorf("upcast = %+v", u)
	}
	if _, err := r.Decode(eventstore.RecordedEvent{Type: "UserAdded", SchemaVersion: 3, Data: json.RawMessage(`{}`)}); err == nil {
		t.Error("newer schema version accepted")
	}
	if _, err := r.Decode(eventstore.RecordedEvent{Type: "Nope", SchemaVersion: 1, Data: json.RawMessage(`{}`)}); !errors.Is(err, eventstore.ErrUnknownEvent) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestValidateAppend(t *testing.T) {
	t.Parallel()
	ok := eventstore.NewEvent{ID: ulid.Make().String(), Type: "T", SchemaVersion: 1, Data: json.RawMessage(`{}`)}
	tests := []struct {
		name   string
		stream eventstore.StreamID
		evs    []eventstore.NewEvent
	}{
		{"bad stream", "Bad", []eventstore.NewEvent{ok}},
		{"no events", "t-1", nil},
		{"bad id", "t-1", []eventstore.NewEvent{{ID: "x", Type: "T", SchemaVersion: 1, Data: json.RawMessage(`{}`)}}},
		{"duplicate id", "t-1", []eventstore.NewEvent{ok, ok}},
		{"no type", "t-1", []eventstore.NewEvent{{ID: ok.ID, SchemaVersion: 1, Data: json.RawMessage(`{}`)}}},
		{"schema 0", "t-1", []eventstore.NewEvent{{ID: ok.ID, Type: "T", Data: json.RawMessage(`{}`)}}},
		{"bad json", "t-1", []eventstore.NewEvent{{ID: ok.ID, Type: "T", SchemaVersion: 1, Data: json.RawMessage(`{`)}}},
		{"empty data", "t-1", []eventstore.NewEvent{{ID: ok.ID, Type: "T", SchemaVersion: 1}}},
	}
	for _, tt := range tests {
		if _, _, err := eventstore.ValidateAppend(tt.stream, eventstore.Any, tt.evs); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", tt.name, err)
		}
	}
	if _, _, err := eventstore.ValidateAppend("t-1", eventstore.Any, []eventstore.NewEvent{ok}); err != nil {
		t.Errorf("valid append refused: %v", err)
	}
}
