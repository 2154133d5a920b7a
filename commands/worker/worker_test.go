package worker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	blobfs "github.com/vega-sec/vega/adapters/blob/fs"
	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/adapters/launcher/inprocess"
	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/adapters/nats/bustest"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/runner"
	"github.com/vega-sec/vega/commands/worker"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/internal/testkit"
)

// Fake secrets, built so that no real key appears in the source.
var (
	fakeAWSKeyID  = "AKIA" + "Q7RZ4MWX2KJB6TPN"
	fakeAWSSecret = "rT9vKq2Lm" + "X8bWz4NcP1eYh7GfJ3sDa6UoQ0iZkVw"
)

// gateEngine wraps another engine: while its gate is shut it blocks (until
// ctx ends) instead of scanning, and it counts the scans running at once.
type gateEngine struct {
	name    string
	inner   engine.Engine
	open    atomic.Bool
	running atomic.Int64
	peak    atomic.Int64
	started chan string // receives the root of each scan that starts
}

func (g *gateEngine) Name() string { return g.name }

func (g *gateEngine) Scan(ctx context.Context, t engine.Target, emit func(engine.Finding) error) error {
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	select {
	case g.started <- t.Root:
	default:
	}
	for !g.open.Load() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if g.inner == nil {
		return nil
	}
	return g.inner.Scan(ctx, t, func(f engine.Finding) error {
		f.Engine = g.name
		return emit(f)
	})
}

// countingLauncher counts launches of an inner launcher.
type countingLauncher struct {
	*inprocess.Launcher
	launches atomic.Int64
}

func (c *countingLauncher) Launch(ctx context.Context, job worker.Job) (string, error) {
	c.launches.Add(1)
	return c.Launcher.Launch(ctx, job)
}

type env struct {
	ctx     context.Context
	store   eventstore.Store
	h       *commands.Handlers
	nc      *nats.Conn
	js      jetstream.JetStream
	bus     vnats.Config
	blobs   *blobfs.Store
	repoID  string
	gate    *gateEngine
	builtin engine.Engine
}

type opts struct {
	lease       time.Duration
	concurrency int
	scanTimeout time.Duration
}

func setup(t *testing.T, o opts) *env {
	t.Helper()
	ctx := commands.WithRequest(t.Context(), commands.Request{Actor: "alice"})
	store := testkit.SQLiteStore(t)
	if o.lease == 0 {
		o.lease = time.Minute
	}
	h := testkit.Handlers(t, store, commands.Options{LeaseDuration: o.lease, MaxScanAttempts: 3, SourcePolicy: domain.SourcePolicy{AllowHTTP: true}})
	srv := bustest.StartEmbedded(t, vnats.Config{})
	nc, err := srv.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bus := bustest.Config(t)
	js := bustest.EnsureStream(t, nc, bus)
	relay, err := vnats.NewRelay(store, nc, bus, vnats.RelayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relayDone := make(chan struct{})
	go func() { _ = relay.Run(rctx); close(relayDone) }()
	t.Cleanup(func() { stopRelay(); <-relayDone })

	files := map[string]string{
		"app/settings.py": "AWS_ACCESS_KEY_ID = \"" + fakeAWSKeyID + "\"\naws_secret_access_key = \"" + fakeAWSSecret + "\"\n",
		"app/db.py":       "cur.execute(\"SELECT * FROM t WHERE id = %s\" % tid)\n",
		"README.md":       "# demo\n",
	}
	blobs, repoID := testkit.ArchiveRepository(t, ctx, h, files)
	b, err := builtin.New(testkit.Fingerprinter(t), builtin.WithWorkers(1))
	if err != nil {
		t.Fatal(err)
	}
	return &env{ctx: ctx, store: store, h: h, nc: nc, js: js, bus: bus, blobs: blobs, repoID: repoID, builtin: b,
		gate: &gateEngine{name: "gated", inner: b, started: make(chan string, 16)}}
}

func (e *env) runnerDeps(t *testing.T, timeout time.Duration) runner.Deps {
	return runner.Deps{Handlers: e.h, Blobs: e.blobs, TempDir: t.TempDir(), ScanTimeout: timeout,
		Engines: map[string]engine.Engine{builtin.Name: e.builtin, e.gate.name: e.gate},
		Bus:     &runner.Bus{JetStream: e.js, Stream: e.bus.StreamName, SubjectPrefix: e.bus.SubjectPrefix}}
}

// startWorker runs a worker with an in-process launcher until the test
// ends.
func (e *env) startWorker(t *testing.T, o opts, launch worker.Launcher) *worker.Worker {
	t.Helper()
	return e.startWorkerWith(t, o, launch, nil)
}

func (e *env) startWorkerWith(t *testing.T, o opts, launch worker.Launcher, snaps worker.GitCapturer) *worker.Worker {
	t.Helper()
	w, err := worker.New(worker.Config{Concurrency: o.concurrency, ScanTimeout: o.scanTimeout, TimeoutGrace: 500 * time.Millisecond,
		ReapInterval: 100 * time.Millisecond, ShutdownTimeout: 2 * time.Second, Stream: e.bus.StreamName,
		SubjectPrefix: e.bus.SubjectPrefix, DeadLetters: &bustest.MemDeadLetters{}},
		worker.Deps{Handlers: e.h, Store: e.store, JetStream: e.js, Launcher: launch, Snapshots: snaps})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(e.ctx))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker Run: %v", err)
		}
	})
	return w
}

