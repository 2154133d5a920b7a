package worker_test

import (
	"encoding/json"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/eventstore"
)

// jsonEnvelope is the body the relay publishes for rec.
func jsonEnvelope(rec eventstore.RecordedEvent) ([]byte, error) {
	return json.Marshal(vnats.NewEnvelope(rec))
}
