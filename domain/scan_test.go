package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
)

// legal is the state machine as DESIGN.md writes it, kept apart from the
// package's own table on purpose.
var legal = map[[2]domain.ScanState]bool{
	{domain.ScanStateRequested, domain.ScanStateClaimed}:   true,
	{domain.ScanStateRequested, domain.ScanStateCancelled}: true,
	{domain.ScanStateRequested, domain.ScanStateFailed}:    true,
	{domain.ScanStateClaimed, domain.ScanStateRunning}:     true,
	{domain.ScanStateClaimed, domain.ScanStateRequested}:   true,
	{domain.ScanStateClaimed, domain.ScanStateFailed}:      true,
	{domain.ScanStateClaimed, domain.ScanStateCancelled}:   true,
	{domain.ScanStateClaimed, domain.ScanStateTimedOut}:    true,
	{domain.ScanStateRunning, domain.ScanStateCompleted}:   true,
	{domain.ScanStateRunning, domain.ScanStateFailed}:      true,
	{domain.ScanStateRunning, domain.ScanStateCancelled}:   true,
	{domain.ScanStateRunning, domain.ScanStateTimedOut}:    true,
	{domain.ScanStateRunning, domain.ScanStateRequested}:   true,
}

const lease = 5 * time.Minute

// scanIn returns a scan brought into state through decisions, with its
// lease (if any) ending at t0+lease.
func scanIn(t *testing.T, state domain.ScanState) *domain.Scan {
	t.Helper()
	w := newWorld(t, nil)
	s, _ := w.newScan(t, "scan1", nil)
	step := func(evs []domain.Event, err error) { t.Helper(); must(t, s, evs, err) }
	claim := func() { step(s.Claim("w1", at(lease), t0)) }
	switch state {
	case domain.ScanStateRequested:
	case domain.ScanStateClaimed:
		claim()
	case domain.ScanStateRunning:
		claim()
		step(s.Start(s.Fence, t0))
	case domain.ScanStateCompleted:
		claim()
		step(s.Start(s.Fence, t0))
		step(s.Complete(s.Fence, false, "", t0))
	case domain.ScanStateFailed:
		step(s.Fail(domain.NoFence, "snapshot missing", t0))
	case domain.ScanStateCancelled:
		step(s.Cancel(domain.NoFence, "", t0))
	case domain.ScanStateTimedOut:
		claim()
		step(s.TimeOut(domain.NoFence, "deadline", t0))
	default:
		t.Fatalf("unknown state %s", state)
	}
	if s.State != state {
		t.Fatalf("built %s, want %s", s.State, state)
	}
	return s
}

// decide calls the decision that targets state to, at a time when the
// lease has expired.
func decide(s *domain.Scan, to domain.ScanState) ([]domain.Event, error) {
	now := at(2 * lease)
	switch to {
	case domain.ScanStateRequested:
		return s.Requeue(3, "", now)
	case domain.ScanStateClaimed:
		return s.Claim("w2", now.Add(lease), now)
	case domain.ScanStateRunning:
		return s.Start(s.Fence, now)
	case domain.ScanStateCompleted:
		return s.Complete(s.Fence, false, "", now)
	case domain.ScanStateFailed:
		return s.Fail(domain.NoFence, "boom", now)
	case domain.ScanStateCancelled:
		return s.Cancel(domain.NoFence, "", now)
	case domain.ScanStateTimedOut:
		return s.TimeOut(domain.NoFence, "", now)
	}
	panic("unknown state " + to)
}

// fact is the event that records a move to state to, for Apply.
func fact(s *domain.Scan, to domain.ScanState) domain.Event {
	now := at(2 * lease)
	switch to {
	case domain.ScanStateRequested:
		return domain.ScanRequeued{Fence: s.Fence, At: now}
	case domain.ScanStateClaimed:
		return domain.ScanClaimed{WorkerID: "w2", Fence: s.Fence + 1, LeaseUntil: now.Add(lease), At: now}
	case domain.ScanStateRunning:
		return domain.ScanStarted{Fence: s.Fence, At: now}
	case domain.ScanStateCompleted:
		return domain.ScanCompleted{Fence: s.Fence, At: now}
	case domain.ScanStateFailed:
		return domain.ScanFailed{Reason: "boom", At: now}
	case domain.ScanStateCancelled:
		return domain.ScanCancelled{At: now}
	case domain.ScanStateTimedOut:
		return domain.ScanTimedOut{At: now}
	}
	panic("unknown state " + to)
}

