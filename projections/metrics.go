package projections

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runner's Prometheus series, labelled by projection.
type metrics struct {
	failed     *prometheus.GaugeVec
	position   *prometheus.GaugeVec
	lagEvents  *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
	applied    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		failed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vega_projection_failed",
			Help: "1 while the projection is stopped on an event it cannot apply (see its status), else 0.",
		}, []string{"projection"}),
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vega_projection_position",
			Help: "Sequence number of the global position the projection has reached.",
		}, []string{"projection"}),
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vega_projection_lag_events",
			Help: "Events between the projection's position and the store's head (approximate on PostgreSQL).",
		}, []string{"projection"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vega_projection_lag_seconds",
			Help: "Age of the oldest event the projection has not applied yet; 0 when caught up.",
		}, []string{"projection"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vega_projection_events_applied_total",
			Help: "Events applied to the live read model.",
		}, []string{"projection"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.failed, m.position, m.lagEvents, m.lagSeconds, m.applied} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register projection metrics: %w", err)
			}
		}
	}
	return m, nil
}
