package bench_test

import (
	"testing"
	"time"

	"github.com/vega-sec/vega/internal/bench"
)

func TestLineFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		l    bench.Line
		want string
	}{
		{bench.Line{Store: "postgres", Figure: "append_w8_b100", Value: 183000, Unit: "events/s", Ceiling: 251000, Target: ">=0.7"},
			"bench store=postgres figure=append_w8_b100 value=183000 unit=events/s ceiling=251000 ratio=0.73 target=>=0.7 ok"},
		{bench.Line{Store: "postgres", Figure: "wake_p99", Value: 7.9, Unit: "ms", Target: "<=20"},
			"bench store=postgres figure=wake_p99 value=7.9 unit=ms target=<=20 ok"},
		{bench.Line{Figure: "x", Value: 30, Unit: "ms", Target: "<=20"},
			"bench store=- figure=x value=30.0 unit=ms target=<=20 MISS"},
		{bench.Line{Store: "sqlite", Figure: "read_all", Value: 10, Unit: "events/s", Ceiling: 100, Target: ">=0.5"},
			"bench store=sqlite figure=read_all value=10.0 unit=events/s ceiling=100 ratio=0.10 target=>=0.5 MISS"},
	}
	for _, tt := range tests {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p := bench.Percentile(ds, 50); p != 50 {
		t.Errorf("p50 = %v", p)
	}
	if p := bench.Percentile(ds, 99); p != 99 {
		t.Errorf("p99 = %v", p)
	}
	if p := bench.Percentile(nil, 99); p != 0 {
		t.Errorf("empty p99 = %v", p)
	}
}
