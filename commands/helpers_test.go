package commands_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/internal/testkit"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	alice  = "alice"
	digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	commit = "0123456789abcdef0123456789abcdef01234567"
)

// openSQLite opens a real SQLite store in a temp dir.
func openSQLite(t *testing.T) eventstore.Store { return testkit.SQLiteStore(t) }

// openPostgres opens a real PostgreSQL store in a schema of its own.
func openPostgres(t *testing.T) eventstore.Store { return testkit.PostgresStore(t) }

// onStores runs fn as a parallel subtest against each real store.
func onStores(t *testing.T, fn func(t *testing.T, open func(*testing.T) eventstore.Store)) {
	t.Helper()
	for _, s := range []struct {
		name string
		open func(*testing.T) eventstore.Store
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			fn(t, s.open)
		})
	}
}

// env is one test's store, handlers, clock and actor context.
type env struct {
	t     *testing.T
	store eventstore.Store
	h     *commands.Handlers
	clock *testkit.Clock
	ctx   context.Context
}

func newEnv(t *testing.T, store eventstore.Store, tweak ...func(*commands.Options)) *env {
	t.Helper()
	c := testkit.NewClock(t0)
	opts := commands.Options{Clock: c.Now, LeaseDuration: time.Minute, MaxScanAttempts: 2}
	for _, f := range tweak {
		f(&opts)
	}
	h := testkit.Handlers(t, store, opts)
	return &env{t: t, store: store, h: h, clock: c, ctx: commands.WithRequest(t.Context(), commands.Request{Actor: alice})}
}

func must[R any](t *testing.T) func(R, error) R {
	t.Helper()
	return func(r R, err error) R {
		t.Helper()
		if err != nil {
			t.Fatalf("command failed: %v", err)
		}
		return r
	}
}

func (e *env) project() string {
	e.t.Helper()
	return must[commands.ProjectResult](e.t)(e.h.CreateProject.Handle(e.ctx, commands.CreateProject{Name: "Payments"})).Project.ID
}

func (e *env) archiveRepo(projectID string) string {
	e.t.Helper()
	return must[commands.RepositoryResult](e.t)(e.h.AddRepository.Handle(e.ctx, commands.AddRepository{
		ProjectID: projectID, Name: "api", Source: domain.Source{Kind: domain.SourceArchive}})).Repository.ID
}

func (e *env) snapshot(repoID string) string {
	e.t.Helper()
	return must[commands.SnapshotResult](e.t)(e.h.RecordSnapshotCaptured.Handle(e.ctx, commands.RecordSnapshotCaptured{
		RepositoryID: repoID, Capture: domain.Capture{Digest: digest, SizeBytes: 10, FileCount: 1}})).Snapshot.ID
}

// scan returns a requested scan of a new project's archive repository.
func (e *env) scan() string {
	e.t.Helper()
	repo := e.archiveRepo(e.project())
	e.snapshot(repo)
	return must[commands.ScanResult](e.t)(e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: repo})).Scan.ID
}

// running claims, launches and starts the scan and returns its fence.
func (e *env) running(scanID string) uint64 {
	e.t.Helper()
	c := must[commands.LeaseResult](e.t)(e.h.ClaimScan.Handle(e.ctx, commands.ClaimScan{ScanID: scanID, WorkerID: "worker-1"}))
	must[commands.ScanResult](e.t)(e.h.LaunchRunner.Handle(e.ctx, commands.LaunchRunner{ScanID: scanID, Fence: c.Fence, Launcher: "inprocess", JobID: "g1"}))
	must[commands.ScanResult](e.t)(e.h.StartScan.Handle(e.ctx, commands.StartScan{ScanID: scanID, Fence: c.Fence}))
	return c.Fence
}

// events reads a whole stream.
func (e *env) events(stream eventstore.StreamID) []eventstore.RecordedEvent {
	e.t.Helper()
	recs, err := e.store.ReadStream(e.t.Context(), stream, 1, 0)
	if err != nil {
		e.t.Fatalf("read %s: %v", stream, err)
	}
	return recs
}

func types(recs []eventstore.RecordedEvent) string {
	s := make([]string, len(recs))
	for i, r := range recs {
		s[i] = r.Type
	}
	return strings.Join(s, ",")
}

func finding(i int) domain.Finding {
	return domain.Finding{
		Fingerprint: fmt.Sprintf("fp-%d", i), RuleID: "secrets.aws-key", Title: "AWS key",
		Severity: domain.SeverityHigh, CWE: "CWE-798", Engine: domain.EngineBuiltin,
		File: fmt.Sprintf("src/f%d.go", i), StartLine: 3, EndLine: 3, Snippet: "key = \"AKIA****\"", Confidence: 0.9,
	}
}

func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want errors.Is %v", err, target)
	}
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var ia *domain.InvalidArgumentError
	if !errors.As(err, &ia) {
		t.Fatalf("err = %v, want *domain.InvalidArgumentError for %q", err, field)
	}
	if ia.Field != field {
		t.Fatalf("field = %q (%v), want %q", ia.Field, err, field)
	}
	wantIs(t, err, domain.ErrInvalidArgument)
}

func errorsIsConcurrency(err error) bool { return errors.Is(err, eventstore.ErrConcurrency) }

// readAfter follows the global order from after until it has n events. On a
// shared PostgreSQL, ReadAll holds events back while older transactions of
// other tests run, so it waits (bounded) instead of reading once.
func readAfter(t *testing.T, s eventstore.Store, after eventstore.Position, n int) []eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out []eventstore.RecordedEvent
	for len(out) < n {
		page, next, err := s.ReadAll(ctx, eventstore.Query{After: after, Limit: n - len(out)})
		if err != nil {
			t.Fatalf("read all after %v: %v", after, err)
		}
		out, after = append(out, page...), next
		if len(out) < n {
			if err := s.Wait(ctx, after); err != nil {
				t.Fatalf("wait after %v with %d of %d events: %v", after, len(out), n, err)
			}
		}
	}
	return out
}
