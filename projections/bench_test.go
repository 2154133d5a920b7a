package projections_test

import (
	"testing"

	"github.com/vega-sec/vega/projections"
	pt "github.com/vega-sec/vega/projections/projectiontest"
)

// BenchmarkRebuild measures the rebuild rate of the findings projection
// over a scan of 20,000 findings (events/s).
func BenchmarkRebuild(b *testing.B) {
	for _, o := range pt.Openers() {
		b.Run(o.Name, func(b *testing.B) {
			env := o.Open(b)
			last := pt.SeedBigScan(b, env, 20000)
			r := pt.Start(b, env.Config())
			pt.WaitFor(b, r, last)
			events := 0
			var secs float64
			for b.Loop() {
				n, d, err := projections.BenchRebuild(b.Context(), r, projections.NameFindings)
				if err != nil {
					b.Fatalf("rebuild: %v", err)
				}
				events += n
				secs += d.Seconds()
			}
			b.ReportMetric(float64(events)/secs, "events/s")
		})
	}
}
