// Package runner runs one attempt of one scan: it downloads and verifies
// the scan's snapshot, extracts it to a private work directory, runs the
// engines the scan names over it with the threat profile's filters, and
// records ScanStarted, ScanProgressed, FindingRecorded batches, lease
// renewals and exactly one terminal event, every runner-side write
// presenting the claim's fencing token.
//
// It is what `vega runner --scan ID` runs in a child process or an ECS
// task, and what the in-process launcher runs in a goroutine.
//
// Outcomes:
//
//   - every requested engine that exists ran: ScanCompleted;
//   - some engines are unknown to this runner, or failed, while at least
//     one ran: ScanCompleted, partial, with a reason naming them (as
//     DESIGN.md asks of an unavailable engine: the scan is partial, never
//     silently empty);
//   - no requested engine could run, the snapshot is missing or corrupt:
//     ScanFailed with the reason;
//   - a ScanCancelRequested seen on the bus (or in a lease renewal): the
//     engines are stopped and ScanCancelled recorded;
//   - the scan timeout (counted from the claim) passed: ScanTimedOut;
//   - the claim was lost (a renewal or write refused for a stale fence, the
//     scan requeued or ended by someone else): the runner stops and writes
//     nothing more (ErrLeaseLost);
//   - ctx ended (the process is shutting down or was stopped): the runner
//     stops and writes nothing; the lease expires and the worker's reaper
//     requeues or fails the scan.
//
// Secrets: finding snippets and matches are never logged; log lines name
// rules and files only.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/adapters/engine"
	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/adapters/source/archive"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/domain"
)

// Runner limits and periods.
const (
	// ProgressInterval is the shortest time between two ScanProgressed
	// events (and the period at which pending findings are flushed).
	ProgressInterval = 250 * time.Millisecond
	// FindingBatchSize is how many findings one RecordFindings carries at
	// most (commands.MaxFindingsPerBatch bounds it).
	FindingBatchSize = 200
	// TerminalWriteTimeout bounds the recording of the terminal event after
	// the engines stopped.
	TerminalWriteTimeout = 15 * time.Second
	// MinRenewInterval is the shortest wait between two lease renewals; a
	// runner renews at half the remaining lease.
	MinRenewInterval = 100 * time.Millisecond
	// RenewRetryInterval is the wait before retrying a renewal that failed
	// for a reason other than a lost claim (the store is unreachable).
	RenewRetryInterval = time.Second
	// CancelPollInterval is how often the runner reads its scan to notice a
	// cancel request when it has no bus (Deps.Bus nil).
	CancelPollInterval = 500 * time.Millisecond
	// DefaultScanTimeout is VEGA_SCAN_TIMEOUT's default.
	DefaultScanTimeout = 30 * time.Minute
	// Actor is the principal of every runner-side command.
	Actor = "system:runner"
)

// Errors of Run.
var (
	// ErrLeaseLost: the runner's claim is no longer the scan's current one
	// (requeued, reaped or finished elsewhere); it stopped without a
	// terminal event.
	ErrLeaseLost = errors.New("scan lease lost")
	// ErrNotRunnable: the scan is not claimed by the attempt given (it is
	// requested, finished, or claimed under another fence).
	ErrNotRunnable = errors.New("scan is not runnable by this runner")
)

// causes of the run context's end.
var (
	errCancelRequested = errors.New("cancel requested")
	errTimedOut        = errors.New("scan timed out")
)