func TestScanTransitionMatrix(t *testing.T) {
	t.Parallel()
	states := domain.ScanStates()
	if len(states) != 7 {
		t.Fatalf("ScanStates() = %v, want 7 states", states)
	}
	for _, from := range states {
		for _, to := range states {
			want := legal[[2]domain.ScanState{from, to}]
			t.Run(fmt.Sprintf("%s_to_%s", from, to), func(t *testing.T) {
				t.Parallel()
				if got := domain.CanTransition(from, to); got != want {
					t.Fatalf("CanTransition = %v, want %v", got, want)
				}
				if got := from.Terminal(); got != (from != domain.ScanStateRequested && from != domain.ScanStateClaimed && from != domain.ScanStateRunning) {
					t.Fatalf("Terminal() = %v", got)
				}

				// The decision.
				s := scanIn(t, from)
				before := *s
				events, err := decide(s, to)
				if !reflect.DeepEqual(before, *s) {
					t.Fatal("decision mutated the scan")
				}
				if want {
					if err != nil {
						t.Fatalf("legal transition refused: %v", err)
					}
					must(t, s, events, nil)
					if s.State != to {
						t.Fatalf("state = %s, want %s", s.State, to)
					}
				} else {
					var te *domain.TransitionError
					if !errors.As(err, &te) {
						t.Fatalf("err = %v (events %v), want *TransitionError", err, events)
					}
					if te.From != from || te.To != to {
						t.Fatalf("TransitionError = %+v, want %s -> %s", te, from, to)
					}
					if msg := err.Error(); !strings.Contains(msg, string(from)) || !strings.Contains(msg, string(to)) {
						t.Fatalf("message %q does not name both states", msg)
					}
					wantIs(t, err, domain.ErrIllegalTransition)
					wantIs(t, err, domain.ErrConflict)
					if events != nil {
						t.Fatalf("events = %v on error", events)
					}
				}

				// The fold: history the state machine forbids is rejected.
				s = scanIn(t, from)
				err = s.Apply(fact(s, to))
				if want && err != nil {
					t.Fatalf("Apply of legal transition: %v", err)
				}
				if !want {
					wantIs(t, err, domain.ErrInvalidHistory)
					if s.State != from {
						t.Fatalf("failed Apply changed state to %s", s.State)
					}
				}
			})
		}
	}
}

func TestScanCancelRequest(t *testing.T) {
	t.Parallel()
	for _, from := range domain.ScanStates() {
		t.Run(string(from), func(t *testing.T) {
			t.Parallel()
			s := scanIn(t, from)
			events, err := s.RequestCancel("bob", "wrong branch", at(time.Minute))
			switch from {
			case domain.ScanStateRequested:
				must(t, s, events, err)
				if len(events) != 1 || events[0].EventName() != "ScanCancelled" || s.State != domain.ScanStateCancelled {
					t.Fatalf("events %v, state %s: want immediate ScanCancelled", events, s.State)
				}
			case domain.ScanStateClaimed, domain.ScanStateRunning:
				must(t, s, events, err)
				if len(events) != 1 || events[0].EventName() != "ScanCancelRequested" || s.State != from || !s.CancelRequested {
					t.Fatalf("events %v, state %s: want ScanCancelRequested", events, s.State)
				}
				again, err := s.RequestCancel("carol", "", at(2*time.Minute))
				if err != nil || again != nil {
					t.Fatalf("second request = %v, %v; want no-op", again, err)
				}
				// The runner obeys.
				events, err = s.Cancel(s.Fence, "", at(3*time.Minute))
				must(t, s, events, err)
				if s.State != domain.ScanStateCancelled || !strings.Contains(s.Reason, "bob") {
					t.Fatalf("state %s reason %q", s.State, s.Reason)
				}
			default:
				var te *domain.TransitionError
				if !errors.As(err, &te) || te.From != from || te.To != domain.ScanStateCancelled {
					t.Fatalf("err = %v, want TransitionError %s -> cancelled", err, from)
				}
			}
		})
	}
}

