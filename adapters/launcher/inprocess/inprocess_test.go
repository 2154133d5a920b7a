package inprocess_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vega-sec/vega/adapters/launcher/inprocess"
	"github.com/vega-sec/vega/commands/worker"
)

func TestLaunchStopShutdown(t *testing.T) {
	t.Parallel()
	started := make(chan worker.Job, 4)
	var stopped atomic.Int64
	l := inprocess.New(func(ctx context.Context, j worker.Job) error {
		started <- j
		<-ctx.Done()
		stopped.Add(1)
		return ctx.Err()
	}, nil)
	// The launch context bounds the launch only.
	lctx, cancel := context.WithCancel(t.Context())
	id, err := l.Launch(lctx, worker.Job{ScanID: "01A", Fence: 2})
	cancel()
	if err != nil || id != "inprocess:01A:2" {
		t.Fatalf("Launch = %q, %v", id, err)
	}
	if j := <-started; j.ScanID != "01A" || j.Fence != 2 {
		t.Errorf("job %+v", j)
	}
	if _, err := l.Launch(t.Context(), worker.Job{ScanID: "01A", Fence: 2}); err == nil {
		t.Error("the same job launched twice")
	}
	time.Sleep(20 * time.Millisecond)
	if stopped.Load() != 0 {
		t.Fatal("the runner stopped when the launch context ended")
	}
	if err := l.Stop(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Launch(t.Context(), worker.Job{ScanID: "01B", Fence: 1}); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancelShutdown := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancelShutdown()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stopped.Load(); got != 2 {
		t.Errorf("stopped %d runners, want 2", got)
	}
	if _, err := l.Launch(t.Context(), worker.Job{ScanID: "01C", Fence: 1}); err == nil {
		t.Error("Launch after Shutdown succeeded")
	}
	if err := l.Stop(t.Context(), "inprocess:unknown:1"); err != nil {
		t.Errorf("Stop of an unknown job: %v", err)
	}
}

func TestPanickingRunnerDoesNotCrash(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	l := inprocess.New(func(context.Context, worker.Job) error {
		defer close(done)
		panic(errors.New("boom"))
	}, nil)
	if _, err := l.Launch(t.Context(), worker.Job{ScanID: "01P", Fence: 1}); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := l.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}
