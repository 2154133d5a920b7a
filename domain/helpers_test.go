package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

type aggregate interface{ Apply(domain.Event) error }

// must applies the events of a decision to agg, failing the test on a
// decision or apply error, and returns the events.
func must(t *testing.T, agg aggregate, events []domain.Event, err error) []domain.Event {
	t.Helper()
	if err != nil {
		t.Fatalf("decision: %v", err)
	}
	for _, e := range events {
		if err := agg.Apply(e); err != nil {
			t.Fatalf("apply %s: %v", e.EventName(), err)
		}
	}
	return events
}

// on returns a function that applies a decision's result to agg, for
// on(t, s)(s.Start(fence, now)).
func on(t *testing.T, agg aggregate) func([]domain.Event, error) []domain.Event {
	t.Helper()
	return func(events []domain.Event, err error) []domain.Event {
		t.Helper()
		return must(t, agg, events, err)
	}
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var ia *domain.InvalidArgumentError
	if !errors.As(err, &ia) {
		t.Fatalf("err = %v, want *InvalidArgumentError for %q", err, field)
	}
	if ia.Field != field {
		t.Fatalf("field = %q (%v), want %q", ia.Field, err, field)
	}
	if !errors.Is(err, domain.ErrInvalidArgument) {
		t.Fatalf("errors.Is(%v, ErrInvalidArgument) = false", err)
	}
	if !strings.Contains(err.Error(), field) {
		t.Fatalf("message %q does not name %q", err, field)
	}
}

func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

// roundTrip encodes each event as JSON and decodes it by name through
// NewEvent, as the eventstore codec does.
func roundTrip(t *testing.T, events []domain.Event) []domain.Event {
	t.Helper()
	out := make([]domain.Event, 0, len(events))
	for _, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal %s: %v", e.EventName(), err)
		}
		fresh, ok := domain.NewEvent(e.EventName())
		if !ok {
			t.Fatalf("NewEvent(%q) unknown", e.EventName())
		}
		if err := json.Unmarshal(data, fresh); err != nil {
			t.Fatalf("unmarshal %s: %v", e.EventName(), err)
		}
		out = append(out, fresh)
	}
	return out
}

// checkFold verifies that folding every prefix of events gives the same
// state as applying them one by one, from values and from decoded pointers.
func checkFold[A any, P interface {
	*A
	aggregate
}](t *testing.T, events []domain.Event, fold func([]domain.Event) (*A, error)) *A {
	t.Helper()
	inc := P(new(A))
	decoded := roundTrip(t, events)
	for k := 1; k <= len(events); k++ {
		if err := inc.Apply(events[k-1]); err != nil {
			t.Fatalf("apply %d (%s): %v", k, events[k-1].EventName(), err)
		}
		folded, err := fold(events[:k])
		if err != nil {
			t.Fatalf("fold %d: %v", k, err)
		}
		if !reflect.DeepEqual(folded, (*A)(inc)) {
			t.Fatalf("fold of %d events differs from incremental apply:\n fold %+v\n inc  %+v", k, folded, inc)
		}
		fromJSON, err := fold(decoded[:k])
		if err != nil {
			t.Fatalf("fold decoded %d: %v", k, err)
		}
		if !reflect.DeepEqual(fromJSON, folded) {
			t.Fatalf("fold of %d decoded events differs:\n json %+v\n orig %+v", k, fromJSON, folded)
		}
	}
	if _, err := fold(nil); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("fold(nil) err = %v, want ErrNotFound", err)
	}
	return (*A)(inc)
}

// world is a project with an archive repository holding one captured
// snapshot, the base for scans and issues.
type world struct {
	project *domain.Project
	repo    *domain.Repository
	snap    string
}

func newWorld(t *testing.T, profile *domain.ThreatProfile) world {
	t.Helper()
	p := new(domain.Project)
	must(t, p, nil, nil)
	evs, err := domain.NewProject("p1", "Payments", "the payments team", "alice", t0)
	must(t, p, evs, err)
	r := new(domain.Repository)
	evs, err = domain.NewRepository(p, "r1", "api", domain.Source{Kind: domain.SourceArchive}, domain.SourcePolicy{}, t0)
	must(t, r, evs, err)
	evs, err = r.CaptureSnapshot("s1", domain.Capture{Digest: "sha256:" + strings.Repeat("ab", 32), SizeBytes: 10, FileCount: 2}, t0)
	must(t, r, evs, err)
	if profile != nil {
		evs, err = r.DefineThreatProfile(*profile, t0)
		must(t, r, evs, err)
	}
	return world{project: p, repo: r, snap: "s1"}
}

func (w world) newScan(t *testing.T, id string, engines []string) (*domain.Scan, []domain.Event) {
	t.Helper()
	s := new(domain.Scan)
	evs, err := domain.NewScan(w.project, w.repo, domain.ScanRequest{ID: id, Engines: engines, RequestedBy: "alice"}, t0)
	return s, must(t, s, evs, err)
}

func finding(id, fp string, sev domain.Severity) domain.Finding {
	return domain.Finding{ID: id, Fingerprint: fp, RuleID: "secrets.aws-key", Title: "AWS key", Severity: sev,
		CWE: "CWE-798", Engine: domain.EngineBuiltin, File: "src/app.go", StartLine: 3, EndLine: 4,
		Snippet: "key = \"AKIA****\"", Message: "hard-coded key", Remediation: "rotate it", Confidence: 0.9}
}

// completedScan runs a scan to completion with the given findings.
func (w world) completedScan(t *testing.T, id string, engines []string, partial bool, findings ...domain.Finding) *domain.Scan {
	t.Helper()
	s, _ := w.newScan(t, id, engines)
	evs, err := s.Claim("w1", at(time.Hour), t0)
	must(t, s, evs, err)
	evs, err = s.Start(s.Fence, t0)
	must(t, s, evs, err)
	for _, f := range findings {
		evs, err = s.RecordFinding(s.Fence, f, t0)
		must(t, s, evs, err)
	}
	evs, err = s.Complete(s.Fence, partial, "", t0)
	must(t, s, evs, err)
	return s
}
