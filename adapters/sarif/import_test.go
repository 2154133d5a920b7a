package sarif_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/domain"
)

// secretSample returns the positive sample of a builtin secret rule and
// its planted secret.
func secretSample(t *testing.T, ruleID string) builtin.Example {
	t.Helper()
	for _, r := range builtinEngine(t, nil).Rules() {
		if r.ID != ruleID {
			continue
		}
		for _, ex := range r.Examples.Positive {
			if ex.Secret != "" {
				return ex
			}
		}
	}
	t.Fatalf("no positive sample with a secret for %s", ruleID)
	return builtin.Example{}
}

const semgrepDoc = `{
  "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
  "version": "2.1.0",
  "runs": [{
    "tool": {"driver": {"name": "Semgrep OSS", "semanticVersion": "1.50.0", "rules": [{
      "id": "python.lang.security.audit.formatted-sql-query.formatted-sql-query",
      "name": "python.lang.security.audit.formatted-sql-query.formatted-sql-query",
      "shortDescription": {"text": "Semgrep Finding: formatted-sql-query"},
      "fullDescription": {"text": "Detected possible formatted SQL query."},
      "help": {"text": "Use parameterized queries instead.", "markdown": "Use **parameterized** queries."},
      "defaultConfiguration": {"level": "warning"},
      "properties": {"precision": "very-high", "tags": ["CWE-89: Improper Neutralization of Special Elements used in an SQL Command ('SQL Injection')", "OWASP-A03:2021 - Injection", "security"]}
    }]}},
    "results": [{
      "ruleId": "python.lang.security.audit.formatted-sql-query.formatted-sql-query",
      "level": "error",
      "message": {"text": "Detected possible formatted SQL query. Use parameterized queries instead."},
      "locations": [{"physicalLocation": {"artifactLocation": {"uri": "app/db.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 10, "endLine": 11, "snippet": {"text": "cur.execute(\"SELECT * FROM t WHERE id=%s\" % id)"}}}}],
      "fingerprints": {"matchBasedId/v1": "8f2e1c"}
    }, {
      "ruleId": "python.lang.security.audit.formatted-sql-query.formatted-sql-query",
      "level": "error",
      "message": {"text": "Detected possible formatted SQL query."},
      "locations": [{"physicalLocation": {"artifactLocation": {"uri": "./app/other%20db.py"}, "region": {"startLine": 4}}}]
    }]
  }]
}`

const codeqlDoc = `{
  "version": "2.1.0",
  "runs": [{
    "tool": {"driver": {"name": "CodeQL", "rules": [
      {"id": "js/unused-local", "shortDescription": {"text": "Unused variable"}, "properties": {"tags": ["maintainability"]}},
      {"id": "js/xss", "name": "js/xss", "shortDescription": {"text": "Client-side cross-site scripting"},
       "defaultConfiguration": {"level": "error"},
       "properties": {"security-severity": "9.8", "precision": "high", "tags": ["security", "external/cwe/cwe-079"]}},
      {"id": "js/path-injection", "shortDescription": {"text": "Uncontrolled data used in path expression"},
       "relationships": [{"target": {"id": "22", "toolComponent": {"name": "CWE"}}, "kinds": ["superset"]}],
       "properties": {"security-severity": 7.5}}
    ]}},
    "results": [
      {"ruleId": "js/xss", "ruleIndex": 1, "message": {"text": "Cross-site scripting vulnerability due to user-provided value."},
       "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/index.js", "index": 0}, "region": {"startLine": 42, "startColumn": 3}}}],
       "partialFingerprints": {"primaryLocationLineHash": "39fa2ee980eb94b0:1"}},
      {"rule": {"id": "js/path-injection", "index": 2}, "message": {"text": "This path depends on a user-provided value."},
       "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/files.js"}, "region": {"startLine": 7, "endLine": 9}}}]},
      {"ruleId": "js/xss", "kind": "pass", "message": {"text": "ok"}},
      {"ruleId": "js/xss", "baselineState": "absent", "message": {"text": "gone"},
       "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/old.js"}}}]},
      {"ruleId": "js/xss", "message": {"text": "no location"}}
    ]
  }]
}`

func gitleaksDoc(secret, file string) string {
	return fmt.Sprintf(`{
  "version": "2.1.0",
  "runs": [{
    "tool": {"driver": {"name": "gitleaks", "rules": [{"id": "aws-access-token", "shortDescription": {"text": "AWS Access Token"}}]}},
    "results": [{
      "ruleId": "aws-access-token",
      "message": {"text": "aws-access-token has detected secret for file %[2]s: %[1]s"},
      "locations": [{"physicalLocation": {"artifactLocation": {"uri": "%[2]s"}, "region": {"startLine": 1, "snippet": {"text": "%[1]s"}}}}],
      "partialFingerprints": {"commitSha": "", "email": "", "author": ""}
    }]
  }]
}`, secret, file)
}