// Blobs is what the runner needs of a blob.Store.
type Blobs interface {
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// Bus is the event bus the runner watches for its scan's
// ScanCancelRequested (an ordered consumer on that one subject).
type Bus struct {
	JetStream     jetstream.JetStream
	Stream        string // VEGA_NATS_STREAM
	SubjectPrefix string // VEGA_NATS_SUBJECT_PREFIX
}

// Deps is what Run needs.
type Deps struct {
	// Handlers records the runner's events and loads the scan and its
	// repository. Required.
	Handlers *commands.Handlers
	// Blobs holds the snapshots (snapshot.BlobKey). Required.
	Blobs Blobs
	// Engines by name; a scan's engine missing here (and from
	// EngineFactories) makes the scan partial.
	Engines map[string]engine.Engine
	// EngineFactories build, per scan, engines that need the scan itself
	// (its threat profile, a credential for the LLM proxy minted for this
	// attempt). They run after ScanStarted; an error makes that engine
	// unavailable and the scan partial, saying why.
	EngineFactories map[string]EngineFactory
	// Bus, when set, delivers cancel requests within milliseconds; nil:
	// the runner polls its scan every CancelPollInterval.
	Bus *Bus
	// Fence is the claim this runner serves (the launcher passes it); 0:
	// the scan's current claim, whatever it is.
	Fence uint64
	// ScanTimeout bounds an attempt, counted from its claim
	// (0: DefaultScanTimeout).
	ScanTimeout time.Duration
	// TempDir is where the private download and work directories are made
	// (default os.TempDir()); they are removed when Run returns.
	TempDir string
	// Limits bound the extraction (zero fields: archive's defaults).
	Limits archive.Limits
	// IDs returns fresh finding IDs (default ulid.Make).
	IDs func() string
	// Logger (nil: discard).
	Logger *slog.Logger
}

func (d Deps) withDefaults() (Deps, error) {
	if d.Handlers == nil || d.Blobs == nil {
		return d, errors.New("runner: Handlers and Blobs are required")
	}
	if d.ScanTimeout <= 0 {
		d.ScanTimeout = DefaultScanTimeout
	}
	if d.TempDir == "" {
		d.TempDir = os.TempDir()
	}
	if d.IDs == nil {
		d.IDs = func() string { return ulid.Make().String() }
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// Run runs the current attempt of scan scanID (see the package
// documentation for the outcomes). It returns nil once it recorded the
// terminal event; ErrLeaseLost (wrapped) when the claim was lost;
// ErrNotRunnable (wrapped) when the scan is not claimed under d.Fence;
// ctx's error when ctx ended first; and other errors when the store could
// not be written. It is safe to run several Runs at once on different
// scans.
func Run(ctx context.Context, scanID string, d Deps) error {
	d, err := d.withDefaults()
	if err != nil {
		return err
	}
	ctx = commands.WithRequest(ctx, commands.Request{Actor: Actor})
	s, _, err := d.Handlers.Streams.Scans.Load(ctx, scanID)
	if err != nil {
		return fmt.Errorf("run scan %s: %w", scanID, err)
	}
	fence := d.Fence
	if fence == domain.NoFence {
		fence = s.Fence
	}
	if s.State != domain.ScanStateClaimed || s.Fence != fence {
		return fmt.Errorf("run scan %s: %s with fence %d, runner has fence %d: %w", scanID, s.State, s.Fence, fence, ErrNotRunnable)
	}
	r := &run{d: d, scan: s, fence: fence, log: d.Logger.With("component", "runner", "scan_id", scanID, "fence", fence)}
	return r.run(ctx)
}

// run is one attempt in progress.
type run struct {
	d     Deps
	scan  *domain.Scan
	fence uint64
	log   *slog.Logger
	stop  context.CancelCauseFunc
	rec   *recorder
}

func (r *run) run(ctx context.Context) error {
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	r.stop = stop
	r.rec = newRecorder(r)

	deadline := r.scan.ClaimedAt.Add(r.d.ScanTimeout)
	timer := time.AfterFunc(time.Until(deadline), func() { stop(errTimedOut) })
	defer timer.Stop()
	if r.scan.CancelRequested {
		stop(errCancelRequested)
	}

	var bg sync.WaitGroup
	bg.Go(func() { r.renewLease(runCtx) })
	bg.Go(func() { r.watchCancel(runCtx) })
	bg.Go(func() { r.rec.loop(runCtx) })
	defer bg.Wait()
	defer stop(nil) // ends the helpers before waiting for them

	partial, failure := r.work(runCtx)
	var cause error
	if runCtx.Err() != nil {
		cause = context.Cause(runCtx)
	}
	stop(nil)
	bg.Wait()

	if ctx.Err() != nil {
		r.log.Info("runner stopped; the scan is left to the reaper", "cause", context.Cause(ctx))
		return ctx.Err()
	}
	if errors.Is(cause, ErrLeaseLost) || r.rec.lost() {
		r.log.Warn("lease lost; stopping without a terminal event")
		return fmt.Errorf("run scan %s: %w", r.scan.ID, ErrLeaseLost)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), TerminalWriteTimeout)
	defer cancel()
	id := r.scan.ID
	var werr error
	switch {
	case errors.Is(cause, errCancelRequested):
		_, werr = r.d.Handlers.CancelScan.Handle(wctx, commands.CancelScan{ScanID: id, Fence: r.fence})
		r.log.Info("scan cancelled")
	case errors.Is(cause, errTimedOut):
		_, werr = r.d.Handlers.TimeOutScan.Handle(wctx, commands.TimeOutScan{ScanID: id, Fence: r.fence,
			Reason: fmt.Sprintf("scan ran longer than its timeout of %s", r.d.ScanTimeout)})
		r.log.Info("scan timed out", "timeout", r.d.ScanTimeout)
	case failure != "":
		_, werr = r.d.Handlers.FailScan.Handle(wctx, commands.FailScan{ScanID: id, Fence: r.fence, Reason: failure})
		r.log.Info("scan failed", "reason", failure)
	default:
		reason := strings.Join(partial, "; ")
		_, werr = r.d.Handlers.CompleteScan.Handle(wctx, commands.CompleteScan{ScanID: id, Fence: r.fence, Partial: len(partial) > 0, Reason: reason})
		r.log.Info("scan completed", "findings", r.rec.recorded(), "partial", len(partial) > 0, "reason", reason)
	}
	if werr != nil {
		if errors.Is(werr, domain.ErrConflict) {
			return fmt.Errorf("run scan %s: record the outcome: %w: %w", id, ErrLeaseLost, werr)
		}
		return fmt.Errorf("run scan %s: record the outcome: %w", id, werr)
	}
	return nil
}

// work prepares the snapshot and runs the engines. It returns the reasons
// the scan is partial, or a failure reason; when runCtx ended, the caller
// decides by its cause and ignores both.
func (r *run) work(ctx context.Context) (partial []string, failure string) {
	dir, err := os.MkdirTemp(r.d.TempDir, "vega-scan-*")
	if err != nil {
		return nil, "cannot create a work directory: " + err.Error()
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			r.log.Warn("remove work directory", "dir", dir, "error", err)
		}
	}()
	root, reason := r.prepare(ctx, dir)
	if reason != "" || ctx.Err() != nil {
		return nil, reason
	}
	if _, err := r.d.Handlers.StartScan.Handle(ctx, commands.StartScan{ScanID: r.scan.ID, Fence: r.fence}); err != nil {
		if errors.Is(err, domain.ErrConflict) {
			r.stop(ErrLeaseLost)
			return nil, ""
		}
		return nil, "cannot record the start: " + err.Error()
	}
	r.rec.started()

	p := r.scan.Profile
	target := engine.Target{Root: root, Include: p.Include, Exclude: p.Exclude, MinSeverity: string(p.MinSeverity)}
	for _, c := range p.Categories {
		target.Categories = append(target.Categories, string(c))
	}
	ran := 0
	n := len(r.scan.Engines)
	for i, name := range r.scan.Engines {
		eng, ok := r.d.Engines[name]
		if !ok {
			build, ok := r.d.EngineFactories[name]
			if !ok {
				partial = append(partial, fmt.Sprintf("engine %s is not available", name))
				continue
			}
			var err error
			if eng, err = build(ctx, r.scan, r.fence); err != nil {
				if ctx.Err() != nil {
					return nil, ""
				}
				partial = append(partial, fmt.Sprintf("engine %s is not available: %v", name, err))
				continue
			}
		}
		r.rec.progress("scanning: "+name, 5+90*i/n)
		err := r.scanWith(ctx, eng, target)
		if ctx.Err() != nil {
			return nil, ""
		}
		if err != nil {
			if r.rec.lost() {
				return nil, ""
			}
			r.log.Warn("engine failed", "engine", name, "error", err)
			partial = append(partial, fmt.Sprintf("engine %s failed: %v", name, err))
			continue
		}
		ran++
	}
	if err := r.rec.flush(ctx); err != nil {
		if r.rec.lost() || ctx.Err() != nil {
			return nil, ""
		}
		return nil, "cannot record findings: " + err.Error()
	}
	if ran == 0 {
		return nil, "no engine could run: " + strings.Join(partial, "; ")
	}
	r.rec.progress("done", 100)
	r.rec.flushProgress(ctx, true)
	return partial, ""
}

// EngineFactory builds an engine for one attempt of one scan.
type EngineFactory func(ctx context.Context, scan *domain.Scan, fence uint64) (engine.Engine, error)

// scanWith runs one engine, turning a panic into an error.
func (r *run) scanWith(ctx context.Context, eng engine.Engine, t engine.Target) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("engine panicked: %v", p)
		}
	}()
	return eng.Scan(ctx, t, func(f engine.Finding) error { return r.rec.add(ctx, f) })
}

