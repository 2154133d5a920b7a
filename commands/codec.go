package commands

import (
	"fmt"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// SchemaVersion is the schema version under which every domain event is
// registered today. When an event's JSON shape changes, its version is raised
// in NewRegistry and an upcaster from the old version is registered there.
const SchemaVersion = 1

// NewRegistry returns a codec registry holding every event of
// domain.Catalogue under its EventName at SchemaVersion, with a factory from
// domain.NewEvent (decoding yields a pointer to the event value, such as
// *domain.ScanRequested, which every domain Apply accepts). The registry is
// safe for concurrent use.
func NewRegistry() (*eventstore.Registry, error) {
	reg := eventstore.NewRegistry()
	for _, e := range domain.Catalogue() {
		name := e.EventName()
		factory := func() any {
			v, _ := domain.NewEvent(name)
			return v
		}
		if _, ok := domain.NewEvent(name); !ok {
			return nil, fmt.Errorf("register %s: domain.NewEvent does not know it", name)
		}
		if err := reg.Register(name, SchemaVersion, factory); err != nil {
			return nil, fmt.Errorf("register domain events: %w", err)
		}
	}
	return reg, nil
}

// EncodeEvent turns a domain event into an event to append, with the given
// event ID (a ULID) and metadata. It fails with eventstore.ErrUnknownEvent
// for an event the registry does not hold.
func EncodeEvent(reg *eventstore.Registry, id string, e domain.Event, meta eventstore.Metadata) (eventstore.NewEvent, error) {
	if e == nil {
		return eventstore.NewEvent{}, fmt.Errorf("encode event %s: nil event", id)
	}
	version, data, err := reg.Encode(e.EventName(), e)
	if err != nil {
		return eventstore.NewEvent{}, fmt.Errorf("encode event %s: %w", id, err)
	}
	return eventstore.NewEvent{ID: id, Type: e.EventName(), SchemaVersion: version, Data: data, Metadata: meta}, nil
}

// DecodeEvent upcasts a stored event to its current schema version and
// decodes it into a pointer to its domain event value (for example
// *domain.ScanRequested). It fails with eventstore.ErrUnknownEvent for a type
// the registry does not hold.
func DecodeEvent(reg *eventstore.Registry, rec eventstore.RecordedEvent) (domain.Event, error) {
	v, err := reg.Decode(rec)
	if err != nil {
		return nil, fmt.Errorf("decode %s version %d: %w", rec.StreamID, rec.Version, err)
	}
	e, ok := v.(domain.Event)
	if !ok {
		return nil, fmt.Errorf("decode %s version %d: %s decodes to %T, not a domain event", rec.StreamID, rec.Version, rec.Type, v)
	}
	return e, nil
}

// DecodeEvents decodes stored events in order with DecodeEvent.
func DecodeEvents(reg *eventstore.Registry, recs []eventstore.RecordedEvent) ([]domain.Event, error) {
	out := make([]domain.Event, 0, len(recs))
	for _, rec := range recs {
		e, err := DecodeEvent(reg, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
