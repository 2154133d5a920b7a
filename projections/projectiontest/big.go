package projectiontest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// IDs of what SeedBig appends.
const (
	BigProject    = "pbig"
	BigRepository = "rbig"
	BigScanID     = "sbig"
)

// seedWorkers is how many issue streams SeedBig appends to at once: both
// stores group concurrent appends into one transaction.
const seedWorkers = 32

// BigScan sizes SeedBig.
type BigScan struct {
	// Findings is the number of findings of scan "sbig".
	Findings int
	// Classify completes the scan and classifies every finding f<i> as
	// new, opening issue "ibig<i>" of repository "rbig". By i mod 40 the
	// issue's triage is: 0–3 and 20–23 false_positive, 4–5 wont_fix, 6–7
	// under_review, 8 accepted_risk until T0+10 years, 28 accepted_risk
	// until T0+30 days (which reads open after that), the rest open; by i
	// mod 10, 9 is fixed. Diffs are all "new": unchanged and reopened
	// select nothing.
	Classify bool
}

// SeedBig appends a project "pbig" (owner Alice) with repository "rbig"
// and a scan "sbig" of b.Findings findings whose severities (5), rules (20,
// "rule.00"…) and files (100, "src/file000.go"…) cycle with the finding's
// index, so that filters select a fraction. It appends findings 1,000 per
// call and issue streams concurrently, and returns the position of the
// last event. It is for tests and benchmark harnesses; it is not safe to
// run twice on one store.
func SeedBig(ctx context.Context, s eventstore.Appender, reg *eventstore.Registry, b BigScan) (eventstore.Position, error) {
	at := T0
	var last eventstore.Position
	app := func(actor string, stream eventstore.StreamID, events ...domain.Event) (eventstore.Position, error) {
		nes := make([]eventstore.NewEvent, 0, len(events))
		for _, ev := range events {
			ne, err := commands.EncodeEvent(reg, ulid.Make().String(), ev, eventstore.Metadata{Actor: actor})
			if err != nil {
				return eventstore.Position{}, fmt.Errorf("encode %s: %w", ev.EventName(), err)
			}
			nes = append(nes, ne)
		}
		res, err := s.Append(ctx, stream, eventstore.Any, nes...)
		if err != nil {
			return eventstore.Position{}, fmt.Errorf("append to %s: %w", stream, err)
		}
		return res.Position, nil
	}
	steps := []struct {
		actor  string
		stream eventstore.StreamID
		events []domain.Event
	}{
		{Alice, "project-" + BigProject, []domain.Event{domain.ProjectCreated{ProjectID: BigProject, Name: "big", CreatedBy: Alice, At: at},
			domain.MemberGranted{Principal: Alice, Role: domain.RoleOwner, At: at}}},
		{Alice, "repository-" + BigRepository, []domain.Event{domain.RepositoryAdded{RepositoryID: BigRepository, ProjectID: BigProject, Name: "big",
			Source: domain.Source{Kind: domain.SourceArchive}, At: at}, domain.SnapshotCaptured{SnapshotID: "sbig", Digest: digest(9), At: at}}},
		{Alice, "scan-" + BigScanID, []domain.Event{domain.ScanRequested{ScanID: BigScanID, ProjectID: BigProject, RepositoryID: BigRepository, SnapshotID: "sbig",
			Engines: []string{"builtin"}, Profile: domain.DefaultThreatProfile(), RequestedBy: Alice, At: at},
			domain.ScanClaimed{WorkerID: "w", Fence: 1, LeaseUntil: at.Add(time.Hour), At: at}, domain.ScanStarted{Fence: 1, At: at}}},
	}
	for _, st := range steps {
		p, err := app(st.actor, st.stream, st.events...)
		if err != nil {
			return last, err
		}
		last = p
	}
	sev := domain.Severities()
	var counts domain.SeverityCounts
	batch := make([]domain.Event, 0, eventstore.MaxAppendEvents)
	for i := range b.Findings {
		f := bigFinding(i, sev)
		switch f.Severity {
		case domain.SeverityCritical:
			counts.Critical++
		case domain.SeverityHigh:
			counts.High++
		case domain.SeverityMedium:
			counts.Medium++
		case domain.SeverityLow:
			counts.Low++
		default:
			counts.Info++
		}
		batch = append(batch, domain.FindingRecorded{Fence: 1, Finding: f, At: at})
		if len(batch) == cap(batch) || i == b.Findings-1 {
			p, err := app("worker", "scan-"+BigScanID, batch...)
			if err != nil {
				return last, err
			}
			last = p
			batch = batch[:0]
		}
	}
	if !b.Classify {
		return last, nil
	}
	p, err := app("worker", "scan-"+BigScanID, domain.ScanCompleted{Fence: 1, Counts: counts, At: at})
	if err != nil {
		return last, err
	}
	last = p
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan int)
	for range seedWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p, err := app("worker", eventstore.NewStreamID("issue", fmt.Sprintf("ibig%07d", i)), bigIssue(i, sev)...)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if last.Less(p) {
					last = p
				}
				mu.Unlock()
			}
		}()
	}
	for i := range b.Findings {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return last, firstErr
}

func bigFinding(i int, sev []domain.Severity) domain.Finding {
	return domain.Finding{ID: fmt.Sprintf("f%07d", i), Fingerprint: fmt.Sprintf("fp%07d", i), RuleID: fmt.Sprintf("rule.%02d", i%20),
		Title: "a finding", Severity: sev[i%len(sev)], Engine: "builtin", File: fmt.Sprintf("src/file%03d.go", i%100),
		StartLine: 1 + i%500, EndLine: 1 + i%500, Snippet: "x := secret()", Message: "m", Confidence: 0.5}
}

// bigIssue returns the events of finding i's issue (see BigScan.Classify).
func bigIssue(i int, sev []domain.Severity) []domain.Event {
	f := bigFinding(i, sev)
	at := T0.Add(time.Hour)
	evs := []domain.Event{domain.IssueOpened{IssueID: fmt.Sprintf("ibig%07d", i), RepositoryID: BigRepository, Fingerprint: f.Fingerprint,
		RuleID: f.RuleID, Title: f.Title, Severity: f.Severity, File: f.File, Engine: f.Engine, ScanID: BigScanID, FindingID: f.ID, At: at}}
	triage := func(s domain.Triage, expires time.Time) {
		evs = append(evs, domain.IssueTriaged{Status: s, Note: "seeded", ExpiresAt: expires, Actor: Alice, At: at})
	}
	switch m := i % 40; {
	case m < 4 || m >= 20 && m < 24:
		triage(domain.TriageFalsePositive, time.Time{})
	case m < 6:
		triage(domain.TriageWontFix, time.Time{})
	case m < 8:
		triage(domain.TriageUnderReview, time.Time{})
	case m == 8:
		triage(domain.TriageAcceptedRisk, T0.AddDate(10, 0, 0))
	case m == 28:
		triage(domain.TriageAcceptedRisk, T0.AddDate(0, 0, 30))
	}
	if i%10 == 9 {
		evs = append(evs, domain.IssueFixed{ScanID: BigScanID, At: at})
	}
	return evs
}
