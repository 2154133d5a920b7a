package sarif_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/domain"
)

// completedScan folds a completed, classified scan of the findings.
func completedScan(t *testing.T, fs ...domain.Finding) *domain.Scan {
	t.Helper()
	events := []domain.Event{
		domain.ScanRequested{ScanID: "scan1", ProjectID: "p1", RepositoryID: "r1", SnapshotID: "s1",
			Engines: []string{"builtin", "sarif"}, RequestedBy: "alice", At: t0},
		domain.ScanClaimed{WorkerID: "w1", Fence: 1, LeaseUntil: t0.Add(time.Hour), At: t0},
		domain.ScanStarted{Fence: 1, At: t0},
	}
	for _, f := range fs {
		events = append(events, domain.FindingRecorded{Fence: 1, Finding: f, At: t0})
	}
	events = append(events, domain.ScanCompleted{Fence: 1, At: t0.Add(time.Minute)},
		domain.ScanClassified{BaseScanID: "scan0", Part: 1, Parts: 1, At: t0.Add(time.Minute)})
	s, err := domain.FoldScan(events)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sampleFindings() []sarif.Finding {
	return []sarif.Finding{
		{Finding: domain.Finding{ID: "f1", Fingerprint: "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", RuleID: "secrets.aws-access-key-id",
			Title: "AWS access key ID", Severity: domain.SeverityCritical, CWE: "CWE-798", Engine: "builtin", File: "config/prod settings.py",
			StartLine: 3, EndLine: 3, Snippet: `AWS_KEY = "AKIA****"`, Message: "hard-coded AWS key", Remediation: "Rotate the key.", Confidence: 0.95}, Diff: "new"},
		{Finding: domain.Finding{ID: "f2", Fingerprint: "1a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", RuleID: "injection.sql-concat",
			Title: "SQL built by concatenation", Severity: domain.SeverityHigh, CWE: "CWE-89", Engine: "builtin", File: "db/query.go",
			StartLine: 10, EndLine: 12, Confidence: 0.8}, Diff: "reopened"},
		{Finding: domain.Finding{ID: "f3", Fingerprint: "2a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", RuleID: "semgrep.custom",
			Title: "Custom rule", Severity: domain.SeverityInfo, Engine: "sarif", File: "a:b/c.js", StartLine: 1, EndLine: 1, Confidence: 0.5}, Diff: "unchanged"},
		{Finding: domain.Finding{ID: "f4", Fingerprint: "3a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", RuleID: "crypto.md5",
			Title: "MD5", Severity: domain.SeverityMedium, CWE: "CWE-328", Engine: "builtin", File: "h.py", StartLine: 2, EndLine: 2, Confidence: 0.7}},
		{Finding: domain.Finding{ID: "f5", Fingerprint: "4a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", RuleID: "config.debug",
			Title: "Debug on", Severity: domain.SeverityLow, Engine: "builtin", File: "settings.py", StartLine: 7, EndLine: 7, Confidence: 0.6}},
	}
}

var sampleRules = []sarif.Rule{
	{ID: "secrets.aws-access-key-id", Title: "AWS access key ID", CWE: "CWE-798", Severity: domain.SeverityCritical, Category: "secrets",
		Description: "An AWS access key ID is committed.", Remediation: "Rotate the key and load it from the environment."},
	{ID: "injection.sql-concat", Title: "SQL built by concatenation", CWE: "CWE-89", Severity: domain.SeverityHigh, Category: "injection"},
	{ID: "unused.rule", Title: "Not used", Severity: domain.SeverityLow},
}

func TestExportMatchesOfficialSchema(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(schemaPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the SARIF schema %s is required in CI: the shared directory must sit beside the checkout (%v)", schemaPath, err)
		}
		t.Skipf("SKIPPING: the official SARIF schema %s is missing: the ../shared directory beside the checkout is required in CI (CI=true makes this a failure)", schemaPath)
	}
	for name, fs := range map[string][]sarif.Finding{"findings": sampleFindings(), "no findings": nil} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var dfs []domain.Finding
			for _, f := range fs {
				dfs = append(dfs, f.Finding)
			}
			doc := export(t, completedScan(t, dfs...), fs, sampleRules)
			if _, err := loadSchema(); err != nil {
				t.Fatalf("schema: %v", err)
			}
			validateDoc(t, doc)
		})
	}
}

