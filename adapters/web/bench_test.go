package web_test

import (
	"testing"
	"time"

	"github.com/vega-sec/vega/adapters/web"
	"github.com/vega-sec/vega/commands"
	pt "github.com/vega-sec/vega/projections/projectiontest"
	"github.com/vega-sec/vega/queries"
)

// bigScan returns a dashboard handler over a scan "sbig" of n findings.
func bigScan(tb testing.TB, n int) *web.Server {
	tb.Helper()
	store := pt.OpenSQLite(tb)
	last := pt.SeedBigScan(tb, store, n)
	cfg := store.Config()
	cfg.PageSize = 1000
	runner := pt.Start(tb, cfg)
	pt.WaitForWithin(tb, runner, last, 10*time.Minute)
	cmd, err := commands.New(store.Store, commands.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	q, err := queries.New(store.ReadDB, store.Dialect, store.Store, queries.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := web.New(web.Deps{Commands: cmd, Queries: q, Events: store.Store, Consistency: runner}, web.Config{BootstrapToken: adminToken})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestBenchFindingsPage(t *testing.T) {
	t.Parallel()
	s := bigScan(t, 3000)
	p99, err := web.BenchFindingsPage(t.Context(), s.Handler(), adminToken, "sbig", 40)
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	if p99 <= 0 {
		t.Errorf("p99 %v is not a duration", p99)
	}
	if _, err := web.BenchFindingsPage(t.Context(), s.Handler(), "wrong", "sbig", 1); err == nil {
		t.Errorf("a wrong token benched")
	}
	if _, err := web.BenchFindingsPage(t.Context(), s.Handler(), adminToken, "nope", 1); err == nil {
		t.Errorf("a missing scan benched")
	}
}

// BenchmarkFindingsPage100k reports dashboard_findings_page_p99 over a scan
// of 100,000 findings (SQLite).
func BenchmarkFindingsPage100k(b *testing.B) {
	s := bigScan(b, 100000)
	for b.Loop() {
		p99, err := web.BenchFindingsPage(b.Context(), s.Handler(), adminToken, "sbig", 200)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	}
}
