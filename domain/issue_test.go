package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
)

var builtinAndAI = []string{"builtin", "ai"}

func TestIssueLifecycle(t *testing.T) {
	t.Parallel()
	w := newWorld(t, &domain.ThreatProfile{Engines: builtinAndAI})
	aiFinding := finding("f1", "fp1", domain.SeverityHigh)
	aiFinding.Engine = "ai"

	scan1 := w.completedScan(t, "scan1", nil, false, aiFinding)
	i := new(domain.Issue)
	events := on(t, i)(domain.OpenIssue("i1", scan1, "f1", at(time.Minute)))
	add := func(evs []domain.Event, err error) {
		t.Helper()
		events = append(events, must(t, i, evs, err)...)
	}
	if i.State != domain.IssueStateOpen || i.TriageStatus != domain.TriageOpen || i.FirstSeenScanID != "scan1" ||
		i.Fingerprint != "fp1" || i.RepositoryID != "r1" || len(i.Engines) != 1 || i.Engines[0] != "ai" {
		t.Fatalf("opened issue = %+v", i)
	}

	// A person marks it a false positive; scans never change that.
	add(i.Triage("bob", domain.TriageFalsePositive, "test fixture", time.Time{}, at(2*time.Minute)))

	// A scan that ran only builtin cannot fix what ai found.
	builtinOnly := w.completedScan(t, "scan2", []string{"builtin"}, false)
	if i.FixableBy(builtinOnly) {
		t.Fatal("fixable by a scan that did not run every engine that found it")
	}
	_, err := i.Fix(builtinOnly, t0)
	wantIs(t, err, domain.ErrConflict)
	// A partial scan fixes nothing.
	partial := w.completedScan(t, "scan3", nil, true)
	_, err = i.Fix(partial, t0)
	wantIs(t, err, domain.ErrConflict)
	// A scan that found it again does not fix it, it sees it.
	scan4 := w.completedScan(t, "scan4", nil, false, aiFinding)
	_, err = i.Fix(scan4, t0)
	wantIs(t, err, domain.ErrConflict)
	add(i.Seen(scan4, "f1", at(3*time.Minute)))
	if i.LastSeenScanID != "scan4" || i.FirstSeenScanID != "scan1" {
		t.Fatalf("seen: first %s last %s", i.FirstSeenScanID, i.LastSeenScanID)
	}
	if evs, err := i.Seen(scan4, "f1", t0); evs != nil || err != nil {
		t.Fatalf("second Seen of the same scan = %v, %v; want no-op", evs, err)
	}
	// Seen by another engine: that engine joins the ones a fix must run.
	builtinFinding := aiFinding
	builtinFinding.Engine = "builtin"
	add(i.Seen(w.completedScan(t, "scan4b", nil, false, builtinFinding), "f1", at(3*time.Minute)))
	if strings.Join(i.Engines, ",") != "ai,builtin" {
		t.Fatalf("engines = %v", i.Engines)
	}
	onlyAI := w.completedScan(t, "scan4c", []string{"ai"}, false)
	if i.FixableBy(onlyAI) {
		t.Fatal("fixable by a scan without builtin, which found it")
	}
	// A failed scan fixes nothing.
	failed, _ := w.newScan(t, "scan5", nil)
	on(t, failed)(failed.Fail(domain.NoFence, "x", t0))
	_, err = i.Fix(failed, t0)
	wantIs(t, err, domain.ErrConflict)

	// A complete scan with every engine that did not find it fixes it.
	scan6 := w.completedScan(t, "scan6", nil, false)
	if !i.FixableBy(scan6) {
		t.Fatal("not fixable by a complete, full scan")
	}
	add(i.Fix(scan6, at(4*time.Minute)))
	if i.State != domain.IssueStateFixed || i.FixedByScanID != "scan6" || i.TriageStatus != domain.TriageFalsePositive {
		t.Fatalf("fixed issue = %+v", i)
	}
	_, err = i.Fix(scan6, t0)
	wantIs(t, err, domain.ErrConflict)
	_, err = i.Seen(scan4, "f1", t0)
	wantIs(t, err, domain.ErrConflict)

	// Found again: reopened, triage untouched.
	scan7 := w.completedScan(t, "scan7", nil, false, aiFinding)
	add(i.Reopen(scan7, "f1", at(5*time.Minute)))
	if i.State != domain.IssueStateOpen || i.TriageStatus != domain.TriageFalsePositive || i.FixedByScanID != "" {
		t.Fatalf("reopened issue = %+v", i)
	}
	_, err = i.Reopen(scan7, "f1", t0)
	wantIs(t, err, domain.ErrConflict)

	var states, triages []string
	for _, h := range i.History {
		if h.State != "" {
			states = append(states, string(h.State))
		}
		if h.Triage != "" {
			triages = append(triages, string(h.Triage)+" by "+h.Actor)
		}
	}
	if strings.Join(states, ",") != "open,fixed,open" || strings.Join(triages, ",") != "false_positive by bob" {
		t.Fatalf("history states %v triages %v", states, triages)
	}

	checkFold(t, events, domain.FoldIssue)
}

