package llm

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus series.
type metrics struct {
	requests *prometheus.CounterVec   // by outcome
	duration *prometheus.HistogramVec // by outcome
	tokens   *prometheus.CounterVec   // by direction (input, output)
	cost     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vega_llm_proxy_requests_total",
			Help: "LLM proxy requests by outcome."}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vega_llm_proxy_request_seconds",
			Help: "LLM proxy request duration by outcome.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vega_llm_proxy_tokens_total",
			Help: "Tokens settled by the LLM proxy, by direction."}, []string{"direction"}),
		cost: prometheus.NewCounter(prometheus.CounterOpts{Name: "vega_llm_proxy_cost_usd_total",
			Help: "Cost settled by the LLM proxy, in US dollars."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.tokens, m.cost} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register llm proxy metrics: %w", err)
		}
	}
	return m, nil
}