func (e *env) request(t *testing.T, engines ...string) string {
	t.Helper()
	s, err := e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: e.repoID, Engines: engines})
	if err != nil {
		t.Fatal(err)
	}
	return s.Scan.ID
}

func (e *env) scan(t *testing.T, id string) *domain.Scan {
	t.Helper()
	s, _, err := e.h.Streams.Scans.Load(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) waitState(t *testing.T, id string, states ...domain.ScanState) *domain.Scan {
	t.Helper()
	var s *domain.Scan
	bustest.Eventually(t, fmt.Sprintf("scan %s in %v", id, states), func() bool {
		s = e.scan(t, id)
		return slices.Contains(states, s.State)
	})
	return s
}

func (e *env) events(t *testing.T, id string) []eventstore.RecordedEvent {
	t.Helper()
	recs, err := e.store.ReadStream(e.ctx, e.h.Streams.Scans.StreamID(id), 1, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func types(recs []eventstore.RecordedEvent) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Type)
	}
	return out
}

func count(recs []eventstore.RecordedEvent, typ string) int {
	n := 0
	for _, r := range recs {
		if r.Type == typ {
			n++
		}
	}
	return n
}

func TestScanEndToEnd(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{})
	launcher := &countingLauncher{Launcher: inprocess.New(inprocess.Runner(e.runnerDeps(t, 0)), nil)}
	e.startWorker(t, opts{}, launcher)
	id := e.request(t, builtin.Name)
	s := e.waitState(t, id, domain.ScanStateCompleted, domain.ScanStateFailed)
	if s.State != domain.ScanStateCompleted || s.Partial {
		t.Fatalf("state %s partial %v reason %q", s.State, s.Partial, s.Reason)
	}
	var secrets, injections int
	for _, f := range s.Findings {
		if strings.Contains(f.Snippet, fakeAWSSecret) || strings.Contains(f.Snippet, fakeAWSKeyID) {
			t.Errorf("finding %s carries a secret", f.RuleID)
		}
		switch f.File {
		case "app/settings.py":
			secrets++
		case "app/db.py":
			injections++
		}
	}
	if secrets == 0 || injections == 0 {
		t.Errorf("findings: %d in settings.py, %d in db.py", secrets, injections)
	}
	recs := e.events(t, id)
	ty := types(recs)
	t.Logf("events: %v", ty)
	for _, want := range []string{"ScanClaimed", "RunnerLaunched", "ScanStarted", "ScanProgressed", "FindingRecorded", "ScanCompleted"} {
		if !slices.Contains(ty, want) {
			t.Errorf("no %s in %v", want, ty)
		}
	}
	if s.Runner.Launcher != inprocess.Name || s.Runner.JobID == "" {
		t.Errorf("runner %+v", s.Runner)
	}
	if n := eventstore.VerifyChain(recs); n != 0 {
		t.Errorf("hash chain broken at version %d", n)
	}
	if got := launcher.launches.Load(); got != 1 {
		t.Errorf("launches = %d", got)
	}
}