func TestScanFencing(t *testing.T) {
	t.Parallel()
	// Attempt 1 loses its lease, is requeued, and attempt 2 claims the scan.
	s := scanIn(t, domain.ScanStateRunning)
	if s.Fence != 1 || s.Attempts != 1 {
		t.Fatalf("fence %d attempts %d after first claim", s.Fence, s.Attempts)
	}
	stale := s.Fence
	events, err := s.Requeue(3, "", at(lease))
	must(t, s, events, err)
	events, err = s.Claim("w2", at(3*lease), at(2*lease))
	must(t, s, events, err)
	if s.Fence != 2 || s.Attempts != 2 || s.WorkerID != "w2" {
		t.Fatalf("fence %d attempts %d worker %s after second claim", s.Fence, s.Attempts, s.WorkerID)
	}
	now := at(2 * lease)

	runnerSide := map[string]func(fence uint64) ([]domain.Event, error){
		"Start":         func(f uint64) ([]domain.Event, error) { return s.Start(f, now) },
		"RenewLease":    func(f uint64) ([]domain.Event, error) { return s.RenewLease(f, now.Add(lease), now) },
		"LaunchRunner":  func(f uint64) ([]domain.Event, error) { return s.LaunchRunner(f, "process", "pid-42", now) },
		"Fail":          func(f uint64) ([]domain.Event, error) { return s.Fail(f, "x", now) },
		"Cancel":        func(f uint64) ([]domain.Event, error) { return s.Cancel(f, "x", now) },
		"TimeOut":       func(f uint64) ([]domain.Event, error) { return s.TimeOut(f, "x", now) },
		"FutureFence":   func(uint64) ([]domain.Event, error) { return s.Start(s.Fence+1, now) },
		"NoFenceStart":  func(uint64) ([]domain.Event, error) { return s.Start(domain.NoFence, now) },
		"NoFenceLaunch": func(uint64) ([]domain.Event, error) { return s.LaunchRunner(domain.NoFence, "process", "p", now) },
	}
	for name, call := range runnerSide {
		t.Run("claimed/"+name, func(t *testing.T) {
			events, err := call(stale)
			var fe *domain.FenceError
			if !errors.As(err, &fe) || events != nil {
				t.Fatalf("stale %s = %v, %v; want *FenceError", name, events, err)
			}
			wantIs(t, err, domain.ErrStaleFence)
			wantIs(t, err, domain.ErrConflict)
		})
	}

	// The current runner proceeds; the stale one still cannot write.
	events, err = s.Start(s.Fence, now)
	must(t, s, events, err)
	for name, call := range map[string]func(fence uint64) ([]domain.Event, error){
		"ReportProgress": func(f uint64) ([]domain.Event, error) { return s.ReportProgress(f, "engine:builtin", 10, now) },
		"RecordFinding": func(f uint64) ([]domain.Event, error) {
			return s.RecordFinding(f, finding("f1", "fp1", domain.SeverityHigh), now)
		},
		"Complete": func(f uint64) ([]domain.Event, error) { return s.Complete(f, false, "", now) },
	} {
		t.Run("running/"+name, func(t *testing.T) {
			if _, err := call(stale); !errors.Is(err, domain.ErrStaleFence) {
				t.Fatalf("stale %s err = %v, want ErrStaleFence", name, err)
			}
			if _, err := call(domain.NoFence); !errors.Is(err, domain.ErrStaleFence) {
				t.Fatalf("NoFence %s err = %v, want ErrStaleFence", name, err)
			}
			if _, err := call(s.Fence); err != nil {
				t.Fatalf("current %s: %v", name, err)
			}
		})
	}

	// A stale event in the history is rejected by the fold as well.
	if err := s.Apply(domain.ScanProgressed{Fence: stale, Progress: 5, At: now}); !errors.Is(err, domain.ErrInvalidHistory) {
		t.Fatalf("Apply stale progress err = %v", err)
	}
}