// prepare downloads the snapshot's blob, extracts it under dir and checks
// its digest. It returns the extracted tree's root, or a failure reason.
func (r *run) prepare(ctx context.Context, dir string) (root, failure string) {
	repo, _, err := r.d.Handlers.Streams.Repositories.Load(ctx, r.scan.RepositoryID)
	if err != nil {
		return "", "cannot load the repository: " + err.Error()
	}
	snap, ok := repo.Snapshot(r.scan.SnapshotID)
	if !ok || snap.Status != domain.SnapshotStatusCaptured {
		return "", fmt.Sprintf("snapshot %s is not captured", r.scan.SnapshotID)
	}
	key, err := snapshot.BlobKey(snap.Digest)
	if err != nil {
		return "", err.Error()
	}
	local := filepath.Join(dir, "snapshot.tar.gz")
	if err := r.download(ctx, key, local); err != nil {
		return "", fmt.Sprintf("cannot download snapshot %s: %v", snap.ID, err)
	}
	root = filepath.Join(dir, "src")
	res, err := archive.Extract(ctx, local, root, r.d.Limits)
	if err != nil {
		return "", fmt.Sprintf("cannot extract snapshot %s: %v", snap.ID, err)
	}
	if res.Digest != snap.Digest {
		return "", fmt.Sprintf("snapshot %s: digest %s does not match the recorded %s", snap.ID, res.Digest, snap.Digest)
	}
	if err := os.Remove(local); err != nil {
		r.log.Warn("remove downloaded snapshot", "error", err)
	}
	return root, ""
}

