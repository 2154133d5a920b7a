package eventstore

import (
	"encoding/json"
	"fmt"
	"sync"
)

// Upcaster turns the data of one schema version into the next one's.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

// Registry maps stable event names to Go types and upgrades old schema
// versions at read time. Names are chosen explicitly, never derived from Go
// type names, so renaming a type never orphans history. It is safe for
// concurrent use once registration is over (register at start-up).
type Registry struct {
	mu    sync.RWMutex
	types map[string]registered
}

type registered struct {
	version   int
	factory   func() any
	upcasters map[int]Upcaster // from version -> to version+1
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{types: make(map[string]registered)}
}

// Register records the event name, its current schema version and a factory
// returning a pointer to a fresh value to decode into. Registering a name
// twice is an error.
func (r *Registry) Register(name string, schemaVersion int, factory func() any) error {
	if name == "" || schemaVersion < 1 || factory == nil {
		return fmt.Errorf("register event %q: name, schema version >= 1 and factory are required", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.types[name]; dup {
		return fmt.Errorf("register event %q: already registered", name)
	}
	r.types[name] = registered{version: schemaVersion, factory: factory, upcasters: map[int]Upcaster{}}
	return nil
}

// RegisterUpcaster records how data of the event's schema version from
// becomes version from+1. The event must be registered first.
func (r *Registry) RegisterUpcaster(name string, from int, up Upcaster) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.types[name]
	if !ok {
		return fmt.Errorf("register upcaster for %q: %w", name, ErrUnknownEvent)
	}
	if from < 1 || from >= t.version {
		return fmt.Errorf("register upcaster for %q: from version %d is not below the current %d", name, from, t.version)
	}
	t.upcasters[from] = up
	return nil
}

// SchemaVersion returns the current schema version of a registered event.
func (r *Registry) SchemaVersion(name string) (int, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.types[name]
	return t.version, ok
}

// Encode marshals v as the current schema version of the named event.
func (r *Registry) Encode(name string, v any) (schemaVersion int, data json.RawMessage, err error) {
	version, ok := r.SchemaVersion(name)
	if !ok {
		return 0, nil, fmt.Errorf("encode %q: %w", name, ErrUnknownEvent)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 0, nil, fmt.Errorf("encode %q: %w", name, err)
	}
	return version, b, nil
}

// Upcast returns e with its data raised to the current schema version of its
// type. The stored event is never changed: history is never rewritten.
func (r *Registry) Upcast(e RecordedEvent) (RecordedEvent, error) {
	r.mu.RLock()
	t, ok := r.types[e.Type]
	r.mu.RUnlock()
	if !ok {
		return e, fmt.Errorf("upcast %s version %d: %q: %w", e.StreamID, e.Version, e.Type, ErrUnknownEvent)
	}
	if e.SchemaVersion > t.version {
		return e, fmt.Errorf("upcast %s version %d: %q schema version %d is newer than this binary's %d", e.StreamID, e.Version, e.Type, e.SchemaVersion, t.version)
	}
	for v := e.SchemaVersion; v < t.version; v++ {
		up, ok := t.upcasters[v]
		if !ok {
			return e, fmt.Errorf("upcast %s version %d: %q: no upcaster from schema version %d", e.StreamID, e.Version, e.Type, v)
		}
		data, err := up(e.Data)
		if err != nil {
			return e, fmt.Errorf("upcast %s version %d: %q from schema version %d: %w", e.StreamID, e.Version, e.Type, v, err)
		}
		e.Data, e.SchemaVersion = data, v+1
	}
	return e, nil
}

// Decode upcasts e and unmarshals its data into a fresh value of its type.
func (r *Registry) Decode(e RecordedEvent) (any, error) {
	e, err := r.Upcast(e)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	t := r.types[e.Type]
	r.mu.RUnlock()
	v := t.factory()
	if err := json.Unmarshal(e.Data, v); err != nil {
		return nil, fmt.Errorf("decode %s version %d (%s): %w", e.StreamID, e.Version, e.Type, err)
	}
	return v, nil
}
