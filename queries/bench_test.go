package queries_test

import (
	"slices"
	"testing"
	"time"

	pt "github.com/vega-sec/vega/projections/projectiontest"
	"github.com/vega-sec/vega/queries"
)

// BenchmarkList100k reads pages of 50 findings of a classified scan with
// 100,000 findings, and of 50 issues of its repository (100,000 issues):
// each filter of API.md alone and in combinations that select nothing,
// from the first page and from a cursor deep in. Keyset pagination keeps
// each page's cost independent of its depth; the split by filter value
// keeps it independent of how few rows match. It reports the p50 and p99
// of a page, and BenchFindingsPage and BenchIssuesPage over random
// combinations.
func BenchmarkList100k(b *testing.B) {
	for _, o := range pt.Openers() {
		b.Run(o.Name, func(b *testing.B) {
			env := o.Open(b)
			last := pt.SeedBigScanClassified(b, env, 100000)
			r := pt.Start(b, env.Config())
			start := time.Now()
			pt.WaitForWithin(b, r, last, 10*time.Minute)
			b.Logf("%s: projections caught up with 100,000 classified findings in %v", o.Name, time.Since(start).Round(time.Millisecond))
			s, err := queries.New(env.ReadDB, env.Dialect, env.Store, queries.Options{Clock: time.Now})
			if err != nil {
				b.Fatal(err)
			}
			caller := queries.Caller{Principal: pt.Alice}
			ctx := b.Context()
			// A cursor 60,000 rows in.
			deepF, deepI := "", ""
			for range 120 {
				p, err := s.ListFindings(ctx, caller, pt.BigScanID, queries.FindingFilter{}, queries.ListOptions{Limit: 500, Cursor: deepF})
				if err != nil {
					b.Fatal(err)
				}
				deepF = p.NextCursor
				q, err := s.ListIssues(ctx, caller, pt.BigRepository, queries.IssueFilter{}, queries.ListOptions{Limit: 500, Cursor: deepI})
				if err != nil {
					b.Fatal(err)
				}
				deepI = q.NextCursor
			}
			findings := []struct {
				name string
				f    queries.FindingFilter
			}{
				{"none", queries.FindingFilter{}},
				{"severity", queries.FindingFilter{Severity: "low"}},
				{"severity2", queries.FindingFilter{Severity: "critical,info"}},
				{"triage_open", queries.FindingFilter{Triage: "open"}},
				{"triage_rare", queries.FindingFilter{Triage: "accepted_risk"}},
				{"triage_none", queries.FindingFilter{Triage: "accepted_risk,under_review", Severity: "critical"}},
				{"diff_new", queries.FindingFilter{Diff: "new"}},
				{"diff_none", queries.FindingFilter{Diff: "unchanged,reopened"}},
				{"rule", queries.FindingFilter{Rule: "rule.07"}},
				{"file", queries.FindingFilter{File: "src/file007.go,src/file027.go"}},
				{"rule+file_none", queries.FindingFilter{Rule: "rule.08", File: "src/file007.go"}},
				{"rule+severity_none", queries.FindingFilter{Rule: "rule.01", Severity: "critical"}},
				{"triage+rule_none", queries.FindingFilter{Triage: "false_positive", Rule: "rule.05"}},
				{"api_example", queries.FindingFilter{Severity: "high", Triage: "open", Diff: "new"}},
				{"triage+diff_none", queries.FindingFilter{Triage: "open", Diff: "reopened"}},
			}
			for _, c := range findings {
				for _, d := range []struct{ name, cursor string }{{"first", ""}, {"deep", deepF}} {
					b.Run("findings/"+c.name+"/"+d.name, func(b *testing.B) {
						latencies(b, func() error {
							_, err := s.ListFindings(ctx, caller, pt.BigScanID, c.f, queries.ListOptions{Cursor: d.cursor})
							return err
						})
					})
				}
			}
			issues := []struct {
				name string
				f    queries.IssueFilter
			}{
				{"none", queries.IssueFilter{}},
				{"state_fixed", queries.IssueFilter{State: "fixed"}},
				{"triage_open", queries.IssueFilter{Triage: "open"}},
				{"triage_rare", queries.IssueFilter{Triage: "accepted_risk"}},
				{"severity", queries.IssueFilter{Severity: "high,medium"}},
				{"api_example", queries.IssueFilter{Triage: "open", Severity: "high", State: "open"}},
				{"triage+state_none", queries.IssueFilter{Triage: "false_positive", State: "fixed", Severity: "critical"}},
			}
			for _, c := range issues {
				for _, d := range []struct{ name, cursor string }{{"first", ""}, {"deep", deepI}} {
					b.Run("issues/"+c.name+"/"+d.name, func(b *testing.B) {
						latencies(b, func() error {
							_, err := s.ListIssues(ctx, caller, pt.BigRepository, c.f, queries.ListOptions{Cursor: d.cursor})
							return err
						})
					})
				}
			}
			b.Run("findings/random", func(b *testing.B) {
				// 5 random pages per iteration, timed by the function.
				p50, p99, err := queries.BenchFindingsPage(ctx, s, caller, pt.BigScanID, 5*b.N)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(p50.Microseconds())/1000, "p50_ms")
				b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
			})
			b.Run("issues/random", func(b *testing.B) {
				// 5 random pages per iteration, timed by the function.
				p50, p99, err := queries.BenchIssuesPage(ctx, s, caller, pt.BigRepository, 5*b.N)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(p50.Microseconds())/1000, "p50_ms")
				b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
			})
		})
	}
}

// latencies runs fn in a benchmark loop and reports the p50 and p99 of one
// call.
func latencies(b *testing.B, fn func() error) {
	b.Helper()
	var d []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[(len(d)-1)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(d[(len(d)*99+99)/100-1].Microseconds())/1000, "p99_ms")
}
