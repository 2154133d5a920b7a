// Package worker is Vega's scan dispatcher: the process manager behind
// `vega worker` (and inside `vega dev`).
//
// It runs three durable JetStream consumers and two loops:
//
//   - "worker-scan-dispatch" (ScanRequested) and "worker-scan-requeued"
//     (ScanRequeued): for each, wait for a free runner slot (at most
//     Config.Concurrency runners at once; the message is held, with
//     in-progress acks, meanwhile), claim the scan with commands.ClaimScan,
//     launch a runner through the Launcher, and record commands.LaunchRunner.
//     The claim is an append at the scan stream's expected version with a
//     lease and a new fencing token, so a redelivered message or a second
//     worker never starts a second runner: the loser's claim is refused
//     (an illegal transition, domain.ErrConflict) and it acks.
//   - "worker-git-capture" (SnapshotRequested), when Deps.Snapshots is set:
//     the git capture (snapshot.Service.CaptureGit), which records
//     SnapshotCaptured or SnapshotFailed.
//   - the scan index: it follows the store's global order (scan category,
//     lifecycle events only) and keeps every non-terminal scan's state,
//     lease and claim time in memory. No read model is needed. A runner slot
//     is released when the index sees the scan of that slot requeued (its
//     attempt) or finished.
//   - the reaper: every Config.ReapInterval it ends what lost runners left.
//     A claimed or running scan past Config.ScanTimeout+Config.TimeoutGrace
//     since its claim is timed out (commands.TimeOutScan, no fence: its
//     runner would have timed it out itself); one whose lease expired is
//     reaped (commands.ReapScan: requeued while attempts remain under
//     commands Options.MaxScanAttempts, else failed; cancelled when a cancel
//     was requested). Every worker runs a reaper; the commands' expected
//     versions make concurrent reapers harmless.
//
// A launch that fails releases the slot and leaves the claim to expire, so
// that the reaper requeues the scan within the attempt budget.
//
// Shutdown (ctx ends): the consumers stop taking messages, then the
// launcher, if it is a Shutdowner, gets Config.ShutdownTimeout to let its
// runners finish before they are stopped; a stopped runner leaves its scan
// to the reaper of a live worker.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// Consumer names. They are permanent IDs: renaming one makes a new durable
// consumer that starts from the beginning of the stream.
const (
	ConsumerDispatch   = "worker-scan-dispatch"
	ConsumerRequeued   = "worker-scan-requeued"
	ConsumerGitCapture = "worker-git-capture"
)

// Defaults of Config.
const (
	// DefaultConcurrency is VEGA_WORKER_CONCURRENCY's default.
	DefaultConcurrency = 2
	// DefaultReapInterval is how often the reaper looks for expired leases
	// and timeouts.
	DefaultReapInterval = 5 * time.Second
	// DefaultScanTimeout is VEGA_SCAN_TIMEOUT's default.
	DefaultScanTimeout = 30 * time.Minute
	// DefaultTimeoutGrace is how long after a scan's timeout the reaper
	// waits for its runner to record ScanTimedOut before it does.
	DefaultTimeoutGrace = time.Minute
	// DefaultShutdownTimeout bounds the wait for running runners at
	// shutdown.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultGitConcurrency is how many git captures run at once.
	DefaultGitConcurrency = 1
	// Actor is the principal of the worker's commands.
	Actor = "system:worker"
)

// Job is one runner to launch: the attempt Fence of scan ScanID.
type Job struct {
	ScanID string
	Fence  uint64
}

// Launcher starts and stops runners. Implementations (adapters/launcher)
// are safe for concurrent use.
type Launcher interface {
	// Name is the launcher's name as LaunchRunner records it ("inprocess",
	// "process", "ecs").
	Name() string
	// Launch starts a runner for job and returns its job ID (a goroutine
	// label, a PID, a task ARN). ctx bounds the launch, not the runner.
	Launch(ctx context.Context, job Job) (jobID string, err error)
	// Stop stops a runner; stopping one that already ended succeeds.
	Stop(ctx context.Context, jobID string) error
}

// Shutdowner is a Launcher whose runners live in or under this process:
// Shutdown waits for them until ctx ends, then stops them and returns.
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}

// GitCapturer performs a pending git capture and records its outcome
// (snapshot.Service implements it).
type GitCapturer interface {
	CaptureGit(ctx context.Context, repositoryID, snapshotID string) (commands.SnapshotResult, error)
}

// Config tunes a Worker. Zero fields take their defaults.
type Config struct {
	// WorkerID names this worker in claims (default
	// "worker-<host>-<pid>-<ulid>").
	WorkerID string
	// Concurrency caps the runners this worker has at once
	// (VEGA_WORKER_CONCURRENCY, DefaultConcurrency).
	Concurrency int
	// ScanTimeout is VEGA_SCAN_TIMEOUT (DefaultScanTimeout); it must match
	// the runners'.
	ScanTimeout time.Duration
	// TimeoutGrace: DefaultTimeoutGrace.
	TimeoutGrace time.Duration
	// ReapInterval: DefaultReapInterval.
	ReapInterval time.Duration
	// ShutdownTimeout: DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// GitConcurrency: DefaultGitConcurrency.
	GitConcurrency int
	// Stream and SubjectPrefix of the bus (VEGA_NATS_STREAM,
	// VEGA_NATS_SUBJECT_PREFIX; defaults of adapters/nats).
	Stream, SubjectPrefix string
	// AckWait of the consumers (adapters/nats' default when zero).
	AckWait time.Duration
	// DeadLetters parks messages that failed too often. Required.
	DeadLetters vnats.DeadLetters
	// Logger (nil: discard).
	Logger *slog.Logger
}