func TestImportThirdPartyTools(t *testing.T) {
	t.Parallel()
	im := importer(t, "sarif", sarif.Limits{})
	aws := secretSample(t, "secrets.aws-access-key-id")
	for _, tc := range []struct {
		name string
		doc  string
		want []engine.Finding // compared on the fields set
	}{
		{"semgrep", semgrepDoc, []engine.Finding{
			{RuleID: "python.lang.security.audit.formatted-sql-query.formatted-sql-query", Title: "Semgrep Finding: formatted-sql-query",
				Severity: "high", CWE: "CWE-89", Category: "injection", File: "app/db.py", StartLine: 10, EndLine: 11,
				Snippet: `cur.execute("SELECT * FROM t WHERE id=%s" % id)`, Remediation: "Use parameterized queries instead.", Confidence: 0.95},
			{RuleID: "python.lang.security.audit.formatted-sql-query.formatted-sql-query", Severity: "high", CWE: "CWE-89",
				File: "app/other db.py", StartLine: 4, EndLine: 4, Confidence: 0.95},
		}},
		{"codeql", codeqlDoc, []engine.Finding{
			{RuleID: "js/xss", Title: "Client-side cross-site scripting", Severity: "critical", CWE: "CWE-79", Category: "injection",
				File: "src/index.js", StartLine: 42, EndLine: 42, Confidence: 0.9},
			{RuleID: "js/path-injection", Severity: "high", CWE: "CWE-22", File: "src/files.js", StartLine: 7, EndLine: 9, Confidence: sarif.DefaultConfidence},
		}},
		{"gitleaks", gitleaksDoc(aws.Secret, aws.File), []engine.Finding{
			{RuleID: "aws-access-token", Title: "AWS Access Token", Severity: "medium", Category: "secrets", File: aws.File, StartLine: 1, EndLine: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := im.Import([]byte(tc.doc), "")
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d findings, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				check := func(field string, got, want any) {
					t.Helper()
					if want != "" && want != 0 && want != 0.0 && got != want {
						t.Errorf("finding %d %s = %v, want %v", i, field, got, want)
					}
				}
				check("rule", g.RuleID, w.RuleID)
				check("title", g.Title, w.Title)
				check("severity", g.Severity, w.Severity)
				check("cwe", g.CWE, w.CWE)
				check("category", g.Category, w.Category)
				check("file", g.File, w.File)
				check("start", g.StartLine, w.StartLine)
				check("end", g.EndLine, w.EndLine)
				check("snippet", g.Snippet, w.Snippet)
				check("remediation", g.Remediation, w.Remediation)
				check("confidence", g.Confidence, w.Confidence)
				if g.Engine != "sarif" || len(g.Fingerprint) != 64 {
					t.Errorf("finding %d: engine %q fingerprint %q", i, g.Engine, g.Fingerprint)
				}
				df := toDomain([]engine.Finding{g})[0]
				df.ID = "f1"
				if err := df.Validate(); err != nil {
					t.Errorf("finding %d does not validate: %v", i, err)
				}
				for _, field := range []string{g.Snippet, g.Message, g.Title, g.Remediation, g.File} {
					if strings.Contains(field, aws.Secret) {
						t.Errorf("finding %d keeps the secret in %q", i, field)
					}
				}
			}
			// Deterministic: the same document gives the same fingerprints.
			again, err := im.Import([]byte(tc.doc), "")
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if again[i].Fingerprint != got[i].Fingerprint {
					t.Fatalf("fingerprint of finding %d changed between imports", i)
				}
			}
		})
	}
}

