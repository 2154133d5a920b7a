package sarif_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/internal/testkit"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// schemaPath is the official OASIS schema, kept beside the checkout (never
// copied into it): <repo>/../shared/testdata, seen from this package's
// directory.
var schemaPath = filepath.Join("..", "..", "..", "shared", "testdata", "sarif-schema-2.1.0.json")

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// loadSchema compiles the schema once; it returns nil and the reason when
// the file is missing.
func loadSchema() (*jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		if _, schemaErr = os.Stat(schemaPath); schemaErr != nil {
			return
		}
		schema, schemaErr = jsonschema.NewCompiler().Compile(schemaPath)
	})
	return schema, schemaErr
}

// validateDoc checks doc against the official schema when it is present;
// TestExportMatchesOfficialSchema is the test that insists on it.
func validateDoc(t *testing.T, doc []byte) {
	t.Helper()
	sch, err := loadSchema()
	if err != nil {
		if os.IsNotExist(err) {
			return
		}
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("exported document is not JSON: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("exported SARIF does not match the official schema:\n%v\n%s", err, doc)
	}
}

// export exports and validates.
func export(t *testing.T, s *domain.Scan, fs []sarif.Finding, rules []sarif.Rule) []byte {
	t.Helper()
	doc, err := sarif.Export(s, fs, rules, sarif.ExportOptions{ToolVersion: "1.2.3"})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	validateDoc(t, doc)
	return doc
}

func fingerprinter(t *testing.T) *engine.Fingerprinter { return testkit.Fingerprinter(t) }

func builtinEngine(t *testing.T, log *slog.Logger) *builtin.Engine {
	t.Helper()
	b, err := builtin.New(fingerprinter(t), builtin.WithLogger(log), builtin.WithWorkers(2))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func importer(t *testing.T, engineName string, limits sarif.Limits) *sarif.Importer {
	t.Helper()
	im, err := sarif.NewImporter(fingerprinter(t), sarif.ImportOptions{Engine: engineName, Limits: limits, Secrets: builtinEngine(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func openSQLite(t *testing.T) eventstore.Store { return testkit.SQLiteStore(t) }

func openPostgres(t *testing.T) eventstore.Store { return testkit.PostgresStore(t) }

// env is a store with handlers, a classifier and one archive repository
// with a captured snapshot.
type env struct {
	t     *testing.T
	store eventstore.Store
	h     *commands.Handlers
	c     *classify.Classifier
	r     *classify.Reader
	ctx   context.Context
	repo  string
}

func newEnv(t *testing.T, store eventstore.Store, log *slog.Logger) *env {
	t.Helper()
	now := func() time.Time { return t0 }
	h := testkit.Handlers(t, store, commands.Options{Clock: now, Logger: log})
	c, err := classify.New(store, classify.Options{Clock: now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r, err := classify.NewReader(store)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, h: h, c: c, r: r, ctx: commands.WithRequest(t.Context(), commands.Request{Actor: "alice"})}
	p, err := h.CreateProject.Handle(e.ctx, commands.CreateProject{Name: "Payments"})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := h.AddRepository.Handle(e.ctx, commands.AddRepository{ProjectID: p.Project.ID, Name: "api", Source: domain.Source{Kind: domain.SourceArchive}})
	if err != nil {
		t.Fatal(err)
	}
	e.repo = repo.Repository.ID
	if _, err := h.RecordSnapshotCaptured.Handle(e.ctx, commands.RecordSnapshotCaptured{RepositoryID: e.repo,
		Capture: domain.Capture{Digest: "sha256:" + string(bytes.Repeat([]byte("ab"), 32)), SizeBytes: 10, FileCount: 1}}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) request(engines ...string) string {
	e.t.Helper()
	r, err := e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: e.repo, Engines: engines})
	if err != nil {
		e.t.Fatal(err)
	}
	return r.Scan.ID
}

// toDomain turns engine findings into domain findings for RecordFindings.
func toDomain(fs []engine.Finding) []domain.Finding {
	out := make([]domain.Finding, len(fs))
	for i, f := range fs {
		out[i] = domain.Finding{Fingerprint: f.Fingerprint, RuleID: f.RuleID, Title: f.Title, Severity: domain.Severity(f.Severity),
			CWE: f.CWE, Engine: f.Engine, File: f.File, StartLine: f.StartLine, EndLine: f.EndLine, Snippet: f.Snippet,
			Message: f.Message, Remediation: f.Remediation, Confidence: f.Confidence}
	}
	return out
}

// runScan claims, starts, records and completes a scan.
func (e *env) runScan(scanID string, fs []domain.Finding) {
	e.t.Helper()
	c, err := e.h.ClaimScan.Handle(e.ctx, commands.ClaimScan{ScanID: scanID, WorkerID: "w1"})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.h.StartScan.Handle(e.ctx, commands.StartScan{ScanID: scanID, Fence: c.Fence}); err != nil {
		e.t.Fatal(err)
	}
	if len(fs) > 0 {
		if _, err := e.h.RecordFindings.Handle(e.ctx, commands.RecordFindings{ScanID: scanID, Fence: c.Fence, Findings: fs}); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := e.h.CompleteScan.Handle(e.ctx, commands.CompleteScan{ScanID: scanID, Fence: c.Fence}); err != nil {
		e.t.Fatal(err)
	}
}

// exportScan exports a classified scan as the HTTP layer would.
func (e *env) exportScan(scanID string, rules []sarif.Rule) []byte {
	e.t.Helper()
	s, fs, err := e.r.Findings(e.t.Context(), scanID)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]sarif.Finding, len(fs))
	for i, f := range fs {
		out[i] = sarif.Finding{Finding: f.Finding, Diff: f.Diff}
	}
	return export(e.t, s, out, rules)
}