// Deps are the Worker's collaborators.
type Deps struct {
	// Handlers issues the commands. Required.
	Handlers *commands.Handlers
	// Store is followed for the scan index. Required.
	Store eventstore.Follower
	// JetStream carries the events the consumers read. Required.
	JetStream jetstream.JetStream
	// Launcher starts runners. Required.
	Launcher Launcher
	// Snapshots performs git captures; nil: this worker captures none.
	Snapshots GitCapturer
}

// Worker dispatches scans, reaps lost runners and captures git snapshots.
// Its methods are safe for concurrent use; Run runs once.
type Worker struct {
	cfg   Config
	d     Deps
	log   *slog.Logger
	codec *eventstore.Registry
	slots chan struct{}
	index *index

	mu     sync.Mutex
	active map[string]slot // scan ID -> the runner slot this worker holds for it
}

// slot is a runner this worker launched.
type slot struct {
	fence uint64
	jobID string
}

// New returns a Worker. It fails when a required field is missing.
func New(cfg Config, d Deps) (*Worker, error) {
	switch {
	case d.Handlers == nil, d.Store == nil, d.JetStream == nil, d.Launcher == nil:
		return nil, errors.New("new worker: Handlers, Store, JetStream and Launcher are required")
	case cfg.DeadLetters == nil:
		return nil, errors.New("new worker: DeadLetters is required")
	case cfg.Concurrency < 0, cfg.ScanTimeout < 0, cfg.TimeoutGrace < 0, cfg.ReapInterval < 0, cfg.ShutdownTimeout < 0:
		return nil, errors.New("new worker: negative setting")
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = defaultWorkerID()
	}
	if err := domain.ValidateID("worker_id", cfg.WorkerID); err != nil {
		return nil, fmt.Errorf("new worker: %w", err)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.ScanTimeout == 0 {
		cfg.ScanTimeout = DefaultScanTimeout
	}
	if cfg.TimeoutGrace == 0 {
		cfg.TimeoutGrace = DefaultTimeoutGrace
	}
	if cfg.ReapInterval == 0 {
		cfg.ReapInterval = DefaultReapInterval
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.GitConcurrency == 0 {
		cfg.GitConcurrency = DefaultGitConcurrency
	}
	if cfg.Stream == "" {
		cfg.Stream = vnats.DefaultStreamName
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = vnats.DefaultSubjectPrefix
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	codec, err := commands.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("new worker: %w", err)
	}
	w := &Worker{cfg: cfg, d: d, codec: codec, slots: make(chan struct{}, cfg.Concurrency),
		active: map[string]slot{}, log: log.With("component", "worker", "worker_id", cfg.WorkerID)}
	w.index = newIndex(codec, w.released)
	return w, nil
}

func defaultWorkerID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return r
		}
		return '-'
	}, host)
	if len(host) > 40 {
		host = host[:40]
	}
	return fmt.Sprintf("worker-%s-%d-%s", strings.Trim(host, "-."), os.Getpid(), ulid.Make().String())
}

// ID returns the worker's ID as its claims record it.
func (w *Worker) ID() string { return w.cfg.WorkerID }

// Running returns how many runner slots are held.
func (w *Worker) Running() int { return len(w.slots) }

// Run creates the consumers and runs everything until ctx ends, then
// shuts down (see the package documentation) and returns nil. It fails at
// once when a consumer cannot be created.
func (w *Worker) Run(ctx context.Context) error {
	p := w.cfg.SubjectPrefix
	type spec struct {
		name, subject string
		concurrency   int
		h             vnats.Handler
	}
	specs := []spec{
		{ConsumerDispatch, vnats.TypeSubject(p, commands.CategoryScan, domain.ScanRequested{}.EventName()), w.cfg.Concurrency, w.dispatch},
		{ConsumerRequeued, vnats.TypeSubject(p, commands.CategoryScan, domain.ScanRequeued{}.EventName()), w.cfg.Concurrency, w.dispatch},
	}
	if w.d.Snapshots != nil {
		specs = append(specs, spec{ConsumerGitCapture, vnats.TypeSubject(p, commands.CategoryRepository, domain.SnapshotRequested{}.EventName()), w.cfg.GitConcurrency, w.capture})
	}
	var consumers []*vnats.Consumer
	for _, s := range specs {
		c, err := vnats.NewConsumer(ctx, w.d.JetStream, w.cfg.Stream, vnats.ConsumerConfig{
			Name: s.name, FilterSubject: s.subject, Concurrency: s.concurrency, AckWait: w.cfg.AckWait,
			DeadLetters: w.cfg.DeadLetters, Logger: w.log,
		}, s.h)
		if err != nil {
			return fmt.Errorf("run worker: %w", err)
		}
		consumers = append(consumers, c)
	}
	w.log.Info("worker running", "concurrency", w.cfg.Concurrency, "launcher", w.d.Launcher.Name())
	var wg sync.WaitGroup
	for _, c := range consumers {
		wg.Go(func() { _ = c.Run(ctx) })
	}
	wg.Go(func() { w.followIndex(ctx) })
	wg.Go(func() { w.reapLoop(ctx) })
	wg.Wait()

	if sd, ok := w.d.Launcher.(Shutdowner); ok {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.ShutdownTimeout)
		defer cancel()
		if err := sd.Shutdown(sctx); err != nil {
			w.log.Warn("launcher shutdown", "error", err)
		}
	}
	w.log.Info("worker stopped")
	return nil
}

