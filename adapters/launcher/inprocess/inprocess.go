// Package inprocess is the runner launcher of "thread mode": each runner
// is a goroutine of the worker's process calling runner.Run.
package inprocess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/vega-sec/vega/commands/runner"
	"github.com/vega-sec/vega/commands/worker"
)

// Name is the launcher's name in RunnerLaunched events.
const Name = "inprocess"

// RunFunc runs one job until it ends or ctx is cancelled.
type RunFunc func(ctx context.Context, job worker.Job) error

// Runner returns the RunFunc that calls runner.Run with d and the job's
// fence.
func Runner(d runner.Deps) RunFunc {
	return func(ctx context.Context, job worker.Job) error {
		d := d
		d.Fence = job.Fence
		return runner.Run(ctx, job.ScanID, d)
	}
}

var (
	_ worker.Launcher   = (*Launcher)(nil)
	_ worker.Shutdowner = (*Launcher)(nil)
)

// Launcher runs each job in a goroutine. Stop cancels the job's context:
// the runner stops without a terminal event and leaves its scan to the
// reaper. It is safe for concurrent use.
type Launcher struct {
	run RunFunc
	log *slog.Logger

	mu     sync.Mutex
	jobs   map[string]context.CancelFunc
	closed bool
	wg     sync.WaitGroup
}

// New returns a Launcher that runs jobs with run (see Runner). log may be
// nil.
func New(run RunFunc, log *slog.Logger) *Launcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Launcher{run: run, log: log.With("component", "launcher", "launcher", Name), jobs: map[string]context.CancelFunc{}}
}

// Name returns Name.
func (l *Launcher) Name() string { return Name }

// Launch starts the job in a goroutine whose context is ctx's values
// without its cancellation (ctx bounds the launch only). The job ID is
// "inprocess:<scan>:<fence>". It fails after Shutdown and for a job
// already running.
func (l *Launcher) Launch(ctx context.Context, job worker.Job) (string, error) {
	id := fmt.Sprintf("%s:%s:%d", Name, job.ScanID, job.Fence)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", errors.New("launch: the in-process launcher is shut down")
	}
	if _, dup := l.jobs[id]; dup {
		return "", fmt.Errorf("launch %s: already running", id)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.jobs[id] = cancel
	l.wg.Go(func() {
		defer func() {
			cancel()
			l.mu.Lock()
			delete(l.jobs, id)
			l.mu.Unlock()
		}()
		defer func() {
			if p := recover(); p != nil {
				l.log.Error("runner panicked", "job_id", id, "panic", p)
			}
		}()
		if err := l.run(rctx, job); err != nil {
			l.log.Info("runner ended with an error", "job_id", id, "error", err)
		}
	})
	return id, nil
}

// Stop cancels the job's context; an unknown or finished job is not an
// error.
func (l *Launcher) Stop(_ context.Context, jobID string) error {
	l.mu.Lock()
	cancel := l.jobs[jobID]
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return nil
}

// Shutdown refuses new jobs, waits for the running ones until ctx ends,
// then cancels them and waits for them to return.
func (l *Launcher) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	for _, cancel := range l.jobs {
		cancel()
	}
	l.mu.Unlock()
	<-done
	return nil
}