func TestImportRedactsSecretsInSnippets(t *testing.T) {
	t.Parallel()
	im := importer(t, "sarif", sarif.Limits{})
	gh := secretSample(t, "secrets.github-token")
	// A non-secret rule whose snippet happens to hold a token: the builtin
	// secret rules redact it.
	doc := fmt.Sprintf(`{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Semgrep"}}, "results": [{
		"ruleId": "bash.curl.insecure", "message": {"text": %q},
		"locations": [{"physicalLocation": {"artifactLocation": {"uri": %q}, "region": {"startLine": 1, "snippet": {"text": %q}}}}]}]}]}`,
		"curl with "+gh.Secret, gh.File, strings.TrimSpace(gh.Code))
	got, err := im.Import([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || strings.Contains(got[0].Snippet, gh.Secret) || strings.Contains(got[0].Message, gh.Secret) ||
		!strings.Contains(got[0].Snippet, "****") {
		t.Fatalf("finding = %+v", got)
	}
}

func TestImportRefusesBadDocuments(t *testing.T) {
	t.Parallel()
	im := importer(t, "sarif", sarif.Limits{MaxResults: 2, MaxBytes: 4000, MaxRuns: 2})
	result := func(uri string) string {
		return fmt.Sprintf(`{"ruleId": "r", "message": {"text": "m"}, "locations": [{"physicalLocation": {"artifactLocation": {"uri": %q}}}]}`, uri)
	}
	doc := func(results ...string) string {
		return `{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}, "results": [` + strings.Join(results, ",") + `]}]}`
	}
	for _, tc := range []struct {
		name, doc, root string
		want            error
		reason          string
	}{
		{"not json", `{"version": `, "", sarif.ErrInvalid, "malformed JSON"},
		{"old version", `{"version": "2.0.0", "runs": []}`, "", sarif.ErrInvalid, `version "2.0.0"`},
		{"no version", `{"runs": []}`, "", sarif.ErrInvalid, "version"},
		{"wrong type", `{"version": "2.1.0", "runs": {}}`, "", sarif.ErrInvalid, "runs"},
		{"absolute path", doc(result("/etc/passwd")), "", sarif.ErrInvalid, "absolute"},
		{"file uri", doc(result("file:///etc/passwd")), "", sarif.ErrInvalid, "absolute"},
		{"file uri outside root", doc(result("file:///etc/passwd")), "/snap", sarif.ErrInvalid, "outside"},
		{"dot dot", doc(result("src/../../etc/passwd")), "", sarif.ErrInvalid, "'..'"},
		{"encoded dot dot", doc(result("src/%2E%2E/%2E%2E/x")), "", sarif.ErrInvalid, "'..'"},
		{"backslash", doc(result(`src\\x.c`)), "", sarif.ErrInvalid, "backslash"},
		{"http uri", doc(result("https://example.com/x.js")), "", sarif.ErrInvalid, "absolute"},
		{"no rule", doc(`{"message": {"text": "m"}, "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a.go"}}}]}`), "", sarif.ErrInvalid, "no ruleId"},
		{"too many results", doc(result("a"), result("b"), result("c")), "", sarif.ErrTooLarge, "3"},
		{"too many runs", `{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}}, {"tool": {"driver": {"name": "t"}}}, {"tool": {"driver": {"name": "t"}}}]}`, "", sarif.ErrTooLarge, "runs"},
		{"too many bytes", doc(result(strings.Repeat("a", 4000))), "", sarif.ErrTooLarge, "bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := im.Import([]byte(tc.doc), tc.root)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == sarif.ErrInvalid && !errors.Is(err, domain.ErrInvalidArgument) {
				t.Fatalf("err = %v does not match domain.ErrInvalidArgument", err)
			}
			if tc.want == sarif.ErrInvalid && !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v does not say %q", err, tc.reason)
			}
		})
	}
	// Under a root, a file URI inside it is made relative.
	got, err := im.Import([]byte(doc(result("file:///snap/root/src/a.go"))), "/snap/root")
	if err != nil || len(got) != 1 || got[0].File != "src/a.go" {
		t.Fatalf("rooted import = %+v, %v", got, err)
	}
}

// TestRoundTrip: exporting findings and importing the document gives the
// same findings back (rule, file, lines, severity, CWE, fingerprint).
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b := builtinEngine(t, nil)
	var found []engine.Finding
	for _, r := range b.Rules() {
		for _, ex := range r.Examples.Positive {
			found = append(found, b.ScanContent(ex.File, []byte(ex.Code))...)
		}
	}
	if len(found) < 20 {
		t.Fatalf("only %d findings from the builtin samples", len(found))
	}
	seen := map[string]bool{}
	var fs []sarif.Finding
	var dfs []domain.Finding
	for i, f := range toDomain(found) {
		if seen[f.Fingerprint] {
			continue
		}
		seen[f.Fingerprint] = true
		f.ID = fmt.Sprintf("f%d", i)
		fs = append(fs, sarif.Finding{Finding: f, Diff: []string{"new", "unchanged", "reopened"}[i%3]})
		dfs = append(dfs, f)
	}
	doc := export(t, completedScan(t, dfs...), fs, sarif.RulesFromBuiltin(b.Rules()))
	got, err := importer(t, domain.EngineSARIFUpload, sarif.Limits{}).Import(doc, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(fs) {
		t.Fatalf("imported %d findings, exported %d", len(got), len(fs))
	}
	for i, g := range got {
		w := fs[i]
		if g.RuleID != w.RuleID || g.File != w.File || g.StartLine != w.StartLine || g.EndLine != w.EndLine ||
			g.Severity != string(w.Severity) || g.CWE != w.CWE || g.Fingerprint != w.Fingerprint || g.Confidence != w.Confidence ||
			g.Title != w.Title || g.Remediation != w.Remediation {
			t.Errorf("finding %d:\n got %+v\nwant %+v", i, g, w.Finding)
		}
	}
}