// uploadOnly reports whether the scan waits for a SARIF upload through the
// API: no runner can do its work, so the worker must leave it alone.
func uploadOnly(s *domain.Scan) bool {
	return len(s.Engines) == 1 && s.Engines[0] == domain.EngineSARIFUpload
}

// dispatch claims and launches the scan of a ScanRequested or ScanRequeued
// message.
func (w *Worker) dispatch(ctx context.Context, env vnats.Envelope) error {
	scanID := env.StreamID.ID()
	rec, err := env.RecordedEvent()
	if err != nil {
		return err
	}
	ctx = commands.WithRequest(ctx, commands.RequestFromEvent(Actor, rec))
	// A scan that is no longer requested (a redelivery, a stale requeue)
	// needs no slot.
	if s, _, err := w.d.Handlers.Streams.Scans.Load(ctx, scanID); err == nil && (s.State != domain.ScanStateRequested || uploadOnly(s)) {
		return nil
	}
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	claim, err := w.d.Handlers.ClaimScan.Handle(ctx, commands.ClaimScan{ScanID: scanID, WorkerID: w.cfg.WorkerID})
	if err != nil {
		<-w.slots
		switch {
		case errors.Is(err, domain.ErrConflict), errors.Is(err, domain.ErrNotFound),
			errors.Is(err, domain.ErrInvalidArgument), errors.Is(err, eventstore.ErrConcurrency):
			w.log.Debug("scan not claimed", "scan_id", scanID, "reason", err)
			return nil
		}
		return fmt.Errorf("claim scan %s: %w", scanID, err)
	}
	fence := claim.Fence
	w.mu.Lock()
	w.active[scanID] = slot{fence: fence}
	w.mu.Unlock()
	jobID, err := w.d.Launcher.Launch(ctx, Job{ScanID: scanID, Fence: fence})
	if err != nil {
		w.log.Error("launch failed; the claim will expire and the reaper requeue the scan", "scan_id", scanID, "fence", fence, "error", err)
		w.release(scanID, fence)
		return nil
	}
	w.mu.Lock()
	if s, ok := w.active[scanID]; ok && s.fence == fence {
		w.active[scanID] = slot{fence: fence, jobID: jobID}
	}
	w.mu.Unlock()
	w.log.Info("runner launched", "scan_id", scanID, "fence", fence, "job_id", jobID)
	_, err = w.d.Handlers.LaunchRunner.Handle(ctx, commands.LaunchRunner{ScanID: scanID, Fence: fence, Launcher: w.d.Launcher.Name(), JobID: jobID})
	if err != nil && !errors.Is(err, domain.ErrConflict) {
		w.log.Warn("record runner launch", "scan_id", scanID, "error", err)
	}
	return nil
}

// release frees the slot of scanID if this worker holds it for attempt
// fence (any attempt when fence is domain.NoFence).
func (w *Worker) release(scanID string, fence uint64) {
	w.mu.Lock()
	s, ok := w.active[scanID]
	if ok && (fence == domain.NoFence || s.fence == fence) {
		delete(w.active, scanID)
	} else {
		ok = false
	}
	w.mu.Unlock()
	if ok {
		<-w.slots
	}
}

// released is the index's callback when a scan leaves an attempt.
func (w *Worker) released(scanID string, fence uint64) { w.release(scanID, fence) }

// capture performs the git capture of a SnapshotRequested message.
func (w *Worker) capture(ctx context.Context, env vnats.Envelope) error {
	rec, err := env.RecordedEvent()
	if err != nil {
		return err
	}
	e, err := commands.DecodeEvent(w.codec, rec)
	if err != nil {
		return err
	}
	req, ok := e.(*domain.SnapshotRequested)
	if !ok {
		return fmt.Errorf("capture: %s is not a SnapshotRequested", rec.Type)
	}
	ctx = commands.WithRequest(ctx, commands.RequestFromEvent(Actor, rec))
	res, err := w.d.Snapshots.CaptureGit(ctx, env.StreamID.ID(), req.SnapshotID)
	if err != nil {
		return err
	}
	w.log.Info("git capture done", "repository_id", env.StreamID.ID(), "snapshot_id", req.SnapshotID, "status", res.Snapshot.Status)
	return nil
}
