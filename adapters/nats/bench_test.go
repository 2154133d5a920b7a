package nats_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/adapters/nats/bustest"
)

// Benchmark targets, stated beside each figure (see docs/benchmarks.md).
const (
	benchRelayRatioTarget = 0.5
	benchLatencyP99Target = 50 * time.Millisecond
)

func benchBuses() []struct {
	name    string
	connect func(b *testing.B) *nats.Conn
} {
	return []struct {
		name    string
		connect func(b *testing.B) *nats.Conn
	}{
		{"embedded", func(b *testing.B) *nats.Conn { return bustest.ConnectEmbedded(b) }},
		{"external", func(b *testing.B) *nats.Conn { return bustest.ConnectExternal(b) }},
	}
}

// BenchmarkRelay reports relay throughput beside raw JetStream async
// publishing of the same messages, in the bench line format.
func BenchmarkRelay(b *testing.B) {
	const n = 20000
	for _, st := range stores {
		for _, bus := range benchBuses() {
			b.Run(st.name+"/"+bus.name, func(b *testing.B) {
				for b.Loop() {
					s := st.open(b)
					nc := bus.connect(b)
					fig, err := vnats.BenchRelay(context.Background(), s, nc, bustest.Config(b), n)
					if err != nil {
						b.Fatal(err)
					}
					ratio := fig.RelayPerSec / fig.RawPerSec
					verdict := "ok"
					if ratio < benchRelayRatioTarget {
						verdict = "MISS"
					}
					fmt.Printf("bench store=%s figure=relay_%s value=%.0f unit=events/s ceiling=%.0f ratio=%.2f target=>=%.1f %s\n",
						st.name, bus.name, fig.RelayPerSec, fig.RawPerSec, ratio, benchRelayRatioTarget, verdict)
					b.ReportMetric(fig.RelayPerSec, "events/s")
					b.ReportMetric(fig.RawPerSec, "raw-events/s")
				}
			})
		}
	}
}

// BenchmarkAppendToConsumer reports append-to-consumer latency.
func BenchmarkAppendToConsumer(b *testing.B) {
	const n = 300
	for _, st := range stores {
		for _, bus := range benchBuses() {
			b.Run(st.name+"/"+bus.name, func(b *testing.B) {
				for b.Loop() {
					s := st.open(b)
					nc := bus.connect(b)
					fig, err := vnats.BenchLatency(context.Background(), s, nc, bustest.Config(b), n)
					if err != nil {
						b.Fatal(err)
					}
					verdict := "ok"
					if fig.P99 > benchLatencyP99Target {
						verdict = "MISS"
					}
					ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
					fmt.Printf("bench store=%s figure=append_to_consumer_%s_p50 value=%.2f unit=ms\n", st.name, bus.name, ms(fig.P50))
					fmt.Printf("bench store=%s figure=append_to_consumer_%s_p99 value=%.2f unit=ms target=<=%.0f %s\n",
						st.name, bus.name, ms(fig.P99), ms(benchLatencyP99Target), verdict)
					b.ReportMetric(ms(fig.P50), "p50-ms")
					b.ReportMetric(ms(fig.P99), "p99-ms")
				}
			})
		}
	}
}
