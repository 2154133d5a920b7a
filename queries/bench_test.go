package queries_test

import (
	"testing"
	"time"

	pt "github.com/vega-sec/vega/projections/projectiontest"
	"github.com/vega-sec/vega/queries"
)

// BenchmarkListFindings100k reads pages of 50 findings of a scan with
// 100,000 findings: the first page, a page deep in (by cursor), and
// filtered pages. Keyset pagination keeps each page's cost independent of
// its depth.
func BenchmarkListFindings100k(b *testing.B) {
	for _, o := range pt.Openers() {
		b.Run(o.Name, func(b *testing.B) {
			env := o.Open(b)
			last := pt.SeedBigScan(b, env, 100000)
			cfg := env.Config()
			cfg.PageSize = 1000
			r := pt.Start(b, cfg)
			start := time.Now()
			pt.WaitForWithin(b, r, last, 10*time.Minute)
			b.Logf("%s: projections caught up with 100,000 findings in %v", o.Name, time.Since(start).Round(time.Millisecond))
			s, err := queries.New(env.ReadDB, env.Dialect, env.Store, queries.Options{Clock: time.Now})
			if err != nil {
				b.Fatal(err)
			}
			caller := queries.Caller{Principal: pt.Alice}
			// A cursor 60,000 findings in.
			deep := ""
			for range 120 {
				p, err := s.ListFindings(b.Context(), caller, "sbig", queries.FindingFilter{}, queries.ListOptions{Limit: 500, Cursor: deep})
				if err != nil {
					b.Fatal(err)
				}
				deep = p.NextCursor
			}
			for _, c := range []struct {
				name   string
				filter queries.FindingFilter
				cursor string
			}{
				{"first", queries.FindingFilter{}, ""},
				{"deep", queries.FindingFilter{}, deep},
				{"severity", queries.FindingFilter{Severity: "low"}, ""},
				{"rule+file", queries.FindingFilter{Rule: "rule.07", File: "src/file007.go,src/file027.go"}, ""},
				{"triage", queries.FindingFilter{Triage: "open"}, ""},
			} {
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						if _, err := s.ListFindings(b.Context(), caller, "sbig", c.filter, queries.ListOptions{Cursor: c.cursor}); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