func TestIssueSightingChecks(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	scan1 := w.completedScan(t, "scan1", nil, false, finding("f1", "fp1", domain.SeverityLow), finding("f2", "fp2", domain.SeverityLow))
	i := new(domain.Issue)
	on(t, i)(domain.OpenIssue("i1", scan1, "f1", t0))

	_, err := i.Seen(scan1, "f2", t0)
	wantField(t, err, "finding_id") // another fingerprint
	_, err = i.Seen(scan1, "f404", t0)
	wantIs(t, err, domain.ErrNotFound)
	_, err = domain.OpenIssue("", scan1, "f1", t0)
	wantField(t, err, "id")
	running := scanIn(t, domain.ScanStateRunning)
	_, err = domain.OpenIssue("i2", running, "f1", t0)
	wantIs(t, err, domain.ErrConflict)
	_, err = domain.OpenIssue("i2", nil, "f1", t0)
	wantIs(t, err, domain.ErrNotFound)
	_, err = new(domain.Issue).Triage("bob", domain.TriageWontFix, "", time.Time{}, t0)
	wantIs(t, err, domain.ErrNotFound)
}

func TestIssueTriageRules(t *testing.T) {
	t.Parallel()
	now := at(time.Hour)
	tests := []struct {
		name    string
		status  domain.Triage
		expires time.Time
		note    string
		field   string // "" when valid
	}{
		{"open", domain.TriageOpen, time.Time{}, "", ""},
		{"under review", domain.TriageUnderReview, time.Time{}, "looking", ""},
		{"false positive", domain.TriageFalsePositive, time.Time{}, "test data", ""},
		{"wont fix", domain.TriageWontFix, time.Time{}, "", ""},
		{"accepted risk", domain.TriageAcceptedRisk, now.Add(24 * time.Hour), "until the rewrite", ""},
		{"accepted risk without expiry", domain.TriageAcceptedRisk, time.Time{}, "", "expires_at"},
		{"accepted risk expired", domain.TriageAcceptedRisk, now.Add(-time.Second), "", "expires_at"},
		{"accepted risk expiring now", domain.TriageAcceptedRisk, now, "", "expires_at"},
		{"expiry without accepted risk", domain.TriageWontFix, now.Add(time.Hour), "", "expires_at"},
		{"unknown status", "ignored", time.Time{}, "", "status"},
		{"long note", domain.TriageWontFix, time.Time{}, strings.Repeat("n", domain.MaxNoteLength+1), "note"},
	}
	w := newWorld(t, nil)
	scan := w.completedScan(t, "scan1", nil, false, finding("f1", "fp1", domain.SeverityLow))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			i := new(domain.Issue)
			on(t, i)(domain.OpenIssue("i1", scan, "f1", t0))
			events, err := i.Triage("bob", tt.status, tt.note, tt.expires, now)
			if tt.field != "" {
				wantField(t, err, tt.field)
				return
			}
			must(t, i, events, err)
			if i.TriageStatus != tt.status || i.TriagedBy != "bob" || i.TriageNote != tt.note || !i.TriageExpiresAt.Equal(tt.expires) {
				t.Fatalf("issue = %+v", i)
			}
		})
	}
	_, err := new(domain.Issue).Triage("", domain.TriageOpen, "", time.Time{}, now)
	wantField(t, err, "actor")
}

func TestIssueEffectiveTriage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	scan := w.completedScan(t, "scan1", nil, false, finding("f1", "fp1", domain.SeverityLow))
	i := new(domain.Issue)
	on(t, i)(domain.OpenIssue("i1", scan, "f1", t0))
	expires := at(48 * time.Hour)
	on(t, i)(i.Triage("bob", domain.TriageAcceptedRisk, "", expires, t0))
	for _, tt := range []struct {
		now  time.Time
		want domain.Triage
	}{
		{t0, domain.TriageAcceptedRisk},
		{expires.Add(-time.Nanosecond), domain.TriageAcceptedRisk},
		{expires, domain.TriageOpen},
		{expires.Add(time.Hour), domain.TriageOpen},
	} {
		if got := i.EffectiveTriage(tt.now); got != tt.want {
			t.Errorf("EffectiveTriage(%s) = %s, want %s", tt.now, got, tt.want)
		}
	}
	if i.TriageStatus != domain.TriageAcceptedRisk {
		t.Fatal("EffectiveTriage changed the stored triage")
	}
	on(t, i)(i.Triage("bob", domain.TriageWontFix, "", time.Time{}, t0))
	if got := i.EffectiveTriage(expires.Add(time.Hour)); got != domain.TriageWontFix {
		t.Fatalf("wont_fix reads %s later", got)
	}
	if !domain.TriageWontFix.Dismissed() || domain.TriageUnderReview.Dismissed() {
		t.Fatal("Dismissed wrong")
	}
}
