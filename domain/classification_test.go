package domain_test

import (
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
)

var ulidText = regexp.MustCompile(`^[0-7][0-9A-HJKMNP-TV-Z]{25}$`)

func TestIssueIDIsDeterministicULIDText(t *testing.T) {
	t.Parallel()
	a := domain.IssueID("r1", "fp1")
	if a != domain.IssueID("r1", "fp1") {
		t.Fatal("IssueID is not deterministic")
	}
	if !ulidText.MatchString(a) {
		t.Fatalf("IssueID = %q, not ULID text", a)
	}
	if err := domain.ValidateID("id", a); err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{domain.IssueID("r2", "fp1"), domain.IssueID("r1", "fp2"), domain.IssueID("r1\x00fp1", "")} {
		if other == a {
			t.Fatalf("IssueID collides: %s", other)
		}
	}
}

func fps(items []domain.IndexedIssue) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Fingerprint + "/" + it.Engine
	}
	return out
}

func TestIssueIndexDecide(t *testing.T) {
	t.Parallel()
	w := newWorld(t, &domain.ThreatProfile{Engines: builtinAndAI})
	x := new(domain.IssueIndex)
	var all []domain.Event
	add := func(s *domain.Scan) domain.IndexDecision {
		t.Helper()
		evs, err := x.Decide(s, t0)
		all = append(all, must(t, x, evs, err)...)
		return *x.Tail
	}
	fa, fb, fc := finding("a", "fpA", domain.SeverityHigh), finding("b", "fpB", domain.SeverityLow), finding("c", "fpC", domain.SeverityLow)
	fcAI := fc
	fcAI.Engine = "ai"

	d1 := add(w.completedScan(t, "scan1", nil, false, fa, fb, fcAI))
	if got := fps(d1.Opened); !slices.Equal(got, []string{"fpA/builtin", "fpB/builtin", "fpC/ai"}) || d1.BaseScanID != "" || d1.Stale {
		t.Fatalf("first decision = %+v", d1)
	}
	// Idempotent: a second decision for the same scan is nothing.
	if evs, err := x.Decide(w.completedScan(t, "scan1", nil, false), t0); evs != nil || err != nil {
		t.Fatalf("second decision = %v, %v", evs, err)
	}

	// scan2 ran builtin only and found A and C (by builtin): B fixed; C
	// seen by a new engine; nothing reopened.
	fcB := fc
	d2 := add(w.completedScan(t, "scan2", []string{"builtin"}, false, fa, fcB))
	if d2.BaseScanID != "scan1" || len(d2.Opened) != 0 || !slices.Equal(d2.Fixed, []string{"fpB"}) ||
		!slices.Equal(fps(d2.Seen), []string{"fpC/builtin"}) {
		t.Fatalf("second decision = %+v", d2)
	}
	// scan3 (builtin only) finds nothing: A is fixed, C is not (ai found it and did not run).
	d3 := add(w.completedScan(t, "scan3", []string{"builtin"}, false))
	if !slices.Equal(d3.Fixed, []string{"fpA"}) {
		t.Fatalf("third decision fixed %v, want [fpA]", d3.Fixed)
	}
	// A partial scan fixes nothing but reopens what it finds.
	d4 := add(w.completedScan(t, "scan4", nil, true, fb))
	if len(d4.Fixed) != 0 || !slices.Equal(fps(d4.Reopened), []string{"fpB/builtin"}) {
		t.Fatalf("partial decision = %+v", d4)
	}
	if x.Issues["fpB"].State != domain.IssueStateOpen || x.Issues["fpA"].State != domain.IssueStateFixed {
		t.Fatalf("index states A %s B %s", x.Issues["fpA"].State, x.Issues["fpB"].State)
	}
	// A scan requested before scan4 is stale: it opens D but reopens,
	// sees and fixes nothing.
	late := w.completedScan(t, "scan0", nil, false, fa, finding("d", "fpD", domain.SeverityInfo))
	d5 := add(late)
	if !d5.Stale || !slices.Equal(fps(d5.Opened), []string{"fpD/builtin"}) || len(d5.Reopened)+len(d5.Fixed)+len(d5.Seen) != 0 {
		t.Fatalf("stale decision = %+v", d5)
	}
	if x.LastScanID != "scan4" {
		t.Fatalf("last scan = %s, want scan4 (a stale scan does not move it)", x.LastScanID)
	}
	// Another repository's scan is refused.
	_, err := x.Decide(&domain.Scan{ID: "s", RepositoryID: "r2", State: domain.ScanStateCompleted, Version: 3}, t0)
	wantField(t, err, "scan_id")
	// A scan that did not complete is not classified.
	running, _ := w.newScan(t, "scan9", nil)
	_, err = x.Decide(running, t0)
	wantIs(t, err, domain.ErrConflict)

	checkFold(t, all, domain.FoldIssueIndex)
}

