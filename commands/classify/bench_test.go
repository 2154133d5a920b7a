package classify_test

import (
	"fmt"
	"testing"

	"github.com/vega-sec/vega/domain"
)

// BenchmarkClassify measures classifying a scan of 1000 findings on SQLite:
// "new" opens 1000 issues, "unchanged" records 1000 sightings.
func BenchmarkClassify(b *testing.B) {
	for _, kind := range []string{"new", "unchanged"} {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				e := newEnv(b, openSQLite(b))
				fs := make([]domain.Finding, 1000)
				for i := range fs {
					fs[i] = finding(fmt.Sprintf("fp%04d", i), "")
				}
				if kind == "unchanged" {
					e.classify(e.scan(nil, false, fs...))
				}
				id := e.scan(nil, false, fs...)
				b.StartTimer()
				e.classify(id)
			}
		})
	}
}
