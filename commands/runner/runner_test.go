package runner_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	blobfs "github.com/vega-sec/vega/adapters/blob/fs"
	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/runner"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/internal/testkit"
)

// Fake secrets, built so that no real key appears in the source.
var (
	fakeAWSKeyID  = "AKIA" + "Q7RZ4MWX2KJB6TPN"
	fakeAWSSecret = "rT9vKq2Lm" + "X8bWz4NcP1eYh7GfJ3sDa6UoQ0iZkVw"
)

// blockingEngine finds nothing and returns only when ctx ends.
type blockingEngine struct{ started chan struct{} }

func (b *blockingEngine) Name() string { return "slow" }
func (b *blockingEngine) Scan(ctx context.Context, _ engine.Target, _ func(engine.Finding) error) error {
	close(b.started)
	<-ctx.Done()
	return ctx.Err()
}

type fixture struct {
	ctx    context.Context
	store  eventstore.Store
	h      *commands.Handlers
	blobs  *blobfs.Store
	repoID string
	deps   runner.Deps
	logs   *testkit.LogBuffer
	tmp    string
}

func setup(t *testing.T, lease time.Duration) *fixture {
	t.Helper()
	ctx := commands.WithRequest(t.Context(), commands.Request{Actor: "alice"})
	store := testkit.SQLiteStore(t)
	h := testkit.Handlers(t, store, commands.Options{LeaseDuration: lease})
	files := map[string]string{
		"app/config.py": "AWS_ACCESS_KEY_ID = \"" + fakeAWSKeyID + "\"\naws_secret_access_key = \"" + fakeAWSSecret + "\"\n",
		"app/db.py":     "cur.execute(\"SELECT * FROM t WHERE id = %s\" % tid)\n",
		"README.md":     "# demo\n",
	}
	blobs, repoID := testkit.ArchiveRepository(t, ctx, h, files)
	b, err := builtin.New(testkit.Fingerprinter(t), builtin.WithWorkers(1))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.LogBuffer{}
	tmp := t.TempDir()
	return &fixture{ctx: ctx, store: store, h: h, blobs: blobs, repoID: repoID, logs: logs, tmp: tmp,
		deps: runner.Deps{Handlers: h, Blobs: blobs, Engines: map[string]engine.Engine{builtin.Name: b}, TempDir: tmp,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}}
}

// claimed requests a scan with the given engines and claims it.
func (f *fixture) claimed(t *testing.T, engines ...string) (string, uint64) {
	t.Helper()
	s, err := f.h.RequestScan.Handle(f.ctx, commands.RequestScan{RepositoryID: f.repoID, Engines: engines})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.h.ClaimScan.Handle(f.ctx, commands.ClaimScan{ScanID: s.Scan.ID, WorkerID: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Scan.ID, c.Fence
}

func (f *fixture) scan(t *testing.T, id string) *domain.Scan {
	t.Helper()
	s, _, err := f.h.Streams.Scans.Load(f.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// types returns the event types of a scan's stream.
func (f *fixture) types(t *testing.T, id string) []string {
	t.Helper()
	recs, err := f.store.ReadStream(f.ctx, f.h.Streams.Scans.StreamID(id), 1, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Type)
	}
	return out
}

func (f *fixture) assertTempClean(t *testing.T) {
	t.Helper()
	if left, _ := os.ReadDir(f.tmp); len(left) != 0 {
		t.Errorf("temporary directories left: %v", left)
	}
}

func TestRunCompletesWithFindings(t *testing.T) {
	t.Parallel()
	f := setup(t, time.Minute)
	id, fence := f.claimed(t, builtin.Name)
	d := f.deps
	d.Fence = fence
	if err := runner.Run(t.Context(), id, d); err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := f.scan(t, id)
	if s.State != domain.ScanStateCompleted || s.Partial {
		t.Fatalf("state %s partial %v (%s)", s.State, s.Partial, s.Reason)
	}
	if len(s.Findings) < 2 || s.Counts.Total() != len(s.Findings) {
		t.Fatalf("findings %d, counts %+v", len(s.Findings), s.Counts)
	}
	files := map[string]bool{}
	for _, fd := range s.Findings {
		files[fd.File] = true
		if strings.Contains(fd.Snippet, fakeAWSSecret) || strings.Contains(fd.Snippet, fakeAWSKeyID) {
			t.Errorf("finding %s carries the secret in its snippet", fd.RuleID)
		}
	}
	if !files["app/config.py"] || !files["app/db.py"] {
		t.Errorf("findings in %v, want app/config.py and app/db.py", files)
	}
	types := f.types(t, id)
	t.Logf("events: %v", types)
	want := []string{"ScanRequested", "ScanClaimed", "ScanStarted"}
	if len(types) < 5 || !slices.Equal(types[:3], want) || types[len(types)-1] != "ScanCompleted" {
		t.Errorf("events %v", types)
	}
	if !slices.Contains(types, "ScanProgressed") || !slices.Contains(types, "FindingRecorded") {
		t.Errorf("events %v lack progress or findings", types)
	}
	if logs := f.logs.String(); strings.Contains(logs, fakeAWSSecret) || strings.Contains(logs, fakeAWSKeyID) {
		t.Errorf("a secret reached the log")
	}
	f.assertTempClean(t)
}

func TestRunEngineAvailability(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		engines []string
		state   domain.ScanState
		partial bool
		reason  string
	}{
		{"unknown engine beside builtin", []string{builtin.Name, "sarif"}, domain.ScanStateCompleted, true, "engine sarif is not available"},
		{"only unknown engines", []string{"agent"}, domain.ScanStateFailed, false, "no engine could run"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, time.Minute)
			id, fence := f.claimed(t, tc.engines...)
			d := f.deps
			d.Fence = fence
			if err := runner.Run(t.Context(), id, d); err != nil {
				t.Fatalf("Run: %v", err)
			}
			s := f.scan(t, id)
			if s.State != tc.state || s.Partial != tc.partial || !strings.Contains(s.Reason, tc.reason) {
				t.Errorf("state %s partial %v reason %q", s.State, s.Partial, s.Reason)
			}
		})
	}
}

