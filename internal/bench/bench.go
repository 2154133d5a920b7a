// Package bench formats Vega's benchmark figures: one line per figure, each
// beside a ceiling measured in the same run when there is one, in the form
// DESIGN.md fixes so that scripts can read it:
//
//	bench store=postgres figure=append_w8_b100 value=183000 unit=events/s ceiling=251000 ratio=0.73 target=>=0.7 ok
//	bench store=postgres figure=wake_p99 value=7.9 unit=ms target=<=20 ok
package bench

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Line is one figure.
type Line struct {
	Store  string // postgres, sqlite or "-"
	Figure string
	Value  float64
	Unit   string
	// Ceiling is the same quantity measured without Vega in the same run;
	// 0 means the figure has none, and Target then applies to Value.
	Ceiling float64
	// Target is ">=X" or "<=X" on the ratio (with a ceiling) or on the
	// value (without); empty means none.
	Target string
	// Note explains a missing ceiling or a caveat; it follows the line.
	Note string
}

// Ratio is Value/Ceiling, or 0 without a ceiling.
func (l Line) Ratio() float64 {
	if l.Ceiling <= 0 {
		return 0
	}
	return l.Value / l.Ceiling
}

// OK reports whether the target holds (true when there is none).
func (l Line) OK() bool {
	if l.Target == "" {
		return true
	}
	x := l.Value
	if l.Ceiling > 0 {
		x = l.Ratio()
	}
	op, num := l.Target[:2], l.Target[2:]
	t, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return false
	}
	switch op {
	case ">=":
		return x >= t
	case "<=":
		return x <= t
	}
	return false
}

func num(f float64) string {
	switch {
	case f == 0:
		return "0"
	case math.Abs(f) >= 100:
		return strconv.FormatFloat(math.Round(f), 'f', -1, 64)
	case math.Abs(f) >= 1:
		return strconv.FormatFloat(f, 'f', 1, 64)
	default:
		return strconv.FormatFloat(f, 'f', 3, 64)
	}
}

// String renders the line in the fixed format.
func (l Line) String() string {
	store := l.Store
	if store == "" {
		store = "-"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "bench store=%s figure=%s value=%s unit=%s", store, l.Figure, num(l.Value), l.Unit)
	if l.Ceiling > 0 {
		fmt.Fprintf(&b, " ceiling=%s ratio=%.2f", num(l.Ceiling), l.Ratio())
	}
	if l.Target != "" {
		fmt.Fprintf(&b, " target=%s", l.Target)
		if l.OK() {
			b.WriteString(" ok")
		} else {
			b.WriteString(" MISS")
		}
	}
	return b.String()
}

// Percentile returns the p-th percentile (0–100) of the durations in
// milliseconds, by nearest rank. It sorts ds.
func Percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := int(math.Ceil(p/100*float64(len(ds)))) - 1
	rank = max(0, min(rank, len(ds)-1))
	return float64(ds[rank].Microseconds()) / 1000
}

// Rate is n per second over d.
func Rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
