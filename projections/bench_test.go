package projections_test

import (
	"testing"
	"time"

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

// BenchmarkRebuildRatio measures the projection_rebuild figure of the
// projections a scan feeds, over a scan of 20,000 findings and over the
// same scan classified (20,000 issues more): the rebuild rate beside the
// store's raw read rate of the same events.
func BenchmarkRebuildRatio(b *testing.B) {
	for _, o := range pt.Openers() {
		for _, classified := range []bool{false, true} {
			data := "findings"
			seed := pt.SeedBigScan
			if classified {
				data, seed = "classified", pt.SeedBigScanClassified
			}
			b.Run(o.Name+"/"+data, func(b *testing.B) {
				env := o.Open(b)
				seed(b, env, 20000)
				r, err := projections.NewRunner(b.Context(), env.Config())
				if err != nil {
					b.Fatal(err)
				}
				names := []string{projections.NameFindings, projections.NameScans, projections.NameActivity}
				if classified {
					names = append(names, projections.NameIssues)
				}
				for _, name := range names {
					b.Run(name, func(b *testing.B) {
						var ratio float64
						for b.Loop() {
							rebuild, read, err := projections.BenchRebuildRatio(b.Context(), r, name)
							if err != nil {
								b.Fatal(err)
							}
							ratio = rebuild / read
							b.ReportMetric(rebuild, "rebuild_events/s")
							b.ReportMetric(read, "read_events/s")
						}
						b.ReportMetric(ratio, "ratio")
					})
				}
			})
		}
	}
}

// BenchmarkCatchUp100k measures how long the runner takes to catch up with
// a scan of 100,000 findings (and, classified, their 100,000 issues) with
// the default configuration.
func BenchmarkCatchUp100k(b *testing.B) {
	for _, o := range pt.Openers() {
		for _, classified := range []bool{false, true} {
			name := o.Name + "/findings"
			if classified {
				name = o.Name + "/classified"
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					env := o.Open(b)
					seed := pt.SeedBigScan
					if classified {
						seed = pt.SeedBigScanClassified
					}
					last := seed(b, env, 100000)
					b.StartTimer()
					start := time.Now()
					r := pt.Start(b, env.Config())
					pt.WaitForWithin(b, r, last, 10*time.Minute)
					b.ReportMetric(time.Since(start).Seconds(), "s/catch-up")
				}
			})
		}
	}
}
