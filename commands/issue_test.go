package commands_test

import (
	"testing"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
)

func TestTriageIssue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	scan := e.scan()
	fence := e.running(scan)
	must[commands.ScanResult](t)(e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: scan, Fence: fence, Findings: []domain.Finding{finding(1)}}))
	done := must[commands.ScanResult](t)(e.h.CompleteScan.Handle(e.ctx, commands.CompleteScan{ScanID: scan, Fence: fence}))

	// Issues are opened by scan classification (a process manager); here
	// through the repository, with the domain's decision.
	opened, err := domain.OpenIssue("issue-1", done.Scan, done.Scan.Findings[0].ID, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.h.Streams.Issues.Create(e.ctx, "issue-1", opened); err != nil {
		t.Fatal(err)
	}

	res, err := e.h.TriageIssue.Handle(e.ctx, commands.TriageIssue{IssueID: "issue-1", Status: domain.TriageUnderReview, Note: "looking"})
	if err != nil || res.Issue.TriageStatus != domain.TriageUnderReview || res.Issue.TriagedBy != alice || res.Version != 2 {
		t.Fatalf("triage: %+v, %v", res.Issue, err)
	}
	accepted, err := e.h.TriageIssue.Handle(e.ctx, commands.TriageIssue{IssueID: "issue-1", Status: domain.TriageAcceptedRisk, ExpiresAt: t0.Add(48 * time.Hour)})
	if err != nil || accepted.Issue.EffectiveTriage(t0.Add(49*time.Hour)) != domain.TriageOpen {
		t.Fatalf("accepted risk: %+v, %v", accepted.Issue, err)
	}

	for _, tt := range []struct {
		name  string
		cmd   commands.TriageIssue
		field string
	}{
		{"accepted risk without expiry", commands.TriageIssue{IssueID: "issue-1", Status: domain.TriageAcceptedRisk}, "expires_at"},
		{"expiry without accepted risk", commands.TriageIssue{IssueID: "issue-1", Status: domain.TriageWontFix, ExpiresAt: t0.Add(time.Hour)}, "expires_at"},
		{"unknown status", commands.TriageIssue{IssueID: "issue-1", Status: "meh"}, "status"},
		{"bad id", commands.TriageIssue{IssueID: "", Status: domain.TriageOpen}, "issue_id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.h.TriageIssue.Handle(e.ctx, tt.cmd)
			wantField(t, err, tt.field)
		})
	}
	_, err = e.h.TriageIssue.Handle(e.ctx, commands.TriageIssue{IssueID: "issue-2", Status: domain.TriageOpen})
	wantIs(t, err, domain.ErrNotFound)
}
