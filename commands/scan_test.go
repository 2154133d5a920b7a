package commands_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

func TestScanLifecycle(t *testing.T) {
	t.Parallel()
	onStores(t, func(t *testing.T, open func(*testing.T) eventstore.Store) {
		e := newEnv(t, open(t))
		repo := e.archiveRepo(e.project())
		snap := e.snapshot(repo)

		req, err := e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: repo})
		if err != nil {
			t.Fatal(err)
		}
		s := req.Scan
		if s.State != domain.ScanStateRequested || s.SnapshotID != snap || s.RequestedBy != alice || s.Engines[0] != domain.EngineBuiltin || req.Version != 1 {
			t.Fatalf("requested scan %+v", s)
		}
		positions := []eventstore.Position{req.Position}
		step := func(name string) func(commands.ScanResult, error) *domain.Scan {
			return func(res commands.ScanResult, err error) *domain.Scan {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !positions[len(positions)-1].Less(res.Position) {
					t.Fatalf("%s: position %v does not follow %v", name, res.Position, positions[len(positions)-1])
				}
				positions = append(positions, res.Position)
				return res.Scan
			}
		}

		claim, err := e.h.ClaimScan.Handle(e.ctx, commands.ClaimScan{ScanID: s.ID, WorkerID: "worker-1"})
		step("claim")(claim.ScanResult, err)
		if claim.Fence != 1 || !claim.LeaseUntil.Equal(t0.Add(time.Minute)) || claim.Scan.State != domain.ScanStateClaimed {
			t.Fatalf("claim: fence %d lease %v state %s", claim.Fence, claim.LeaseUntil, claim.Scan.State)
		}
		fence := claim.Fence
		step("launch")(e.h.LaunchRunner.Handle(e.ctx, commands.LaunchRunner{ScanID: s.ID, Fence: fence, Launcher: "inprocess", JobID: "goroutine-1"}))
		if got := step("start")(e.h.StartScan.Handle(e.ctx, commands.StartScan{ScanID: s.ID, Fence: fence})); got.State != domain.ScanStateRunning {
			t.Fatalf("state %s after start", got.State)
		}
		e.clock.Advance(30 * time.Second)
		renew, err := e.h.RenewLease.Handle(e.ctx, commands.RenewLease{ScanID: s.ID, Fence: fence})
		step("renew")(renew.ScanResult, err)
		if !renew.LeaseUntil.Equal(t0.Add(90 * time.Second)) {
			t.Fatalf("renewed lease until %v", renew.LeaseUntil)
		}
		if got := step("progress")(e.h.ProgressScan.Handle(e.ctx, commands.ProgressScan{ScanID: s.ID, Fence: fence, Phase: "builtin", Progress: 40})); got.Progress != 40 || got.Phase != "builtin" {
			t.Fatalf("progress %d %q", got.Progress, got.Phase)
		}
		got := step("findings")(e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: s.ID, Fence: fence,
			Findings: []domain.Finding{finding(1), finding(2), finding(3)}}))
		if len(got.Findings) != 3 || got.Counts.High != 3 || got.Findings[0].ID == "" {
			t.Fatalf("findings %+v counts %+v", got.Findings, got.Counts)
		}
		done := step("complete")(e.h.CompleteScan.Handle(e.ctx, commands.CompleteScan{ScanID: s.ID, Fence: fence}))
		if done.State != domain.ScanStateCompleted || done.Partial || done.Counts.High != 3 || !done.FinishedAt.Equal(t0.Add(30*time.Second)) {
			t.Fatalf("completed scan %+v", done)
		}

		recs := e.events(eventstore.NewStreamID("scan", s.ID))
		want := "ScanRequested,ScanClaimed,RunnerLaunched,ScanStarted,ScanLeaseRenewed,ScanProgressed,FindingRecorded,FindingRecorded,FindingRecorded,ScanCompleted"
		if got := types(recs); got != want {
			t.Fatalf("events\n %s\nwant\n %s", got, want)
		}

		// Audit replay folds a prefix with the same code.
		asOf, v, err := e.h.Streams.Scans.LoadUntil(t.Context(), s.ID, func(r eventstore.RecordedEvent) bool { return r.Version <= 4 })
		if err != nil || v != 4 || asOf.State != domain.ScanStateRunning || len(asOf.Findings) != 0 {
			t.Fatalf("replay at 4: state %v findings %d version %d err %v", asOf.State, len(asOf.Findings), v, err)
		}
		full, v, err := e.h.Streams.Scans.Load(t.Context(), s.ID)
		if err != nil || v != int64(len(recs)) || full.State != domain.ScanStateCompleted || len(full.Findings) != 3 {
			t.Fatalf("reload: %v %d %v", full.State, v, err)
		}

		_, err = e.h.CancelScan.Handle(e.ctx, commands.CancelScan{ScanID: s.ID})
		var te *domain.TransitionError
		if !errors.As(err, &te) || te.From != domain.ScanStateCompleted || te.To != domain.ScanStateCancelled {
			t.Fatalf("cancel a completed scan: %v, want TransitionError completed -> cancelled", err)
		}
		wantIs(t, err, domain.ErrConflict)
	})
}