func TestExportShape(t *testing.T) {
	t.Parallel()
	fs := sampleFindings()
	var dfs []domain.Finding
	for _, f := range fs {
		dfs = append(dfs, f.Finding)
	}
	doc := export(t, completedScan(t, dfs...), fs, sampleRules)
	var log sarif.Log
	if err := json.Unmarshal(doc, &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("version %q, %d runs", log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	d := run.Tool.Driver
	if d.Name != "Vega" || d.Version != "1.2.3" {
		t.Fatalf("driver %s %s", d.Name, d.Version)
	}
	// Only the rules the findings use, sorted by ID; unknown ones made from
	// the finding.
	var ids []string
	rules := map[string]sarif.ReportingDescriptor{}
	for _, r := range d.Rules {
		ids = append(ids, r.ID)
		rules[r.ID] = r
	}
	want := []string{"config.debug", "crypto.md5", "injection.sql-concat", "secrets.aws-access-key-id", "semgrep.custom"}
	if len(ids) != len(want) {
		t.Fatalf("rules %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("rules %v, want %v", ids, want)
		}
	}
	aws := rules["secrets.aws-access-key-id"]
	if aws.Help == nil || aws.Help.Text != "Rotate the key and load it from the environment." || aws.FullDescription.Text != "An AWS access key ID is committed." ||
		aws.DefaultConfiguration.Level != "error" || aws.Properties["security-severity"] != "9.5" || aws.Properties["problem.severity"] != "error" {
		t.Fatalf("aws rule = %+v", aws)
	}
	tags := aws.Properties["tags"].([]any)
	if len(tags) != 3 || tags[0] != "security" || tags[1] != "secrets" || tags[2] != "external/cwe/cwe-798" {
		t.Fatalf("tags = %v", tags)
	}
	for _, tc := range []struct {
		rule, score, level string
	}{{"injection.sql-concat", "8.0", "error"}, {"crypto.md5", "5.5", "warning"}, {"config.debug", "3.0", "note"}, {"semgrep.custom", "0.0", "note"}} {
		r := rules[tc.rule]
		if r.Properties["security-severity"] != tc.score || r.DefaultConfiguration.Level != tc.level {
			t.Errorf("%s: security-severity %v level %s, want %s %s", tc.rule, r.Properties["security-severity"], r.DefaultConfiguration.Level, tc.score, tc.level)
		}
	}
	// Results in finding order, with rule indexes, locations, fingerprints
	// and baseline states.
	states := []string{"new", "new", "unchanged", "", ""}
	for i, r := range run.Results {
		f := fs[i]
		if r.RuleID != f.RuleID || d.Rules[*r.RuleIndex].ID != f.RuleID {
			t.Errorf("result %d: rule %s index %d", i, r.RuleID, *r.RuleIndex)
		}
		if r.BaselineState != states[i] {
			t.Errorf("result %d (diff %q): baselineState %q, want %q", i, f.Diff, r.BaselineState, states[i])
		}
		if r.PartialFingerprints["vega/v1"] != f.Fingerprint {
			t.Errorf("result %d: partialFingerprints %v", i, r.PartialFingerprints)
		}
		loc := r.Locations[0].PhysicalLocation
		if loc.ArtifactLocation.URIBaseID != "%SRCROOT%" || loc.Region.StartLine != f.StartLine || loc.Region.EndLine != f.EndLine {
			t.Errorf("result %d: location %+v %+v", i, loc.ArtifactLocation, loc.Region)
		}
		if r.Properties["engine"] != f.Engine || r.Properties["confidence"] != f.Confidence {
			t.Errorf("result %d: properties %v", i, r.Properties)
		}
	}
	if u := run.Results[0].Locations[0].PhysicalLocation.ArtifactLocation.URI; u != "config/prod%20settings.py" {
		t.Errorf("escaped uri = %q", u)
	}
	if u := run.Results[2].Locations[0].PhysicalLocation.ArtifactLocation.URI; u != "./a:b/c.js" {
		t.Errorf("colon uri = %q", u)
	}
	if s := run.Results[0].Locations[0].PhysicalLocation.Region.Snippet; s == nil || s.Text != `AWS_KEY = "AKIA****"` {
		t.Errorf("snippet = %+v", s)
	}
	if run.Properties["vega/baseScanId"] != "scan0" || run.Properties["vega/scanId"] != "scan1" {
		t.Errorf("run properties %v", run.Properties)
	}
}

func TestExportRefusesBadInput(t *testing.T) {
	t.Parallel()
	if _, err := sarif.Export(nil, nil, nil, sarif.ExportOptions{}); err == nil {
		t.Fatal("exported a nil scan")
	}
	bad := sampleFindings()[:1]
	bad[0].File = "/etc/passwd"
	if _, err := sarif.Export(completedScan(t), bad, nil, sarif.ExportOptions{}); err == nil {
		t.Fatal("exported a finding with an absolute path")
	}
}

// TestSchemaCatchesBrokenDocuments proves the validator bites: a document
// the schema forbids is refused.
func TestSchemaCatchesBrokenDocuments(t *testing.T) {
	t.Parallel()
	sch, err := loadSchema()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the SARIF schema %s is required in CI: the shared directory must sit beside the checkout (%v)", schemaPath, err)
		}
		t.Skipf("SKIPPING: the official SARIF schema %s is missing: the ../shared directory beside the checkout is required in CI", schemaPath)
	}
	for name, doc := range map[string]string{
		"bad version":   `{"version": "2.0.0", "runs": []}`,
		"bad level":     `{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"message": {"text": "m"}, "level": "fatal"}]}]}`,
		"unknown field": `{"version": "2.1.0", "runs": [], "extra": 1}`,
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if sch.Validate(inst) == nil {
			t.Errorf("%s: the schema accepted %s", name, doc)
		}
	}
}
