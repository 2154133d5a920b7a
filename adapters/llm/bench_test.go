package llm_test

import (
	"testing"

	"github.com/vega-sec/vega/adapters/llm"
)

func TestBenchProxyOverheadRuns(t *testing.T) {
	t.Parallel()
	p50, p99, d50, d99, err := llm.BenchProxyOverhead(t.Context(), 50)
	if err != nil {
		t.Fatal(err)
	}
	if p50 <= 0 || p99 < p50 || d50 <= 0 || d99 < d50 {
		t.Fatalf("figures p50=%v p99=%v direct p50=%v p99=%v", p50, p99, d50, d99)
	}
	t.Logf("proxy p50=%v p99=%v; direct p50=%v p99=%v", p50, p99, d50, d99)
}