func TestRecordFindingsIsOneAppend(t *testing.T) {
	t.Parallel()
	onStores(t, func(t *testing.T, open func(*testing.T) eventstore.Store) {
		e := newEnv(t, open(t))
		scan := e.scan()
		fence := e.running(scan)
		stream := eventstore.NewStreamID("scan", scan)
		before := int64(len(e.events(stream)))

		batch := []domain.Finding{finding(1), finding(2), finding(3), finding(4), finding(5)}
		res, err := e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: scan, Fence: fence, Findings: batch})
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstVersion != before+1 || res.Version != before+5 || res.Appended != 5 {
			t.Fatalf("result %+v, want versions %d..%d", res.Result, before+1, before+5)
		}
		recs := e.events(stream)[before:]
		if len(recs) != 5 {
			t.Fatalf("%d events appended, want 5", len(recs))
		}
		for i, r := range recs {
			if r.Type != "FindingRecorded" || r.Version != before+1+int64(i) {
				t.Fatalf("event %d: %s version %d", i, r.Type, r.Version)
			}
			if r.Metadata != recs[0].Metadata {
				t.Fatalf("event %d metadata %+v differs from %+v: not one command", i, r.Metadata, recs[0].Metadata)
			}
			if i > 0 && !recs[i-1].Position.Less(r.Position) {
				t.Fatalf("positions out of order")
			}
		}
		if recs[4].Position != res.Position {
			t.Fatalf("result position %v, last event's %v", res.Position, recs[4].Position)
		}
		// One append: nothing else of the store lies between the batch's events.
		all := readAfter(t, e.store, recs[0].Position, 4)
		for i := range 4 {
			if all[i].ID != recs[i+1].ID {
				t.Fatalf("global order after the first finding: %s, want %s", all[i].ID, recs[i+1].ID)
			}
		}

		// All or nothing: one bad finding or a duplicate in the batch writes nothing.
		bad := finding(7)
		bad.Severity = "urgent"
		_, err = e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: scan, Fence: fence, Findings: []domain.Finding{finding(6), finding(8), bad}})
		wantField(t, err, "findings[2].severity")
		_, err = e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: scan, Fence: fence, Findings: []domain.Finding{finding(6), finding(6)}})
		wantIs(t, err, domain.ErrConflict)
		_, err = e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: scan, Fence: fence, Findings: []domain.Finding{finding(1)}})
		wantIs(t, err, domain.ErrConflict)
		if n := int64(len(e.events(stream))); n != before+5 {
			t.Fatalf("refused batches wrote: %d events, want %d", n, before+5)
		}
	})
}

func TestScanValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	project := e.project()
	repo := e.archiveRepo(project)
	empty := e.archiveRepo(project)
	snap := e.snapshot(repo)
	requested := must[commands.ScanResult](t)(e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: repo})).Scan.ID
	running := must[commands.ScanResult](t)(e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: repo, SnapshotID: snap, Engines: []string{"builtin", "ai"}})).Scan.ID
	fence := e.running(running)

	tests := []struct {
		name  string
		run   func() error
		want  error
		field string
	}{
		{"request: unknown repository", func() error {
			_, err := e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: "nope"})
			return err
		}, domain.ErrNotFound, ""},
		{"request: bad engines before unknown repository", func() error {
			_, err := e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: "nope", Engines: []string{"Bad Engine"}})
			return err
		}, nil, "engines[0]"},
		{"request: no captured snapshot", func() error {
			_, err := e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: empty})
			return err
		}, domain.ErrConflict, ""},
		{"request: unknown snapshot", func() error {
			_, err := e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: repo, SnapshotID: "nope"})
			return err
		}, domain.ErrNotFound, ""},
		{"request: taken id", func() error {
			_, err := e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: repo, ScanID: requested})
			return err
		}, domain.ErrConflict, ""},
		{"claim: unknown scan", func() error {
			_, err := e.h.ClaimScan.Handle(e.ctx, commands.ClaimScan{ScanID: "nope", WorkerID: "w"})
			return err
		}, domain.ErrNotFound, ""},
		{"claim: no worker", func() error {
			_, err := e.h.ClaimScan.Handle(e.ctx, commands.ClaimScan{ScanID: requested})
			return err
		}, nil, "worker_id"},
		{"claim: running scan", func() error {
			_, err := e.h.ClaimScan.Handle(e.ctx, commands.ClaimScan{ScanID: running, WorkerID: "w"})
			return err
		}, domain.ErrIllegalTransition, ""},
		{"start: not claimed", func() error {
			_, err := e.h.StartScan.Handle(e.ctx, commands.StartScan{ScanID: requested, Fence: 1})
			return err
		}, domain.ErrIllegalTransition, ""},
		{"renew: stale fence", func() error {
			_, err := e.h.RenewLease.Handle(e.ctx, commands.RenewLease{ScanID: running, Fence: fence + 1})
			return err
		}, domain.ErrStaleFence, ""},
		{"launch: runner already recorded", func() error {
			_, err := e.h.LaunchRunner.Handle(e.ctx, commands.LaunchRunner{ScanID: running, Fence: fence, Launcher: "process", JobID: "42"})
			return err
		}, domain.ErrConflict, ""},
		{"launch: bad launcher", func() error {
			_, err := e.h.LaunchRunner.Handle(e.ctx, commands.LaunchRunner{ScanID: running, Fence: fence, Launcher: "Docker!", JobID: "42"})
			return err
		}, nil, "launcher"},
		{"progress: out of range", func() error {
			_, err := e.h.ProgressScan.Handle(e.ctx, commands.ProgressScan{ScanID: running, Fence: fence, Progress: 101})
			return err
		}, nil, "progress"},
		{"progress: control-plane fence", func() error {
			_, err := e.h.ProgressScan.Handle(e.ctx, commands.ProgressScan{ScanID: running, Fence: domain.NoFence, Progress: 1})
			return err
		}, domain.ErrStaleFence, ""},
		{"findings: empty batch", func() error {
			_, err := e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: running, Fence: fence})
			return err
		}, nil, "findings"},
		{"findings: batch too large", func() error {
			_, err := e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: running, Fence: fence, Findings: make([]domain.Finding, commands.MaxFindingsPerBatch+1)})
			return err
		}, nil, "findings"},
		{"findings: engine not in scan", func() error {
			f := finding(1)
			f.Engine = "sarif"
			_, err := e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: running, Fence: fence, Findings: []domain.Finding{f}})
			return err
		}, nil, "findings[0].engine"},
		{"findings: not running", func() error {
			_, err := e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: requested, Fence: 1, Findings: []domain.Finding{finding(1)}})
			return err
		}, domain.ErrConflict, ""},
		{"llm usage: negative", func() error {
			_, err := e.h.RecordLLMUsage.Handle(e.ctx, commands.RecordLLMUsage{ScanID: running, Model: "m", Usage: domain.LLMUsage{InputTokens: -1}})
			return err
		}, nil, "usage.input_tokens"},
		{"llm usage: requested scan", func() error {
			_, err := e.h.RecordLLMUsage.Handle(e.ctx, commands.RecordLLMUsage{ScanID: requested, Model: "m", Usage: domain.LLMUsage{Requests: 1}})
			return err
		}, domain.ErrConflict, ""},
		{"exceed budget: bad limit", func() error {
			_, err := e.h.ExceedBudget.Handle(e.ctx, commands.ExceedBudget{ScanID: running, Limit: "max_patience"})
			return err
		}, nil, "limit"},
		{"cancel: long reason", func() error {
			_, err := e.h.RequestCancel.Handle(e.ctx, commands.RequestCancel{ScanID: running, Reason: strings.Repeat("r", domain.MaxReasonLength+1)})
			return err
		}, nil, "reason"},
		{"complete: stale fence", func() error {
			_, err := e.h.CompleteScan.Handle(e.ctx, commands.CompleteScan{ScanID: running, Fence: fence + 7})
			return err
		}, domain.ErrStaleFence, ""},
		{"complete: requested scan", func() error {
			_, err := e.h.CompleteScan.Handle(e.ctx, commands.CompleteScan{ScanID: requested, Fence: 1})
			return err
		}, domain.ErrIllegalTransition, ""},
		{"time out: requested scan", func() error {
			_, err := e.h.TimeOutScan.Handle(e.ctx, commands.TimeOutScan{ScanID: requested})
			return err
		}, domain.ErrIllegalTransition, ""},
		{"requeue: lease holds", func() error {
			_, err := e.h.RequeueScan.Handle(e.ctx, commands.RequeueScan{ScanID: running})
			return err
		}, domain.ErrConflict, ""},
		{"bad scan id", func() error {
			_, err := e.h.StartScan.Handle(e.ctx, commands.StartScan{ScanID: "../x", Fence: 1})
			return err
		}, nil, "scan_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if tt.field != "" {
				wantField(t, err, tt.field)
				return
			}
			wantIs(t, err, tt.want)
		})
	}

	// A project archived after the repository was added takes no new scans.
	must[commands.ProjectResult](t)(e.h.ArchiveProject.Handle(e.ctx, commands.ArchiveProject{ProjectID: project}))
	_, err := e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: repo})
	wantIs(t, err, domain.ErrConflict)
}

func TestCancelPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))

	// A requested scan is cancelled at once.
	requested := e.scan()
	res, err := e.h.RequestCancel.Handle(e.ctx, commands.RequestCancel{ScanID: requested, Reason: "wrong snapshot"})
	if err != nil || res.Scan.State != domain.ScanStateCancelled || res.Scan.Reason != "wrong snapshot" {
		t.Fatalf("cancel requested scan: %+v, %v", res.Scan, err)
	}

	// A running scan is asked to stop; its runner records the cancellation.
	running := e.scan()
	fence := e.running(running)
	res, err = e.h.RequestCancel.Handle(e.ctx, commands.RequestCancel{ScanID: running})
	if err != nil || res.Scan.State != domain.ScanStateRunning || !res.Scan.CancelRequested || res.Scan.CancelRequestedBy != alice || res.Appended != 1 {
		t.Fatalf("cancel running scan: %+v, %v", res.Scan, err)
	}
	again, err := e.h.RequestCancel.Handle(e.ctx, commands.RequestCancel{ScanID: running})
	if err != nil || again.Appended != 0 {
		t.Fatalf("second cancel request: %+v, %v; want an idempotent no-op", again.Result, err)
	}
	_, err = e.h.CancelScan.Handle(e.ctx, commands.CancelScan{ScanID: running, Fence: fence + 1})
	wantIs(t, err, domain.ErrStaleFence)
	res, err = e.h.CancelScan.Handle(e.ctx, commands.CancelScan{ScanID: running, Fence: fence})
	if err != nil || res.Scan.State != domain.ScanStateCancelled || !strings.Contains(res.Scan.Reason, alice) {
		t.Fatalf("runner cancel: %+v, %v", res.Scan, err)
	}
	if got := types(e.events(res.Stream)); !strings.HasSuffix(got, "ScanCancelRequested,ScanCancelled") {
		t.Fatalf("events %s", got)
	}
	_, err = e.h.RequestCancel.Handle(e.ctx, commands.RequestCancel{ScanID: running})
	wantIs(t, err, domain.ErrIllegalTransition)

	// The control plane fails or times out scans without a fence.
	failed := e.scan()
	res, err = e.h.FailScan.Handle(e.ctx, commands.FailScan{ScanID: failed, Fence: domain.NoFence, Reason: "snapshot blob missing"})
	if err != nil || res.Scan.State != domain.ScanStateFailed {
		t.Fatalf("fail: %+v, %v", res.Scan, err)
	}
	timedOut := e.scan()
	e.running(timedOut)
	res, err = e.h.TimeOutScan.Handle(e.ctx, commands.TimeOutScan{ScanID: timedOut, Reason: "past 30m"})
	if err != nil || res.Scan.State != domain.ScanStateTimedOut {
		t.Fatalf("time out: %+v, %v", res.Scan, err)
	}
}

