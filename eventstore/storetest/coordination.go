package storetest

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vega-sec/vega/eventstore"
)

func testCheckpoints(t *testing.T, h Harness) {
	s := open(t, h)
	cp, ok := s.(eventstore.Checkpoints)
	if !ok {
		t.Skipf("%T does not implement eventstore.Checkpoints", s)
	}
	ctx := testContext(t)
	stream := eventstore.NewStreamIDULID("cp")
	p1 := mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvents("One", 1)...).Position
	p2 := mustAppend(t, ctx, s, stream, eventstore.Exact(1), newEvents("Two", 3)...).Position

	load := func(name string, want eventstore.Position) {
		t.Helper()
		got, err := cp.LoadCheckpoint(ctx, name)
		if err != nil {
			t.Fatalf("load checkpoint %s: %v", name, err)
		}
		if got != want {
			t.Errorf("checkpoint %s = %s, want %s", name, got, want)
		}
	}
	save := func(name string, pos eventstore.Position) {
		t.Helper()
		if err := cp.SaveCheckpoint(ctx, name, pos); err != nil {
			t.Fatalf("save checkpoint %s at %s: %v", name, pos, err)
		}
	}
	load("projection.scans", eventstore.Position{})
	save("projection.scans", p1)
	load("projection.scans", p1)
	save("projection.scans", p2)
	load("projection.scans", p2)
	load("relay", eventstore.Position{})
	save("relay", p1)
	load("relay", p1)
	load("projection.scans", p2)
	// Overwriting with an earlier position (a rebuild) is allowed.
	save("projection.scans", p1)
	load("projection.scans", p1)
	save("projection.scans", eventstore.Position{})
	load("projection.scans", eventstore.Position{})
	// Names are compared exactly.
	save("Relay", p2)
	load("relay", p1)
	load("Relay", p2)
}

func testLeader(t *testing.T, h Harness) {
	s := open(t, h)
	l, ok := s.(eventstore.Leader)
	if !ok {
		t.Skipf("%T does not implement eventstore.Leader", s)
	}
	ctx := testContext(t)

	t.Run("mutual exclusion", func(t *testing.T) {
		const (
			contenders = 4
			rounds     = 5
		)
		var active, overlaps, runs atomic.Int32
		var wg sync.WaitGroup
		for range contenders {
			wg.Go(func() {
				for range rounds {
					err := l.Lead(ctx, "storetest.exclusive", func(context.Context) error {
						if active.Add(1) != 1 {
							overlaps.Add(1)
						}
						runs.Add(1)
						runtime.Gosched()
						time.Sleep(time.Millisecond) // widen the window an overlap would need; not asserted
						active.Add(-1)
						return nil
					})
					if err != nil {
						t.Errorf("lead: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		if n := overlaps.Load(); n != 0 {
			t.Errorf("fn ran concurrently under the same name %d times", n)
		}
		if n := runs.Load(); n != contenders*rounds {
			t.Errorf("fn ran %d times, want %d", n, contenders*rounds)
		}
	})

	t.Run("returns fn's error", func(t *testing.T) {
		errFn := errors.New("leader work failed")
		if err := l.Lead(ctx, "storetest.error", func(context.Context) error { return errFn }); !errors.Is(err, errFn) {
			t.Errorf("lead returned %v, want fn's error", err)
		}
		// The lock was released: it can be taken again.
		ran := false
		if err := l.Lead(ctx, "storetest.error", func(context.Context) error { ran = true; return nil }); err != nil || !ran {
			t.Errorf("lead after a failed fn: ran %v, %v", ran, err)
		}
	})

	t.Run("names are independent and waiting ends with ctx", func(t *testing.T) {
		held := make(chan struct{})
		release := make(chan struct{})
		holder := make(chan error, 1)
		go func() {
			holder <- l.Lead(ctx, "storetest.held", func(context.Context) error {
				close(held)
				<-release
				return nil
			})
		}()
		select {
		case <-held:
		case err := <-holder:
			t.Fatalf("holder ended early: %v", err)
		}
		ran := false
		if err := l.Lead(ctx, "storetest.other", func(context.Context) error { ran = true; return nil }); err != nil || !ran {
			t.Errorf("lead on another name while one is held: ran %v, %v", ran, err)
		}
		wctx, cancel := context.WithCancel(ctx)
		waiter := make(chan error, 1)
		ranHeld := atomic.Bool{}
		go func() {
			waiter <- l.Lead(wctx, "storetest.held", func(context.Context) error { ranHeld.Store(true); return nil })
		}()
		cancel()
		if err := <-waiter; !errors.Is(err, context.Canceled) {
			t.Errorf("lead on a held name with a cancelled context: %v, want context.Canceled", err)
		}
		if ranHeld.Load() {
			t.Error("fn ran while another holder had the lock")
		}
		close(release)
		if err := <-holder; err != nil {
			t.Errorf("holder: %v", err)
		}
	})
}