func (r *run) download(ctx context.Context, key, dst string) error {
	rc, err := r.d.Blobs.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, ctxReader{ctx, rc})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// renewLease renews the claim at half the remaining lease until ctx ends;
// a refused renewal (stale fence, scan no longer claimed or running) stops
// the run with ErrLeaseLost. A renewal that shows a cancel request stops
// it with errCancelRequested.
func (r *run) renewLease(ctx context.Context) {
	until := r.scan.LeaseUntil
	floor := MinRenewInterval
	for {
		wait := max(time.Until(until)/2, floor)
		floor = MinRenewInterval
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		res, err := r.d.Handlers.RenewLease.Handle(ctx, commands.RenewLease{ScanID: r.scan.ID, Fence: r.fence})
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, domain.ErrConflict):
			r.stop(ErrLeaseLost)
			return
		case err != nil:
			r.log.Warn("lease renewal failed; retrying", "error", err)
			floor = RenewRetryInterval
			continue
		}
		until = res.LeaseUntil
		if res.Scan.CancelRequested {
			r.stop(errCancelRequested)
			return
		}
	}
}

// watchCancel stops the run when the scan's ScanCancelRequested arrives:
// through an ordered consumer on exactly that event's subject from the
// beginning of the bus stream (so a request made before the runner started
// is seen too), or, without a bus or when the subscription fails, by
// reading the scan every CancelPollInterval.
func (r *run) watchCancel(ctx context.Context) {
	if b := r.d.Bus; b != nil && b.JetStream != nil {
		subject := vnats.Subject(b.SubjectPrefix, r.d.Handlers.Streams.Scans.StreamID(r.scan.ID), domain.ScanCancelRequested{}.EventName())
		err := vnats.Subscribe(ctx, b.JetStream, b.Stream, vnats.SubscribeOptions{FilterSubject: subject, Logger: r.log},
			func(context.Context, vnats.Envelope) error {
				r.stop(errCancelRequested)
				return errCancelRequested
			})
		if ctx.Err() != nil || errors.Is(err, errCancelRequested) {
			return
		}
		r.log.Warn("cancel subscription failed; polling the scan instead", "error", err)
	}
	t := time.NewTicker(CancelPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, _, err := r.d.Handlers.Streams.Scans.Load(ctx, r.scan.ID)
		switch {
		case err != nil:
			continue
		case s.Fence != r.fence || s.State.Terminal() || s.State == domain.ScanStateRequested:
			r.stop(ErrLeaseLost)
			return
		case s.CancelRequested:
			r.stop(errCancelRequested)
			return
		}
	}
}

// toDomain converts an engine finding; its snippet, message and
// remediation are cut to the domain's limits.
func toDomain(id string, f engine.Finding) domain.Finding {
	return domain.Finding{
		ID: id, Fingerprint: f.Fingerprint, RuleID: f.RuleID, Title: cut(f.Title, domain.MaxTitleLength),
		Severity: domain.Severity(f.Severity), CWE: f.CWE, Engine: f.Engine, File: f.File,
		StartLine: f.StartLine, EndLine: f.EndLine, Snippet: cut(f.Snippet, domain.MaxSnippetLength),
		Message: cut(f.Message, domain.MaxMessageLength), Remediation: cut(f.Remediation, domain.MaxMessageLength),
		Confidence: f.Confidence,
	}
}

func cut(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max-1]) + "…"
}
