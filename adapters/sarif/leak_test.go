package sarif_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/internal/testkit"
)

// TestSecretsNeverLeak plants an AWS key, a GitHub token, a private key and
// a Stripe key in a snapshot, runs the builtin engine, records, completes,
// classifies and exports the scan — and uploads a gitleaks document that
// quotes the same secrets to a second scan — then searches every stored
// event (data and metadata), every finding field, both SARIF exports and
// the captured log for the planted values.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	logs := &testkit.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, openSQLite(t), log)
	ctx := t.Context()

	dir := t.TempDir()
	var secrets []string
	for _, rule := range []string{"secrets.aws-access-key-id", "secrets.github-token", "secrets.private-key", "secrets.stripe-live-key"} {
		ex := secretSample(t, rule)
		p := filepath.Join(dir, filepath.FromSlash(ex.File))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(ex.Code), 0o644); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, ex.Secret)
	}
	// Unreadable-file and skipped-file log lines must not leak either.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("nothing here\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	b := builtinEngine(t, log)
	var found []engine.Finding
	if err := b.Scan(ctx, engine.Target{Root: dir}, func(f engine.Finding) error {
		found = append(found, f)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rules := map[string]bool{}
	for _, f := range found {
		rules[f.RuleID] = true
	}
	for _, r := range []string{"secrets.aws-access-key-id", "secrets.github-token", "secrets.private-key", "secrets.stripe-live-key"} {
		if !rules[r] {
			t.Fatalf("the builtin engine did not find %s in the planted snapshot (found %v)", r, rules)
		}
	}
	scanID := e.request(domain.EngineBuiltin)
	e.runScan(scanID, toDomain(found))
	if _, err := e.c.Classify(ctx, scanID); err != nil {
		t.Fatal(err)
	}
	exports := [][]byte{e.exportScan(scanID, sarif.RulesFromBuiltin(b.Rules()))}

	// The same secrets arrive in an uploaded gitleaks document.
	im, err := sarif.NewImporter(fingerprinter(t), sarif.ImportOptions{Engine: domain.EngineSARIFUpload, Secrets: b, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	up, err := sarif.NewUploader(e.h, im, log)
	if err != nil {
		t.Fatal(err)
	}
	uploadID := e.request(domain.EngineSARIFUpload)
	var results []string
	for i, s := range secrets {
		one := gitleaksDoc(strings.ReplaceAll(s, "\n", `\n`), []string{"a.py", "b.sh", "c.key", "d.js"}[i])
		var l sarif.Log
		if err := json.Unmarshal([]byte(one), &l); err != nil {
			t.Fatal(err)
		}
		r, _ := json.Marshal(l.Runs[0].Results[0])
		results = append(results, string(r))
	}
	doc := `{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "gitleaks"}}, "results": [` + strings.Join(results, ",") + `]}]}`
	if _, err := up.ImportUpload(e.ctx, uploadID, strings.NewReader(doc), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Classify(ctx, uploadID); err != nil {
		t.Fatal(err)
	}
	exports = append(exports, e.exportScan(uploadID, nil))

	// Search everything.
	check := func(where, text string) {
		t.Helper()
		for _, s := range secrets {
			for _, piece := range strings.Split(s, "\n") {
				if len(piece) >= 8 && strings.Contains(text, piece) {
					t.Errorf("planted secret %.8q… appears in %s", piece, where)
				}
			}
		}
	}
	var events int
	for after := (eventstore.Position{}); ; {
		page, next, err := e.store.ReadAll(ctx, eventstore.Query{After: after, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range page {
			meta, _ := json.Marshal(rec.Metadata)
			check(string(rec.StreamID)+" "+rec.Type+" data", string(rec.Data))
			check(string(rec.StreamID)+" "+rec.Type+" metadata", string(meta))
			events++
		}
		if len(page) == 0 {
			break
		}
		after = next
	}
	for _, id := range []string{scanID, uploadID} {
		_, fs, err := e.r.Findings(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) < 4 {
			t.Fatalf("scan %s has %d findings, want at least 4", id, len(fs))
		}
		for _, f := range fs {
			all, _ := json.Marshal(f)
			check("finding "+f.ID, string(all))
		}
	}
	for i, doc := range exports {
		check("SARIF export "+string(rune('1'+i)), string(doc))
	}
	check("the log", logs.String())
	if events < 20 || logs.String() == "" {
		t.Fatalf("searched %d events and %d bytes of log: too little to mean anything", events, len(logs.String()))
	}
}
