package projections_test

import (
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/projections"
	pt "github.com/vega-sec/vega/projections/projectiontest"
	"github.com/vega-sec/vega/queries"
)

// TestScanClassifiedFillsFindings classifies scans with one new, one
// reopened and one unchanged finding (the unchanged one has no issue event
// of its own): every finding ends with its diff, the issue_id
// domain.IssueID derives and its issue's triage, and the diff filter finds
// exactly the unchanged one. A classification split into parts must not
// mark a finding a later part lists as unchanged.
func TestScanClassifiedFillsFindings(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, env *pt.Env) {
		w := pt.Seed(t, env)
		const repo = "r1"
		issue := func(fp string) string { return domain.IssueID(repo, fp) }
		finding := func(id, fp string) domain.Finding {
			return domain.Finding{ID: id, Fingerprint: fp, RuleID: "rule." + fp, Title: "t", Severity: domain.SeverityHigh,
				Engine: "builtin", File: "x.go", StartLine: 1, EndLine: 1}
		}
		scan := func(id string, fs ...domain.Finding) {
			env.Append(t, pt.Alice, eventstore.StreamID("scan-"+id), domain.ScanRequested{ScanID: id, ProjectID: "p1", RepositoryID: repo,
				SnapshotID: "s2", Engines: []string{"builtin"}, Profile: domain.DefaultThreatProfile(), RequestedBy: pt.Alice, At: w.Now()})
			evs := []domain.Event{domain.ScanClaimed{WorkerID: "w1", Fence: 1, LeaseUntil: w.Now().Add(time.Hour), At: w.Now()},
				domain.ScanStarted{Fence: 1, At: w.Now()}}
			for _, f := range fs {
				evs = append(evs, domain.FindingRecorded{Fence: 1, Finding: f, At: w.Now()})
			}
			evs = append(evs, domain.ScanCompleted{Fence: 1, Counts: domain.SeverityCounts{High: len(fs)}, At: w.Now()})
			env.Append(t, "worker", eventstore.StreamID("scan-"+id), evs...)
		}
		opened := func(fp, scanID, findingID string) domain.IssueOpened {
			return domain.IssueOpened{IssueID: issue(fp), RepositoryID: repo, Fingerprint: fp, RuleID: "rule." + fp, Title: "t",
				Severity: domain.SeverityHigh, File: "x.go", Engine: "builtin", ScanID: scanID, FindingID: findingID, At: w.Now()}
		}
		appendIssue := func(fp string, evs ...domain.Event) {
			env.Append(t, "worker", eventstore.StreamID("issue-"+issue(fp)), evs...)
		}

		// sc7 opens the issues of fp-re (fixed afterwards) and fp-same
		// (triaged false_positive).
		scan("sc7", finding("h2", "fp-re"), finding("h3", "fp-same"))
		appendIssue("fp-re", opened("fp-re", "sc7", "h2"))
		appendIssue("fp-same", opened("fp-same", "sc7", "h3"))
		env.Append(t, "worker", "scan-sc7", domain.ScanClassified{New: []string{"h2", "h3"}, Part: 1, Parts: 1, At: w.Now()})
		appendIssue("fp-same", domain.IssueTriaged{Status: domain.TriageFalsePositive, Actor: pt.Alice, At: w.Now()})
		appendIssue("fp-re", domain.IssueFixed{ScanID: "sc7", At: w.Now()})

		// sc8: as the classifier writes it — issue events for the new and
		// the reopened finding, none for the unchanged one.
		scan("sc8", finding("g1", "fp-new8"), finding("g2", "fp-re"), finding("g3", "fp-same"))
		appendIssue("fp-new8", opened("fp-new8", "sc8", "g1"))
		appendIssue("fp-re", domain.IssueReopened{ScanID: "sc8", FindingID: "g2", Engine: "builtin", Title: "t", Severity: domain.SeverityHigh, File: "x.go", At: w.Now()})
		env.Append(t, "worker", "scan-sc8", domain.ScanClassified{BaseScanID: "sc7", New: []string{"g1"}, Reopened: []string{"g2"}, Part: 1, Parts: 1, At: w.Now()})

		// sc9: no issue events at all, and the outcome in two parts, the
		// reopened finding in the second: only ScanClassified tells.
		scan("sc9", finding("k1", "fp-new9"), finding("k2", "fp-re"), finding("k3", "fp-same"))
		at := w.Now()
		last := env.Append(t, "worker", "scan-sc9",
			domain.ScanClassified{BaseScanID: "sc8", New: []string{"k1"}, Part: 1, Parts: 2, At: at},
			domain.ScanClassified{BaseScanID: "sc8", Reopened: []string{"k2"}, Part: 2, Parts: 2, At: at})

		r := pt.Start(t, env.Config())
		pt.WaitFor(t, r, last)
		for _, phase := range []string{"live", "rebuilt"} {
			if phase == "rebuilt" {
				if err := r.Rebuild(t.Context(), projections.NameFindings); err != nil {
					t.Fatalf("rebuild findings: %v", err)
				}
			}
			svc, err := queries.New(env.ReadDB, env.Dialect, env.Store, queries.Options{Clock: func() time.Time { return pt.T0.Add(24 * time.Hour) }})
			if err != nil {
				t.Fatalf("new service: %v", err)
			}
			type want struct{ diff, issueID, triage string }
			for _, c := range []struct {
				scan string
				want map[string]want
			}{
				{"sc8", map[string]want{
					"g1": {domain.DiffNew, issue("fp-new8"), "open"},
					"g2": {domain.DiffReopened, issue("fp-re"), "open"},
					"g3": {domain.DiffUnchanged, issue("fp-same"), "false_positive"},
				}},
				{"sc9", map[string]want{
					"k1": {domain.DiffNew, issue("fp-new9"), ""}, // its issue was never opened
					"k2": {domain.DiffReopened, issue("fp-re"), "open"},
					"k3": {domain.DiffUnchanged, issue("fp-same"), "false_positive"},
				}},
			} {
				p, err := svc.ListFindings(t.Context(), alice, c.scan, queries.FindingFilter{}, queries.ListOptions{})
				if err != nil {
					t.Fatalf("%s: list findings of %s: %v", phase, c.scan, err)
				}
				if len(p.Items) != len(c.want) {
					t.Errorf("%s: %s has %d findings, want %d", phase, c.scan, len(p.Items), len(c.want))
				}
				var unchanged string
				for _, f := range p.Items {
					got := want{f.Diff, f.IssueID, f.Triage}
					if got != c.want[f.ID] {
						t.Errorf("%s: finding %s of %s = %+v, want %+v", phase, f.ID, c.scan, got, c.want[f.ID])
					}
					if f.Diff == domain.DiffUnchanged {
						unchanged = f.ID
					}
				}
				p, err = svc.ListFindings(t.Context(), alice, c.scan, queries.FindingFilter{Diff: "unchanged"}, queries.ListOptions{})
				if err != nil {
					t.Fatalf("%s: list unchanged findings of %s: %v", phase, c.scan, err)
				}
				if got := ids(p.Items); len(got) != 1 || got[0] != unchanged || unchanged == "" {
					t.Errorf("%s: unchanged findings of %s = %q, want exactly [%s]", phase, c.scan, got, unchanged)
				}
			}
		}
	})
}

var alice = queries.Caller{Principal: pt.Alice}

func ids(fs []queries.Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}