func TestScanRequeueAndReap(t *testing.T) {
	t.Parallel()
	t.Run("lease held", func(t *testing.T) {
		t.Parallel()
		s := scanIn(t, domain.ScanStateRunning)
		_, err := s.Requeue(3, "", at(lease-time.Second))
		wantIs(t, err, domain.ErrConflict)
		if events, err := s.Reap(3, at(lease-time.Second)); events != nil || err != nil {
			t.Fatalf("Reap under lease = %v, %v; want nothing", events, err)
		}
	})
	t.Run("renewed lease holds", func(t *testing.T) {
		t.Parallel()
		s := scanIn(t, domain.ScanStateRunning)
		events, err := s.RenewLease(s.Fence, at(3*lease), at(lease-time.Second))
		must(t, s, events, err)
		if events, err := s.Reap(3, at(2*lease)); events != nil || err != nil {
			t.Fatalf("Reap under renewed lease = %v, %v", events, err)
		}
	})
	t.Run("requeue discards the attempt", func(t *testing.T) {
		t.Parallel()
		s := scanIn(t, domain.ScanStateRunning)
		on(t, s)(s.ReportProgress(s.Fence, "engine:builtin", 40, t0))
		on(t, s)(s.RecordFinding(s.Fence, finding("f1", "fp1", domain.SeverityHigh), t0))
		on(t, s)(s.RecordLLMUsage("m", domain.LLMUsage{InputTokens: 5, Requests: 1}, t0))
		events, err := s.Reap(3, at(lease))
		must(t, s, events, err)
		if len(events) != 1 || events[0].EventName() != "ScanRequeued" {
			t.Fatalf("Reap = %v, want ScanRequeued", events)
		}
		if s.State != domain.ScanStateRequested || len(s.Findings) != 0 || s.Counts.Total() != 0 ||
			s.Progress != 0 || s.WorkerID != "" || s.HasFingerprint("fp1") {
			t.Fatalf("requeued scan kept attempt state: %+v", s)
		}
		if s.LLMUsage.InputTokens != 5 {
			t.Fatalf("LLM usage %+v lost on requeue", s.LLMUsage)
		}
	})
	t.Run("attempts exhausted", func(t *testing.T) {
		t.Parallel()
		s := scanIn(t, domain.ScanStateClaimed)
		_, err := s.Requeue(1, "", at(lease))
		wantIs(t, err, domain.ErrConflict)
		events, err := s.Reap(1, at(lease))
		must(t, s, events, err)
		if s.State != domain.ScanStateFailed || !strings.Contains(s.Reason, "1 of 1") {
			t.Fatalf("state %s reason %q; want failed after exhausted attempts", s.State, s.Reason)
		}
	})
	t.Run("cancel requested", func(t *testing.T) {
		t.Parallel()
		s := scanIn(t, domain.ScanStateRunning)
		on(t, s)(s.RequestCancel("bob", "", t0))
		_, err := s.Requeue(3, "", at(lease))
		wantIs(t, err, domain.ErrConflict)
		events, err := s.Reap(3, at(lease))
		must(t, s, events, err)
		if s.State != domain.ScanStateCancelled {
			t.Fatalf("state %s, want cancelled", s.State)
		}
	})
	t.Run("max attempts validated", func(t *testing.T) {
		t.Parallel()
		s := scanIn(t, domain.ScanStateClaimed)
		_, err := s.Requeue(0, "", at(lease))
		wantField(t, err, "max_attempts")
		_, err = s.Reap(0, at(lease))
		wantField(t, err, "max_attempts")
	})
	t.Run("nothing to reap", func(t *testing.T) {
		t.Parallel()
		for _, st := range []domain.ScanState{domain.ScanStateRequested, domain.ScanStateCompleted, domain.ScanStateFailed} {
			if events, err := scanIn(t, st).Reap(3, at(time.Hour)); events != nil || err != nil {
				t.Fatalf("Reap(%s) = %v, %v", st, events, err)
			}
		}
	})
}