func TestIssueIndexRejectsBadHistory(t *testing.T) {
	t.Parallel()
	ev := func(scan string, part, parts int, opened ...string) domain.IssueIndexUpdated {
		e := domain.IssueIndexUpdated{RepositoryID: "r1", ScanID: scan, ScanRequestedAt: t0, Part: part, Parts: parts, At: t0}
		for _, fp := range opened {
			e.Opened = append(e.Opened, domain.IndexedIssue{Fingerprint: fp, Engine: "builtin"})
		}
		return e
	}
	for name, events := range map[string][]domain.Event{
		"not an index event": {domain.IssueFixed{}},
		"second opening":     {ev("s1", 1, 1, "a"), ev("s2", 1, 1, "a")},
		"same scan twice":    {ev("s1", 1, 1), ev("s1", 1, 1)},
		"part skipped":       {ev("s1", 1, 3), ev("s1", 3, 3)},
		"incomplete":         {ev("s1", 1, 2), ev("s2", 1, 1)},
		"other repository":   {ev("s1", 1, 1), domain.IssueIndexUpdated{RepositoryID: "r2", ScanID: "s2", Part: 1, Parts: 1}},
		"fix of unknown":     {domain.IssueIndexUpdated{RepositoryID: "r1", ScanID: "s1", Part: 1, Parts: 1, Fixed: []string{"zz"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := domain.FoldIssueIndex(events)
			wantIs(t, err, domain.ErrInvalidHistory)
		})
	}
}

func TestIssueIndexSplitsLargeDecisions(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	n := domain.MaxIndexEntriesPerEvent + 5
	s, _ := w.newScan(t, "scan1", nil)
	on(t, s)(s.Claim("w1", at(time.Hour), t0))
	on(t, s)(s.Start(s.Fence, t0))
	for i := range n {
		on(t, s)(s.RecordFinding(s.Fence, finding(fmt.Sprintf("f%d", i), fmt.Sprintf("fp%d", i), domain.SeverityLow), t0))
	}
	on(t, s)(s.Complete(s.Fence, false, "", t0))
	x := new(domain.IssueIndex)
	evs := on(t, x)(x.Decide(s, t0))
	if len(evs) != 2 || len(x.Tail.Opened) != n || len(x.Issues) != n {
		t.Fatalf("%d events, %d opened, %d issues; want 2, %d, %d", len(evs), len(x.Tail.Opened), len(x.Issues), n, n)
	}
	// Classifying the same scan's outcome also splits.
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("f%d", i)
	}
	fixed := make([]string, domain.MaxClassifiedIDsPerEvent)
	for i := range fixed {
		fixed[i] = fmt.Sprintf("issue%d", i)
	}
	cls := on(t, s)(s.Classify(domain.Classification{New: ids, Fixed: fixed}, t0))
	if len(cls) != 2 || !s.Classified() || len(s.Classification.New) != n || len(s.Classification.Fixed) != len(fixed) {
		t.Fatalf("%d ScanClassified events; classified %v", len(cls), s.Classified())
	}
}

func TestScanClassify(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	s, events := w.newScan(t, "scan1", nil)
	c := domain.Classification{BaseScanID: "scan0", New: []string{"a"}, Reopened: []string{"b"}, Fixed: []string{"i1"}}
	_, err := s.Classify(c, t0)
	wantIs(t, err, domain.ErrConflict) // not completed
	events = append(events, on(t, s)(s.Claim("w1", at(time.Hour), t0))...)
	events = append(events, on(t, s)(s.Start(s.Fence, t0))...)
	for _, f := range []domain.Finding{finding("a", "fpA", domain.SeverityHigh), finding("b", "fpB", domain.SeverityHigh), finding("c", "fpC", domain.SeverityHigh)} {
		events = append(events, on(t, s)(s.RecordFinding(s.Fence, f, t0))...)
	}
	events = append(events, on(t, s)(s.Complete(s.Fence, false, "", t0))...)

	for name, tc := range map[string]struct {
		c     domain.Classification
		field string
	}{
		"unknown finding": {domain.Classification{New: []string{"zz"}}, "new"},
		"listed twice":    {domain.Classification{New: []string{"a"}, Reopened: []string{"a"}}, "reopened"},
		"own base":        {domain.Classification{BaseScanID: "scan1"}, "base_scan_id"},
		"fixed twice":     {domain.Classification{Fixed: []string{"i1", "i1"}}, "fixed"},
		"bad fixed id":    {domain.Classification{Fixed: []string{"-x"}}, "fixed"},
	} {
		_, err := s.Classify(tc.c, t0)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantField(t, err, tc.field)
	}
	events = append(events, on(t, s)(s.Classify(c, at(time.Minute)))...)
	if !s.Classified() || s.Classification.BaseScanID != "scan0" {
		t.Fatalf("classification = %+v", s.Classification)
	}
	diff := s.Classification.Diffs()
	if diff("a") != domain.DiffNew || diff("b") != domain.DiffReopened || diff("c") != domain.DiffUnchanged {
		t.Fatalf("diffs a=%s b=%s c=%s", diff("a"), diff("b"), diff("c"))
	}
	if evs, err := s.Classify(domain.Classification{}, t0); evs != nil || err != nil {
		t.Fatalf("second classification = %v, %v; want no-op", evs, err)
	}
	folded := checkFold(t, events, domain.FoldScan)
	if !folded.Classified() {
		t.Fatal("fold lost the classification")
	}
	// A classification on a scan that is not completed is corrupt history.
	_, err = domain.FoldScan(append(events[:1:1], domain.ScanClassified{Part: 1, Parts: 1}))
	wantIs(t, err, domain.ErrInvalidHistory)
}