func TestRedeliveryAndSecondWorkerStartNoSecondRunner(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{})
	deps := e.runnerDeps(t, 0)
	l1 := &countingLauncher{Launcher: inprocess.New(inprocess.Runner(deps), nil)}
	l2 := &countingLauncher{Launcher: inprocess.New(inprocess.Runner(deps), nil)}
	e.startWorker(t, opts{concurrency: 4}, l1)
	e.startWorker(t, opts{concurrency: 4}, l2)
	var ids []string
	for range 4 {
		ids = append(ids, e.request(t, builtin.Name))
	}
	for _, id := range ids {
		e.waitState(t, id, domain.ScanStateCompleted)
	}
	// Redeliver every ScanRequested (as JetStream would after a lost ack).
	for _, id := range ids {
		rec := e.events(t, id)[0]
		msg := nats.NewMsg(vnats.Subject(e.bus.SubjectPrefix, rec.StreamID, rec.Type))
		msg.Data, _ = jsonEnvelope(rec)
		msg.Header.Set(vnats.HeaderMsgID, rec.ID+".again")
		if _, err := e.js.PublishMsg(e.ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	// Both consumers have handled the copies once no message is pending.
	bustest.Eventually(t, "redeliveries handled", func() bool {
		c, err := e.js.Consumer(e.ctx, e.bus.StreamName, worker.ConsumerDispatch)
		if err != nil {
			return false
		}
		info, err := c.Info(e.ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	for _, id := range ids {
		recs := e.events(t, id)
		if n := count(recs, "ScanClaimed"); n != 1 {
			t.Errorf("scan %s claimed %d times: %v", id, n, types(recs))
		}
		if n := count(recs, "ScanStarted"); n != 1 {
			t.Errorf("scan %s started %d times", id, n)
		}
	}
	if got := l1.launches.Load() + l2.launches.Load(); got != int64(len(ids)) {
		t.Errorf("launches = %d, want %d", got, len(ids))
	}
}

func TestCancelWhileRunning(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{})
	e.startWorker(t, opts{}, inprocess.New(inprocess.Runner(e.runnerDeps(t, 0)), nil))
	id := e.request(t, e.gate.name)
	<-e.gate.started
	e.waitState(t, id, domain.ScanStateRunning)
	start := time.Now()
	if _, err := e.h.RequestCancel.Handle(e.ctx, commands.RequestCancel{ScanID: id, Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}
	var s *domain.Scan
	for {
		s = e.scan(t, id)
		if s.State.Terminal() || time.Since(start) > 5*time.Second {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	if s.State != domain.ScanStateCancelled {
		t.Fatalf("state %s after %s", s.State, took)
	}
	if took > 2*time.Second {
		t.Errorf("cancelled after %s, want within 2s", took)
	}
	recs := e.events(t, id)
	if last := recs[len(recs)-1]; last.Type != "ScanCancelled" || !strings.Contains(s.Reason, "changed my mind") {
		t.Errorf("last event %s, reason %q", last.Type, s.Reason)
	}
	t.Logf("cancel request to ScanCancelled: %s", took)
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{})
	o := opts{scanTimeout: 400 * time.Millisecond}
	e.startWorker(t, o, inprocess.New(inprocess.Runner(e.runnerDeps(t, o.scanTimeout)), nil))
	id := e.request(t, e.gate.name)
	s := e.waitState(t, id, domain.ScanStateTimedOut, domain.ScanStateCompleted, domain.ScanStateFailed)
	if s.State != domain.ScanStateTimedOut {
		t.Fatalf("state %s reason %q", s.State, s.Reason)
	}
	// The runner recorded it, with its fence.
	recs := e.events(t, id)
	ev, err := commands.DecodeEvent(mustRegistry(t), recs[len(recs)-1])
	if err != nil {
		t.Fatal(err)
	}
	if to, ok := ev.(*domain.ScanTimedOut); !ok || to.Fence != 1 {
		t.Errorf("last event %#v", ev)
	}
}

func TestReaperTimesOutWhenTheRunnerIsGone(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{lease: time.Hour})
	o := opts{scanTimeout: 300 * time.Millisecond}
	// A launcher whose runners never run: the scan stays claimed.
	e.startWorker(t, o, inprocess.New(func(ctx context.Context, _ worker.Job) error { <-ctx.Done(); return nil }, nil))
	id := e.request(t, builtin.Name)
	s := e.waitState(t, id, domain.ScanStateTimedOut, domain.ScanStateFailed)
	if s.State != domain.ScanStateTimedOut || !strings.Contains(s.Reason, "runner did not end") {
		t.Fatalf("state %s reason %q", s.State, s.Reason)
	}
}

func TestKilledRunnerIsRequeuedAndRetried(t *testing.T) {
	t.Parallel()
	// A lease long enough that a loaded CI machine does not also lose the
	// second attempt's renewals; the test still tolerates a third attempt.
	e := setup(t, opts{lease: 3 * time.Second})
	launcher := &countingLauncher{Launcher: inprocess.New(inprocess.Runner(e.runnerDeps(t, 0)), nil)}
	e.startWorker(t, opts{}, launcher)
	id := e.request(t, e.gate.name)
	<-e.gate.started
	s := e.waitState(t, id, domain.ScanStateRunning)
	bustest.Eventually(t, "runner recorded", func() bool { s = e.scan(t, id); return s.Runner.JobID != "" })
	// Kill the first runner: it stops without a terminal event, and its
	// lease runs out.
	if err := launcher.Stop(e.ctx, s.Runner.JobID); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, "second claim", func() bool { return e.scan(t, id).Attempts >= 2 })
	e.gate.open.Store(true)
	s = e.waitState(t, id, domain.ScanStateCompleted, domain.ScanStateFailed)
	if s.State != domain.ScanStateCompleted || s.Attempts < 2 || s.Fence != uint64(s.Attempts) || len(s.Findings) == 0 {
		t.Fatalf("state %s attempts %d fence %d findings %d reason %q", s.State, s.Attempts, s.Fence, len(s.Findings), s.Reason)
	}
	recs := e.events(t, id)
	ty := types(recs)
	t.Logf("events: %v", ty)
	if count(recs, "ScanRequeued") != s.Attempts-1 || count(recs, "ScanClaimed") != s.Attempts || launcher.launches.Load() != int64(s.Attempts) {
		t.Errorf("%d attempts: events %v, launches %d", s.Attempts, ty, launcher.launches.Load())
	}
	// The dead attempt's late writes are refused.
	_, err := e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: id, Fence: 1, Findings: []domain.Finding{s.Findings[0]}})
	if !errors.Is(err, domain.ErrConflict) {
		t.Errorf("late write of attempt 1: %v", err)
	}
	_, err = e.h.RenewLease.Handle(e.ctx, commands.RenewLease{ScanID: id, Fence: 1})
	if !errors.Is(err, domain.ErrConflict) {
		t.Errorf("late renewal of attempt 1: %v", err)
	}
	if n := eventstore.VerifyChain(e.events(t, id)); n != 0 {
		t.Errorf("hash chain broken at version %d", n)
	}
}

func TestConcurrencyCap(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{})
	o := opts{concurrency: 2}
	w := e.startWorker(t, o, inprocess.New(inprocess.Runner(e.runnerDeps(t, 0)), nil))
	var ids []string
	for range 5 {
		ids = append(ids, e.request(t, e.gate.name))
	}
	<-e.gate.started
	<-e.gate.started
	// Give the worker every chance to start a third.
	time.Sleep(500 * time.Millisecond)
	claimed := 0
	for _, id := range ids {
		if s := e.scan(t, id); s.State != domain.ScanStateRequested {
			claimed++
		}
	}
	if claimed != 2 || e.gate.running.Load() != 2 || w.Running() != 2 {
		t.Errorf("claimed %d, running %d, slots %d; want 2", claimed, e.gate.running.Load(), w.Running())
	}
	e.gate.open.Store(true)
	for _, id := range ids {
		e.waitState(t, id, domain.ScanStateCompleted)
	}
	if p := e.gate.peak.Load(); p > 2 {
		t.Errorf("peak concurrent runners %d, cap 2", p)
	}
	bustest.Eventually(t, "slots released", func() bool { return w.Running() == 0 })
}

var (
	regOnce sync.Once
	reg     *eventstore.Registry
)

func mustRegistry(t *testing.T) *eventstore.Registry {
	t.Helper()
	regOnce.Do(func() { reg, _ = commands.NewRegistry() })
	return reg
}

// TestUploadScansAreLeftToTheAPI: a scan waiting for a SARIF upload is never
// claimed by a worker (no runner could do its work).
func TestUploadScansAreLeftToTheAPI(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{})
	launcher := &countingLauncher{Launcher: inprocess.New(inprocess.Runner(e.runnerDeps(t, 0)), nil)}
	e.startWorker(t, opts{}, launcher)
	upload := e.request(t, domain.EngineSARIFUpload)
	after := e.request(t, builtin.Name)
	if s := e.waitState(t, after, domain.ScanStateCompleted, domain.ScanStateFailed); s.State != domain.ScanStateCompleted {
		t.Fatalf("the scan after the upload scan ended %s", s.State)
	}
	if s := e.scan(t, upload); s.State != domain.ScanStateRequested {
		t.Errorf("upload scan is %s, want requested", s.State)
	}
	if got := launcher.launches.Load(); got != 1 {
		t.Errorf("launches = %d, want 1 (the builtin scan only)", got)
	}
}