func TestScanRunnerOnlyWhileRunning(t *testing.T) {
	t.Parallel()
	for _, st := range domain.ScanStates() {
		t.Run(string(st), func(t *testing.T) {
			t.Parallel()
			s := scanIn(t, st)
			_, errP := s.ReportProgress(s.Fence, "x", 1, at(time.Minute))
			_, errF := s.RecordFinding(s.Fence, finding("f1", "fp1", domain.SeverityLow), at(time.Minute))
			_, errU := s.RecordLLMUsage("m", domain.LLMUsage{InputTokens: 1}, at(time.Minute))
			_, errB := s.ExceedBudget("max_tokens", at(time.Minute))
			_, errR := s.RenewLease(s.Fence, at(time.Hour), at(time.Minute))
			running := st == domain.ScanStateRunning
			active := running || st == domain.ScanStateClaimed
			for name, c := range map[string]struct {
				err     error
				allowed bool
			}{"progress": {errP, running}, "finding": {errF, running}, "llm usage": {errU, active || st.Terminal() && s.Attempts > 0},
				"budget": {errB, active}, "renew": {errR, active}} {
				if c.allowed && c.err != nil {
					t.Errorf("%s in %s: %v", name, st, c.err)
				}
				if !c.allowed && !errors.Is(c.err, domain.ErrConflict) {
					t.Errorf("%s in %s: err = %v, want ErrConflict", name, st, c.err)
				}
			}
		})
	}
}

func TestScanFindings(t *testing.T) {
	t.Parallel()
	s := scanIn(t, domain.ScanStateRunning)
	on(t, s)(s.RecordFinding(s.Fence, finding("f1", "fp1", domain.SeverityHigh), t0))
	on(t, s)(s.RecordFinding(s.Fence, finding("f2", "fp2", domain.SeverityHigh), t0))
	on(t, s)(s.RecordFinding(s.Fence, finding("f3", "fp3", domain.SeverityInfo), t0))
	if want := (domain.SeverityCounts{High: 2, Info: 1}); s.Counts != want {
		t.Fatalf("counts %+v, want %+v", s.Counts, want)
	}
	if f, ok := s.Finding("f2"); !ok || f.Fingerprint != "fp2" {
		t.Fatalf("Finding(f2) = %+v, %v", f, ok)
	}
	_, err := s.RecordFinding(s.Fence, finding("f1", "fp9", domain.SeverityHigh), t0)
	wantIs(t, err, domain.ErrConflict)
	_, err = s.RecordFinding(s.Fence, finding("f9", "fp1", domain.SeverityHigh), t0)
	wantIs(t, err, domain.ErrConflict)
	other := finding("f9", "fp9", domain.SeverityHigh)
	other.Engine = "ai"
	_, err = s.RecordFinding(s.Fence, other, t0)
	wantField(t, err, "engine")
	bad := finding("f9", "fp9", domain.SeverityHigh)
	bad.File = "../etc/passwd"
	_, err = s.RecordFinding(s.Fence, bad, t0)
	wantField(t, err, "file")

	events, err := s.Complete(s.Fence, false, "", t0)
	must(t, s, events, err)
	if c := events[0].(domain.ScanCompleted); c.Counts != s.Counts || c.Partial {
		t.Fatalf("ScanCompleted = %+v", c)
	}
}