func TestRunCancelRequested(t *testing.T) {
	t.Parallel()
	f := setup(t, time.Minute)
	slow := &blockingEngine{started: make(chan struct{})}
	f.deps.Engines["slow"] = slow
	id, fence := f.claimed(t, "slow")
	d := f.deps
	d.Fence = fence
	done := make(chan error, 1)
	go func() { done <- runner.Run(t.Context(), id, d) }()
	<-slow.started
	start := time.Now()
	if _, err := f.h.RequestCancel.Handle(f.ctx, commands.RequestCancel{ScanID: id, Reason: "not needed"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := f.scan(t, id)
	if s.State != domain.ScanStateCancelled || !strings.Contains(s.Reason, "not needed") {
		t.Fatalf("state %s reason %q", s.State, s.Reason)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("cancellation took %s, want at most 2s", took)
	}
	f.assertTempClean(t)
}

func TestRunTimesOut(t *testing.T) {
	t.Parallel()
	f := setup(t, time.Minute)
	slow := &blockingEngine{started: make(chan struct{})}
	f.deps.Engines["slow"] = slow
	id, fence := f.claimed(t, "slow")
	d := f.deps
	d.Fence = fence
	d.ScanTimeout = 300 * time.Millisecond
	if err := runner.Run(t.Context(), id, d); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s := f.scan(t, id); s.State != domain.ScanStateTimedOut || !strings.Contains(s.Reason, "timeout") {
		t.Fatalf("state %s reason %q", s.State, s.Reason)
	}
}

func TestRunStopsWhenClaimLost(t *testing.T) {
	t.Parallel()
	f := setup(t, 400*time.Millisecond) // renewals every ~200ms
	slow := &blockingEngine{started: make(chan struct{})}
	f.deps.Engines["slow"] = slow
	id, fence := f.claimed(t, "slow")
	d := f.deps
	d.Fence = fence
	done := make(chan error, 1)
	go func() { done <- runner.Run(t.Context(), id, d) }()
	<-slow.started
	// The control plane ends the scan behind the runner's back.
	if _, err := f.h.FailScan.Handle(f.ctx, commands.FailScan{ScanID: id, Reason: "operator"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, runner.ErrLeaseLost) {
		t.Fatalf("Run = %v, want ErrLeaseLost", err)
	}
	types := f.types(t, id)
	if types[len(types)-1] != "ScanFailed" {
		t.Errorf("events %v: the runner wrote after losing its claim", types)
	}
	f.assertTempClean(t)
}

func TestRunRefusesAStaleFence(t *testing.T) {
	t.Parallel()
	f := setup(t, time.Minute)
	id, fence := f.claimed(t, builtin.Name)
	d := f.deps
	d.Fence = fence + 1
	if err := runner.Run(t.Context(), id, d); !errors.Is(err, runner.ErrNotRunnable) {
		t.Fatalf("Run = %v, want ErrNotRunnable", err)
	}
	if s := f.scan(t, id); s.State != domain.ScanStateClaimed || s.Version != 2 {
		t.Errorf("scan %s at version %d: a stale runner wrote", s.State, s.Version)
	}
}

func TestRunFailsOnAMissingSnapshotBlob(t *testing.T) {
	t.Parallel()
	f := setup(t, time.Minute)
	id, fence := f.claimed(t, builtin.Name)
	repo, _, err := f.h.Streams.Repositories.Load(f.ctx, f.repoID)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := snapshot.BlobKey(repo.Snapshots[0].Digest)
	if err := f.blobs.Delete(f.ctx, key); err != nil {
		t.Fatal(err)
	}
	d := f.deps
	d.Fence = fence
	if err := runner.Run(t.Context(), id, d); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s := f.scan(t, id); s.State != domain.ScanStateFailed || !strings.Contains(s.Reason, "cannot download snapshot") {
		t.Fatalf("state %s reason %q", s.State, s.Reason)
	}
	f.assertTempClean(t)
}

func TestRunLeavesTheScanWhenStopped(t *testing.T) {
	t.Parallel()
	f := setup(t, time.Minute)
	slow := &blockingEngine{started: make(chan struct{})}
	f.deps.Engines["slow"] = slow
	id, fence := f.claimed(t, "slow")
	d := f.deps
	d.Fence = fence
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx, id, d) }()
	<-slow.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if s := f.scan(t, id); s.State != domain.ScanStateRunning {
		t.Errorf("state %s, want running (left for the reaper)", s.State)
	}
	f.assertTempClean(t)
}
