package projectiontest

import (
	"fmt"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// T0 is the time of the first seeded event; each later one is a minute on.
var T0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// Principals of the seeded world.
const (
	Alice = "alice" // owner of project p1
	Bob   = "bob"   // viewer of project p1
	Carol = "carol" // owner of project p2
	Admin = "admin"
)

// World is what Seed appended. Its IDs are fixed, so tests can name them.
type World struct {
	Last eventstore.Position // position of the last event
	Now  func() time.Time    // the next event's time
}

// Seed appends a small but complete history: two projects, three
// repositories (one removed), snapshots in every status, a threat profile,
// scans in several states (one requeued, so its first attempt's finding is
// discarded), classified findings and issues with triage, and tokens.
//
//	p1 (alice owner, bob viewer): r1 (archive; snapshots s1, s2; profile v1;
//	  scans sc1 completed, sc2 completed, sc4 requested), r2 (git, removed;
//	  snapshots s3 failed, s4 captured)
//	p2 (carol owner): r3 (archive; snapshot s5; scan sc3 failed)
//	issues of r1: i1 (F1/F4, false_positive), i2 (fixed by sc2), i3 (accepted
//	  risk until T0+30 days), i4 (opened by sc2)
//	tokens: tk-alice, tk-bob (revoked), tk-admin (admin, expired)
func Seed(t testing.TB, e *Env) *World {
	t.Helper()
	now := T0
	tick := func() time.Time { now = now.Add(time.Minute); return now }
	w := &World{Now: tick}
	app := func(actor string, stream string, evs ...domain.Event) {
		w.Last = e.Append(t, actor, eventstore.StreamID(stream), evs...)
	}
	finding := func(id, fp, rule string, sev domain.Severity, file string, line int) domain.Finding {
		return domain.Finding{ID: id, Fingerprint: fp, RuleID: rule, Title: "title of " + rule, Severity: sev, CWE: "CWE-798",
			Engine: "builtin", File: file, StartLine: line, EndLine: line + 1, Snippet: "key = \"****\"", Message: "msg " + id,
			Remediation: "fix it", Confidence: 0.9}
	}

	app(Alice, "project-p1", domain.ProjectCreated{ProjectID: "p1", Name: "alpha", Description: "first", CreatedBy: Alice, At: tick()},
		domain.MemberGranted{Principal: Alice, Role: domain.RoleOwner, At: now})
	app(Alice, "project-p1", domain.MemberGranted{Principal: Bob, Role: domain.RoleViewer, At: tick()})
	app(Carol, "project-p2", domain.ProjectCreated{ProjectID: "p2", Name: "beta", CreatedBy: Carol, At: tick()},
		domain.MemberGranted{Principal: Carol, Role: domain.RoleOwner, At: now})
	app(Carol, "project-p2", domain.ProjectRenamed{Name: "beta-2", At: tick()})

	app(Alice, "repository-r1", domain.RepositoryAdded{RepositoryID: "r1", ProjectID: "p1", Name: "api", Source: domain.Source{Kind: domain.SourceArchive}, At: tick()})
	app(Alice, "repository-r1", domain.SnapshotCaptured{SnapshotID: "s1", Digest: digest(1), SizeBytes: 100, FileCount: 3, At: tick()})
	app(Alice, "repository-r1", domain.SnapshotCaptured{SnapshotID: "s2", Digest: digest(2), SizeBytes: 200, FileCount: 4, At: tick()})
	profile := domain.DefaultThreatProfile()
	profile.Name, profile.Version, profile.MinSeverity = "strict", 1, domain.SeverityMedium
	app(Alice, "repository-r1", domain.ThreatProfileDefined{Profile: profile, At: tick()})
	app(Alice, "repository-r2", domain.RepositoryAdded{RepositoryID: "r2", ProjectID: "p1", Name: "web",
		Source: domain.Source{Kind: domain.SourceGit, URL: "https://example.com/web.git", Ref: "main"}, At: tick()})
	app(Alice, "repository-r2", domain.SnapshotRequested{SnapshotID: "s3", Ref: "main", At: tick()})
	app("worker", "repository-r2", domain.SnapshotFailed{SnapshotID: "s3", Error: "clone failed", At: tick()})
	app(Alice, "repository-r2", domain.SnapshotRequested{SnapshotID: "s4", Ref: "main", At: tick()})
	app("worker", "repository-r2", domain.SnapshotCaptured{SnapshotID: "s4", Digest: digest(4), SizeBytes: 400, FileCount: 5,
		Commit: "0123456789abcdef0123456789abcdef01234567", At: tick()})
	app(Carol, "repository-r3", domain.RepositoryAdded{RepositoryID: "r3", ProjectID: "p2", Name: "svc", Source: domain.Source{Kind: domain.SourceArchive}, At: tick()})
	app(Carol, "repository-r3", domain.SnapshotCaptured{SnapshotID: "s5", Digest: digest(5), SizeBytes: 500, FileCount: 6, At: tick()})

	// sc1: first attempt recorded f0 and was requeued; the second recorded
	// f1..f3 and completed.
	app(Alice, "scan-sc1", domain.ScanRequested{ScanID: "sc1", ProjectID: "p1", RepositoryID: "r1", SnapshotID: "s2",
		Engines: []string{"builtin"}, Profile: profile, RequestedBy: Alice, At: tick()})
	app("worker", "scan-sc1", domain.ScanClaimed{WorkerID: "w1", Fence: 1, LeaseUntil: now.Add(time.Hour), At: tick()},
		domain.ScanStarted{Fence: 1, At: now},
		domain.FindingRecorded{Fence: 1, Finding: finding("f0", "fp0", "secrets.aws", domain.SeverityHigh, "a.go", 1), At: now})
	app("worker", "scan-sc1", domain.ScanRequeued{Fence: 1, Reason: "lease expired", At: tick()})
	app("worker", "scan-sc1", domain.ScanClaimed{WorkerID: "w2", Fence: 2, LeaseUntil: now.Add(time.Hour), At: tick()},
		domain.ScanStarted{Fence: 2, At: tick()},
		domain.ScanProgressed{Fence: 2, Phase: "builtin", Progress: 50, At: tick()},
		domain.FindingRecorded{Fence: 2, Finding: finding("f1", "fp1", "secrets.aws", domain.SeverityCritical, "a.go", 10), At: tick()},
		domain.FindingRecorded{Fence: 2, Finding: finding("f2", "fp2", "injection.sql", domain.SeverityHigh, "db/q.go", 20), At: now},
		domain.FindingRecorded{Fence: 2, Finding: finding("f3", "fp3", "crypto.md5", domain.SeverityLow, "a.go", 30), At: now})
	app("llm-proxy", "scan-sc1", domain.LLMUsageRecorded{Model: "m", Usage: domain.LLMUsage{InputTokens: 100, OutputTokens: 20, CostUSD: 0.5, Requests: 1}, At: tick()})
	app("worker", "scan-sc1", domain.ScanCompleted{Fence: 2, Counts: domain.SeverityCounts{Critical: 1, High: 1, Low: 1}, At: tick()})
	app("worker", "issue-i1", domain.IssueOpened{IssueID: "i1", RepositoryID: "r1", Fingerprint: "fp1", RuleID: "secrets.aws", Title: "title of secrets.aws",
		Severity: domain.SeverityCritical, File: "a.go", Engine: "builtin", ScanID: "sc1", FindingID: "f1", At: tick()})
	app("worker", "issue-i2", domain.IssueOpened{IssueID: "i2", RepositoryID: "r1", Fingerprint: "fp2", RuleID: "injection.sql", Title: "title of injection.sql",
		Severity: domain.SeverityHigh, File: "db/q.go", Engine: "builtin", ScanID: "sc1", FindingID: "f2", At: now})
	app("worker", "issue-i3", domain.IssueOpened{IssueID: "i3", RepositoryID: "r1", Fingerprint: "fp3", RuleID: "crypto.md5", Title: "title of crypto.md5",
		Severity: domain.SeverityLow, File: "a.go", Engine: "builtin", ScanID: "sc1", FindingID: "f3", At: now})
	app(Alice, "issue-i1", domain.IssueTriaged{Status: domain.TriageFalsePositive, Note: "test key", Actor: Alice, At: tick()})
	app(Alice, "issue-i3", domain.IssueTriaged{Status: domain.TriageAcceptedRisk, Note: "later", ExpiresAt: T0.Add(30 * 24 * time.Hour), Actor: Alice, At: tick()})

	// sc2 finds fp1 again (i1 unchanged), fp5 (i4 new) and fp3 (i3
	// unchanged), not fp2 (i2 fixed).
	app(Alice, "scan-sc2", domain.ScanRequested{ScanID: "sc2", ProjectID: "p1", RepositoryID: "r1", SnapshotID: "s2",
		Engines: []string{"builtin"}, Profile: profile, RequestedBy: Alice, At: tick()})
	app("worker", "scan-sc2", domain.ScanClaimed{WorkerID: "w1", Fence: 1, LeaseUntil: now.Add(time.Hour), At: tick()},
		domain.ScanStarted{Fence: 1, At: tick()},
		domain.FindingRecorded{Fence: 1, Finding: finding("f4", "fp1", "secrets.aws", domain.SeverityCritical, "a.go", 11), At: tick()},
		domain.FindingRecorded{Fence: 1, Finding: finding("f5", "fp5", "config.debug", domain.SeverityMedium, "cfg.yaml", 1), At: now},
		domain.FindingRecorded{Fence: 1, Finding: finding("f6", "fp3", "crypto.md5", domain.SeverityLow, "a.go", 31), At: now},
		domain.ScanCompleted{Fence: 1, Counts: domain.SeverityCounts{Critical: 1, Medium: 1, Low: 1}, At: tick()})
	app("worker", "issue-i1", domain.IssueSeen{ScanID: "sc2", FindingID: "f4", Engine: "builtin", Title: "title of secrets.aws", Severity: domain.SeverityCritical, File: "a.go", At: tick()})
	app("worker", "issue-i3", domain.IssueSeen{ScanID: "sc2", FindingID: "f6", Engine: "builtin", Title: "title of crypto.md5", Severity: domain.SeverityLow, File: "a.go", At: now})
	app("worker", "issue-i4", domain.IssueOpened{IssueID: "i4", RepositoryID: "r1", Fingerprint: "fp5", RuleID: "config.debug", Title: "title of config.debug",
		Severity: domain.SeverityMedium, File: "cfg.yaml", Engine: "builtin", ScanID: "sc2", FindingID: "f5", At: now})
	app("worker", "issue-i2", domain.IssueFixed{ScanID: "sc2", At: now})

	app(Carol, "scan-sc3", domain.ScanRequested{ScanID: "sc3", ProjectID: "p2", RepositoryID: "r3", SnapshotID: "s5",
		Engines: []string{"builtin", "ai"}, Profile: domain.DefaultThreatProfile(), RequestedBy: Carol, At: tick()})
	app("worker", "scan-sc3", domain.ScanFailed{Reason: "no runner", At: tick()})
	app(Alice, "scan-sc4", domain.ScanRequested{ScanID: "sc4", ProjectID: "p1", RepositoryID: "r1", SnapshotID: "s2",
		Engines: []string{"builtin"}, Profile: profile, RequestedBy: Alice, At: tick()})
	app(Alice, "repository-r2", domain.RepositoryRemoved{At: tick()})

	app(Admin, "access-alice", domain.TokenIssued{TokenID: "tk-alice", Principal: Alice, Name: "laptop", Hash: domain.HashToken("secret-alice"), At: tick()})
	app(Admin, "access-bob", domain.TokenIssued{TokenID: "tk-bob", Principal: Bob, Name: "ci", Hash: domain.HashToken("secret-bob"), At: tick()})
	app(Admin, "access-bob", domain.TokenRevoked{TokenID: "tk-bob", At: tick()})
	app(Admin, "access-admin2", domain.TokenIssued{TokenID: "tk-admin", Principal: "admin2", Name: "old", Admin: true,
		Hash: domain.HashToken("secret-admin"), ExpiresAt: T0.Add(time.Hour), At: tick()})
	return w
}

func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

// SeedBigScan appends a project "pbig" (owner Alice) with repository "rbig"
// and a running scan "sbig" holding n findings: severities, rules (20) and
// files (100) cycle, so filters select a fraction (see SeedBig).
func SeedBigScan(t testing.TB, e *Env, n int) eventstore.Position {
	t.Helper()
	last, err := SeedBig(t.Context(), e.Store, e.Registry, BigScan{Findings: n})
	if err != nil {
		t.Fatalf("seed big scan: %v", err)
	}
	return last
}

// SeedBigScanClassified is SeedBigScan with BigScan.Classify: the scan
// completes and each finding opens an issue of "rbig", with triage and
// state spread as SeedBig says.
func SeedBigScanClassified(t testing.TB, e *Env, n int) eventstore.Position {
	t.Helper()
	last, err := SeedBig(t.Context(), e.Store, e.Registry, BigScan{Findings: n, Classify: true})
	if err != nil {
		t.Fatalf("seed big classified scan: %v", err)
	}
	return last
}