func TestScanBudget(t *testing.T) {
	t.Parallel()
	profile := domain.ThreatProfile{LLMBudget: domain.LLMBudget{MaxTokens: 100, MaxCostUSD: 5}}
	w := newWorld(t, &profile)
	s, _ := w.newScan(t, "scan1", nil)
	on(t, s)(s.Claim("w1", at(lease), t0))
	on(t, s)(s.Start(s.Fence, t0))

	events := on(t, s)(s.RecordLLMUsage("gpt", domain.LLMUsage{InputTokens: 40, OutputTokens: 20, CostUSD: 0.5, Requests: 1}, t0))
	if len(events) != 1 || s.BudgetExceeded {
		t.Fatalf("under budget: events %v exceeded %v", events, s.BudgetExceeded)
	}
	events = on(t, s)(s.RecordLLMUsage("gpt", domain.LLMUsage{InputTokens: 30, OutputTokens: 10, CostUSD: 0.5, Requests: 1}, t0))
	if len(events) != 2 || events[1].EventName() != "ScanBudgetExceeded" || !s.BudgetExceeded || s.BudgetLimit != "max_tokens" {
		t.Fatalf("at budget: events %v exceeded %v limit %q", events, s.BudgetExceeded, s.BudgetLimit)
	}
	events = on(t, s)(s.RecordLLMUsage("gpt", domain.LLMUsage{InputTokens: 1, Requests: 1}, t0))
	if len(events) != 1 {
		t.Fatalf("ScanBudgetExceeded recorded twice: %v", events)
	}
	if events, err := s.ExceedBudget("max_cost_usd", t0); events != nil || err != nil {
		t.Fatalf("ExceedBudget after exceeded = %v, %v; want no-op", events, err)
	}
	if want := (domain.LLMUsage{InputTokens: 71, OutputTokens: 30, CostUSD: 1, Requests: 3}); s.LLMUsage != want {
		t.Fatalf("usage %+v, want %+v", s.LLMUsage, want)
	}
	_, err := s.RecordLLMUsage("gpt", domain.LLMUsage{InputTokens: -1}, t0)
	wantField(t, err, "usage.input_tokens")

	on(t, s)(s.Complete(s.Fence, false, "", t0))
	if !s.Partial || !strings.Contains(s.Reason, "budget") {
		t.Fatalf("partial %v reason %q; a scan over budget completes partial", s.Partial, s.Reason)
	}
	// The proxy flushes batched usage after the scan may have ended: it is
	// still recorded (spent money is never dropped), without a budget event.
	events = on(t, s)(s.RecordLLMUsage("gpt", domain.LLMUsage{InputTokens: 1}, t0))
	if len(events) != 1 || s.LLMUsage.InputTokens != 72 {
		t.Fatalf("late usage: events %v usage %+v", events, s.LLMUsage)
	}
}

func TestNewScan(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	s, _ := w.newScan(t, "scan1", nil)
	if s.SnapshotID != "s1" || !reflect.DeepEqual(s.Engines, []string{"builtin"}) || s.Profile.Version != 0 ||
		s.State != domain.ScanStateRequested || s.RequestedBy != "alice" {
		t.Fatalf("scan = %+v", s)
	}

	req := func(mod func(*domain.ScanRequest)) error {
		r := domain.ScanRequest{ID: "scan2", RequestedBy: "alice"}
		mod(&r)
		_, err := domain.NewScan(w.project, w.repo, r, t0)
		return err
	}
	wantField(t, req(func(r *domain.ScanRequest) { r.ID = "" }), "id")
	wantField(t, req(func(r *domain.ScanRequest) { r.Engines = []string{} }), "engines")
	wantField(t, req(func(r *domain.ScanRequest) { r.Engines = []string{"builtin", "builtin"} }), "engines[1]")
	wantIs(t, req(func(r *domain.ScanRequest) { r.SnapshotID = "nope" }), domain.ErrNotFound)

	// A pending snapshot cannot be scanned; a repository without a captured
	// one cannot either.
	git := new(domain.Repository)
	on(t, git)(domain.NewRepository(w.project, "r2", "web", domain.Source{Kind: domain.SourceGit, URL: "https://example.com/a.git"}, domain.SourcePolicy{}, t0))
	on(t, git)(git.RequestSnapshot("s2", "main", t0))
	_, err := domain.NewScan(w.project, git, domain.ScanRequest{ID: "x", RequestedBy: "alice", SnapshotID: "s2"}, t0)
	wantIs(t, err, domain.ErrConflict)
	_, err = domain.NewScan(w.project, git, domain.ScanRequest{ID: "x", RequestedBy: "alice"}, t0)
	wantIs(t, err, domain.ErrConflict)

	// Archived projects take no scans; removed repositories are gone.
	archived := *w.project
	on(t, &archived)(archived.Archive(t0))
	_, err = domain.NewScan(&archived, w.repo, domain.ScanRequest{ID: "x", RequestedBy: "alice"}, t0)
	wantIs(t, err, domain.ErrConflict)
	removed := *w.repo
	on(t, &removed)(removed.Remove(t0))
	_, err = domain.NewScan(w.project, &removed, domain.ScanRequest{ID: "x", RequestedBy: "alice"}, t0)
	wantIs(t, err, domain.ErrNotFound)
	_, err = domain.NewScan(w.project, new(domain.Repository), domain.ScanRequest{ID: "x", RequestedBy: "alice"}, t0)
	wantIs(t, err, domain.ErrNotFound)

	// A zero scan does not exist.
	_, err = new(domain.Scan).Claim("w1", at(lease), t0)
	wantIs(t, err, domain.ErrNotFound)
}

