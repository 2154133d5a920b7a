package web

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

// Geometry of the overview's severity trend (SVG user units).
const (
	trendWidth  = 640
	trendHeight = 220
	trendPad    = 32
)

// trendSeries is one severity's line.
type trendSeries struct {
	Severity string
	Points   string // SVG polyline points
	Marks    []trendMark
}

// trendMark is one data point, with its text for assistive technology.
type trendMark struct {
	X, Y  int
	Label string
}

// trend is the server-rendered severity trend: the findings of the most
// recent completed scans by severity, oldest first, drawn as one line per
// severity (each with its own dash pattern and mark shape, so colour is
// not the only signal) and given as a table too.
type trend struct {
	Width, Height int
	Series        []trendSeries
	Scans         []queries.Scan
	Max           int
	Ticks         []trendMark
}

func trendOf(recent []queries.Scan) trend {
	t := trend{Width: trendWidth, Height: trendHeight}
	for _, sc := range recent {
		if sc.Status == domain.ScanStateCompleted {
			t.Scans = append(t.Scans, sc)
		}
	}
	slices.SortFunc(t.Scans, func(a, b queries.Scan) int { return strings.Compare(a.RequestedAt, b.RequestedAt) })
	if len(t.Scans) == 0 {
		return t
	}
	for _, sc := range t.Scans {
		for _, sv := range domain.Severities() {
			t.Max = max(t.Max, sevCount(sc.Counts, sv))
		}
	}
	top := max(t.Max, 1)
	x := func(i int) int {
		if len(t.Scans) == 1 {
			return trendWidth / 2
		}
		return trendPad + i*(trendWidth-2*trendPad)/(len(t.Scans)-1)
	}
	y := func(n int) int { return trendHeight - trendPad - n*(trendHeight-2*trendPad)/top }
	for _, n := range []int{0, top / 2, top} {
		t.Ticks = append(t.Ticks, trendMark{X: trendPad - 6, Y: y(n), Label: fmt.Sprint(n)})
	}
	for _, sv := range domain.Severities() {
		s := trendSeries{Severity: string(sv)}
		var pts []string
		for i, sc := range t.Scans {
			n := sevCount(sc.Counts, sv)
			pts = append(pts, fmt.Sprintf("%d,%d", x(i), y(n)))
			s.Marks = append(s.Marks, trendMark{X: x(i), Y: y(n), Label: fmt.Sprintf("%s: %d in scan %s (%s)", sv, n, shortID(sc.ID), when(sc.RequestedAt))})
		}
		s.Points = strings.Join(pts, " ")
		t.Series = append(t.Series, s)
	}
	return t
}
