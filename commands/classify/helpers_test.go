package classify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/internal/testkit"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func openSQLite(t testing.TB) eventstore.Store { return testkit.SQLiteStore(t) }

func openPostgres(t testing.TB) eventstore.Store { return testkit.PostgresStore(t) }

// onStores runs fn as a parallel subtest against each real store.
func onStores(t *testing.T, fn func(t *testing.T, store eventstore.Store)) {
	t.Helper()
	for _, s := range []struct {
		name string
		open func(testing.TB) eventstore.Store
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			fn(t, s.open(t))
		})
	}
}

// env is one test's store, command handlers, classifier and reader on one
// repository.
type env struct {
	t     testing.TB
	store eventstore.Store
	h     *commands.Handlers
	c     *classify.Classifier
	r     *classify.Reader
	clock *testkit.Clock
	ctx   context.Context
	repo  string
}

func newEnv(t testing.TB, store eventstore.Store) *env {
	t.Helper()
	c := testkit.NewClock(t0)
	h := testkit.Handlers(t, store, commands.Options{Clock: c.Now})
	cl, err := classify.New(store, classify.Options{Clock: c.Now})
	if err != nil {
		t.Fatalf("new classifier: %v", err)
	}
	r, err := classify.NewReader(store)
	if err != nil {
		t.Fatalf("new reader: %v", err)
	}
	e := &env{t: t, store: store, h: h, c: cl, r: r, clock: c, ctx: commands.WithRequest(t.Context(), commands.Request{Actor: "alice"})}
	p := must(t)(e.h.CreateProject.Handle(e.ctx, commands.CreateProject{Name: "Payments"})).(commands.ProjectResult).Project.ID
	e.repo = must(t)(e.h.AddRepository.Handle(e.ctx, commands.AddRepository{ProjectID: p, Name: "api",
		Source: domain.Source{Kind: domain.SourceArchive}})).(commands.RepositoryResult).Repository.ID
	must(t)(e.h.RecordSnapshotCaptured.Handle(e.ctx, commands.RecordSnapshotCaptured{RepositoryID: e.repo,
		Capture: domain.Capture{Digest: digest, SizeBytes: 10, FileCount: 1}}))
	return e
}

func must(t testing.TB) func(any, error) any {
	t.Helper()
	return func(v any, err error) any {
		t.Helper()
		if err != nil {
			t.Fatalf("command failed: %v", err)
		}
		return v
	}
}

// request requests a scan of the env's repository with the engines (nil:
// builtin).
func (e *env) request(engines ...string) string {
	e.t.Helper()
	if engines == nil {
		engines = []string{domain.EngineBuiltin}
	}
	e.clock.Advance(time.Second)
	return must(e.t)(e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: e.repo, Engines: engines})).(commands.ScanResult).Scan.ID
}

// run claims and starts the scan, records the findings and completes it.
func (e *env) run(scanID string, partial bool, findings ...domain.Finding) {
	e.t.Helper()
	c := must(e.t)(e.h.ClaimScan.Handle(e.ctx, commands.ClaimScan{ScanID: scanID, WorkerID: "w1"})).(commands.LeaseResult)
	must(e.t)(e.h.StartScan.Handle(e.ctx, commands.StartScan{ScanID: scanID, Fence: c.Fence}))
	if len(findings) > 0 {
		must(e.t)(e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: scanID, Fence: c.Fence, Findings: findings}))
	}
	reason := ""
	if partial {
		reason = "engine ai unavailable"
	}
	must(e.t)(e.h.CompleteScan.Handle(e.ctx, commands.CompleteScan{ScanID: scanID, Fence: c.Fence, Partial: partial, Reason: reason}))
}

// scan requests, runs and completes a scan with the findings.
func (e *env) scan(engines []string, partial bool, findings ...domain.Finding) string {
	e.t.Helper()
	id := e.request(engines...)
	e.run(id, partial, findings...)
	return id
}

func (e *env) classify(scanID string) classify.Result {
	e.t.Helper()
	res, err := e.c.Classify(e.t.Context(), scanID)
	if err != nil {
		e.t.Fatalf("classify %s: %v", scanID, err)
	}
	return res
}

func (e *env) issue(fingerprint string) *domain.Issue {
	e.t.Helper()
	iss, _, err := e.h.Streams.Issues.Load(e.t.Context(), domain.IssueID(e.repo, fingerprint))
	if err != nil {
		e.t.Fatalf("load issue of %s: %v", fingerprint, err)
	}
	return iss
}

func (e *env) events(stream eventstore.StreamID) []eventstore.RecordedEvent {
	e.t.Helper()
	recs, err := e.store.ReadStream(e.t.Context(), stream, 1, 0)
	if err != nil {
		e.t.Fatalf("read %s: %v", stream, err)
	}
	return recs
}

// finding is a finding with fingerprint fp found by engine (empty:
// builtin).
func finding(fp, engine string) domain.Finding {
	if engine == "" {
		engine = domain.EngineBuiltin
	}
	return domain.Finding{Fingerprint: fp, RuleID: "secrets.aws-access-key-id", Title: "AWS access key",
		Severity: domain.SeverityHigh, CWE: "CWE-798", Engine: engine, File: "src/" + fp + ".go",
		StartLine: 3, EndLine: 3, Snippet: `key = "AKIA****"`, Confidence: 0.9}
}

func want[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func resultString(r classify.Result) string {
	return fmt.Sprintf("new=%d reopened=%d unchanged=%d fixed=%d base=%q stale=%v skipped=%v",
		r.New, r.Reopened, r.Unchanged, r.Fixed, r.BaseScanID, r.Stale, r.Skipped)
}