func TestScanClaimValidation(t *testing.T) {
	t.Parallel()
	s := scanIn(t, domain.ScanStateRequested)
	_, err := s.Claim("", at(lease), t0)
	wantField(t, err, "worker_id")
	_, err = s.Claim("w1", t0, t0)
	wantField(t, err, "lease_until")
	s = scanIn(t, domain.ScanStateRunning)
	_, err = s.ReportProgress(s.Fence, "x", 101, t0)
	wantField(t, err, "progress")
	_, err = s.ReportProgress(s.Fence, strings.Repeat("p", domain.MaxPhaseLength+1), 1, t0)
	wantField(t, err, "phase")
	on(t, s)(s.LaunchRunner(s.Fence, "ecs", "arn:aws:ecs:task/1", t0))
	_, err = s.LaunchRunner(s.Fence, "ecs", "arn:aws:ecs:task/2", t0)
	wantIs(t, err, domain.ErrConflict)
}

func TestScanFoldEqualsIncrementalApply(t *testing.T) {
	t.Parallel()
	profile := domain.ThreatProfile{Engines: []string{"builtin", "ai"}, LLMBudget: domain.LLMBudget{MaxRequests: 2}}
	w := newWorld(t, &profile)
	s, events := w.newScan(t, "scan1", nil)
	add := func(evs []domain.Event, err error) {
		t.Helper()
		events = append(events, must(t, s, evs, err)...)
	}
	add(s.Claim("w1", at(lease), t0))
	add(s.LaunchRunner(s.Fence, "inprocess", "g1", t0))
	add(s.Start(s.Fence, at(time.Second)))
	add(s.RecordFinding(s.Fence, finding("f0", "fp0", domain.SeverityCritical), at(time.Second)))
	add(s.Requeue(3, "runner lost", at(lease)))
	add(s.Claim("w2", at(3*lease), at(2*lease)))
	add(s.RecordLLMUsage("m", domain.LLMUsage{InputTokens: 10, Requests: 1}, at(2*lease)))
	add(s.Start(s.Fence, at(2*lease)))
	add(s.RenewLease(s.Fence, at(4*lease), at(2*lease)))
	add(s.ReportProgress(s.Fence, "engine:builtin", 50, at(2*lease)))
	f := finding("f1", "fp1", domain.SeverityMedium)
	f.Engine = "ai"
	add(s.RecordFinding(s.Fence, f, at(2*lease)))
	add(s.RecordLLMUsage("m", domain.LLMUsage{OutputTokens: 10, CostUSD: 0.25, Requests: 1}, at(2*lease)))
	add(s.RequestCancel("bob", "", at(2*lease)))
	add(s.Complete(s.Fence, false, "", at(3*lease)))

	got := checkFold(t, events, domain.FoldScan)
	if got.Version != len(events) || got.State != domain.ScanStateCompleted || !got.Partial ||
		got.Attempts != 2 || len(got.Findings) != 1 || got.Counts.Medium != 1 || got.Counts.Critical != 0 {
		t.Fatalf("folded scan = %+v", got)
	}
	// Replay to a version shows the scan as it was then.
	then, err := domain.FoldScan(events[:5])
	if err != nil || then.State != domain.ScanStateRunning || len(then.Findings) != 1 || then.Version != 5 {
		t.Fatalf("replay at 5 = %+v, %v", then, err)
	}
}

func TestScanApplyRejectsForeignHistory(t *testing.T) {
	t.Parallel()
	s := new(domain.Scan)
	wantIs(t, s.Apply(domain.ScanStarted{Fence: 0}), domain.ErrInvalidHistory)
	wantIs(t, s.Apply(domain.ProjectCreated{}), domain.ErrInvalidHistory)
	wantIs(t, s.Apply(nil), domain.ErrInvalidHistory)
	s = scanIn(t, domain.ScanStateRequested)
	wantIs(t, s.Apply(domain.ScanRequested{ScanID: "again"}), domain.ErrInvalidHistory)
	wantIs(t, s.Apply(domain.ScanClaimed{Fence: 5}), domain.ErrInvalidHistory)
	wantIs(t, s.Apply(domain.IssueFixed{}), domain.ErrInvalidHistory)
}
