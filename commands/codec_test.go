package commands_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

type notInCatalogue struct{}

func (notInCatalogue) EventName() string { return "NotInCatalogue" }

func TestRegistryHoldsCatalogue(t *testing.T) {
	t.Parallel()
	reg, err := commands.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range domain.Catalogue() {
		if v, ok := reg.SchemaVersion(e.EventName()); !ok || v != commands.SchemaVersion {
			t.Errorf("%s: schema version %d, registered %v; want %d", e.EventName(), v, ok, commands.SchemaVersion)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	reg, err := commands.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	meta := eventstore.Metadata{Actor: "alice", CorrelationID: "c1", CausationID: "k1"}
	tests := []domain.Event{
		domain.ScanClaimed{WorkerID: "w1", Fence: 2, LeaseUntil: t0.Add(60e9), At: t0},
		domain.FindingRecorded{Fence: 1, Finding: finding(7), At: t0},
		domain.ThreatProfileDefined{Profile: domain.DefaultThreatProfile(), At: t0},
		domain.TokenIssued{TokenID: "t1", Principal: "p1", Name: "ci", Hash: domain.HashToken("x"), At: t0},
	}
	tests = append(tests, domain.Catalogue()...)
	for _, e := range tests {
		t.Run(e.EventName(), func(t *testing.T) {
			id := ulid.Make().String()
			ne, err := commands.EncodeEvent(reg, id, e, meta)
			if err != nil {
				t.Fatal(err)
			}
			if ne.ID != id || ne.Type != e.EventName() || ne.SchemaVersion != 1 || ne.Metadata != meta || !json.Valid(ne.Data) {
				t.Fatalf("encoded %+v", ne)
			}
			got, err := commands.DecodeEvent(reg, eventstore.RecordedEvent{ID: id, StreamID: "scan-x", Version: 1,
				Type: ne.Type, SchemaVersion: ne.SchemaVersion, Data: ne.Data})
			if err != nil {
				t.Fatal(err)
			}
			if v := reflect.ValueOf(got); v.Kind() != reflect.Pointer || !reflect.DeepEqual(v.Elem().Interface(), e) {
				t.Fatalf("decoded %#v, want pointer to %#v", got, e)
			}
		})
	}
}

func TestCodecRefusesUnknownEvents(t *testing.T) {
	t.Parallel()
	reg, err := commands.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	_, err = commands.EncodeEvent(reg, ulid.Make().String(), notInCatalogue{}, eventstore.Metadata{})
	wantIs(t, err, eventstore.ErrUnknownEvent)
	_, err = commands.DecodeEvents(reg, []eventstore.RecordedEvent{{StreamID: "scan-x", Version: 1, Type: "NotInCatalogue", SchemaVersion: 1, Data: []byte(`{}`)}})
	wantIs(t, err, eventstore.ErrUnknownEvent)
}