func TestRequeueAndReap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t)) // lease 1m, 2 attempts
	scan := e.scan()
	first := e.running(scan)
	must[commands.ScanResult](t)(e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: scan, Fence: first, Findings: []domain.Finding{finding(1)}}))

	reap, err := e.h.ReapScan.Handle(e.ctx, commands.ReapScan{ScanID: scan})
	if err != nil || reap.Action != commands.ReapNone || reap.Appended != 0 {
		t.Fatalf("reap with a live lease: %+v, %v", reap, err)
	}
	e.clock.Advance(2 * time.Minute)
	reap, err = e.h.ReapScan.Handle(e.ctx, commands.ReapScan{ScanID: scan})
	if err != nil || reap.Action != commands.ReapRequeued || reap.Scan.State != domain.ScanStateRequested || len(reap.Scan.Findings) != 0 {
		t.Fatalf("reap after expiry: %+v, %v", reap, err)
	}

	// The lost runner's fence is stale; the second attempt gets fence 2.
	claim := must[commands.LeaseResult](t)(e.h.ClaimScan.Handle(e.ctx, commands.ClaimScan{ScanID: scan, WorkerID: "worker-2"}))
	if claim.Fence != 2 || claim.Scan.Attempts != 2 {
		t.Fatalf("second claim: fence %d attempts %d", claim.Fence, claim.Scan.Attempts)
	}
	_, err = e.h.StartScan.Handle(e.ctx, commands.StartScan{ScanID: scan, Fence: first})
	wantIs(t, err, domain.ErrStaleFence)

	// Attempts used up: the reaper fails the scan, RequeueScan refuses.
	e.clock.Advance(2 * time.Minute)
	_, err = e.h.RequeueScan.Handle(e.ctx, commands.RequeueScan{ScanID: scan})
	wantIs(t, err, domain.ErrConflict)
	reap, err = e.h.ReapScan.Handle(e.ctx, commands.ReapScan{ScanID: scan})
	if err != nil || reap.Action != commands.ReapFailed || reap.Scan.State != domain.ScanStateFailed {
		t.Fatalf("reap with attempts used up: %+v, %v", reap, err)
	}

	// RequeueScan on its own, and the reaper obeying a pending cancel.
	other := e.scan()
	e.running(other)
	e.clock.Advance(2 * time.Minute)
	rq, err := e.h.RequeueScan.Handle(e.ctx, commands.RequeueScan{ScanID: other, Reason: "worker node drained"})
	if err != nil || rq.Scan.State != domain.ScanStateRequested {
		t.Fatalf("requeue: %+v, %v", rq.Scan, err)
	}
	e.running(other)
	must[commands.ScanResult](t)(e.h.RequestCancel.Handle(e.ctx, commands.RequestCancel{ScanID: other}))
	e.clock.Advance(2 * time.Minute)
	reap, err = e.h.ReapScan.Handle(e.ctx, commands.ReapScan{ScanID: other})
	if err != nil || reap.Action != commands.ReapCancelled || reap.Scan.State != domain.ScanStateCancelled {
		t.Fatalf("reap a cancel-requested scan: %+v, %v", reap, err)
	}
	if got := types(e.events(reap.Stream)); !strings.Contains(got, "ScanRequeued,ScanClaimed") {
		t.Fatalf("events %s", got)
	}
}

func TestLLMUsageAndBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	repo := e.archiveRepo(e.project())
	e.snapshot(repo)
	must[commands.ThreatProfileResult](t)(e.h.DefineThreatProfile.Handle(e.ctx, commands.DefineThreatProfile{RepositoryID: repo,
		Profile: domain.ThreatProfile{Engines: []string{"builtin", "ai"}, LLMBudget: domain.LLMBudget{MaxRequests: 2}}}))
	scan := must[commands.ScanResult](t)(e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: repo})).Scan.ID
	fence := e.running(scan)

	one := domain.LLMUsage{InputTokens: 100, OutputTokens: 20, CostUSD: 0.01, Requests: 1}
	res, err := e.h.RecordLLMUsage.Handle(e.ctx, commands.RecordLLMUsage{ScanID: scan, Model: "gpt-x", Usage: one})
	if err != nil || res.Scan.BudgetExceeded || res.Appended != 1 {
		t.Fatalf("first usage: %+v, %v", res.Result, err)
	}
	res, err = e.h.RecordLLMUsage.Handle(e.ctx, commands.RecordLLMUsage{ScanID: scan, Model: "gpt-x", Usage: one})
	if err != nil || !res.Scan.BudgetExceeded || res.Scan.BudgetLimit != "max_requests" || res.Appended != 2 || res.Scan.LLMUsage.Requests != 2 {
		t.Fatalf("second usage: %+v %+v, %v", res.Result, res.Scan.LLMUsage, err)
	}
	ex, err := e.h.ExceedBudget.Handle(e.ctx, commands.ExceedBudget{ScanID: scan, Limit: "max_tokens"})
	if err != nil || ex.Appended != 0 {
		t.Fatalf("exceed again: %+v, %v; want a no-op", ex.Result, err)
	}
	done := must[commands.ScanResult](t)(e.h.CompleteScan.Handle(e.ctx, commands.CompleteScan{ScanID: scan, Fence: fence}))
	if !done.Scan.Partial || !strings.Contains(done.Scan.Reason, "budget") {
		t.Fatalf("completed scan partial=%v reason %q", done.Scan.Partial, done.Scan.Reason)
	}
}
