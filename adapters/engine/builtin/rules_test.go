package builtin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/builtin"
)

func newEngine(t testing.TB, opts ...builtin.Option) *builtin.Engine {
	t.Helper()
	fp, err := engine.NewFingerprinter(bytes.Repeat([]byte("k"), engine.MinFingerprintKeySize))
	if err != nil {
		t.Fatal(err)
	}
	e, err := builtin.New(fp, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func TestRulesAreComplete(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	rules := e.Rules()
	packs := map[string]int{}
	for _, r := range rules {
		packs[r.Category]++
		t.Run(r.ID, func(t *testing.T) {
			for field, v := range map[string]string{
				"id": r.ID, "title": r.Title, "cwe": r.CWE, "severity": r.Severity,
				"category": r.Category, "message": r.Message, "remediation": r.Remediation,
			} {
				if strings.TrimSpace(v) == "" {
					t.Errorf("missing %s", field)
				}
			}
			if !strings.HasPrefix(r.CWE, "CWE-") {
				t.Errorf("cwe %q does not start with CWE-", r.CWE)
			}
			if !engine.ValidSeverity(r.Severity) {
				t.Errorf("severity %q unknown", r.Severity)
			}
			if !strings.HasPrefix(r.ID, r.Category+".") {
				t.Errorf("id does not start with its category %q", r.Category)
			}
			if len(r.Keywords) == 0 {
				t.Error("no keywords")
			}
			for _, kw := range r.Keywords {
				if kw != strings.ToLower(kw) {
					t.Errorf("keyword %q is not lower case", kw)
				}
			}
			if r.Confidence <= 0 || r.Confidence > 1 {
				t.Errorf("confidence %v not in (0, 1]", r.Confidence)
			}
			if len(r.Examples.Positive) == 0 || len(r.Examples.Negative) == 0 {
				t.Errorf("%d positive and %d negative examples; need at least one of each", len(r.Examples.Positive), len(r.Examples.Negative))
			}
			for _, ex := range append(r.Examples.Positive, r.Examples.Negative...) {
				if ex.File == "" || ex.Code == "" {
					t.Errorf("example without file or code: %+v", ex)
				}
			}
			if r.Secret {
				for _, ex := range r.Examples.Positive {
					if ex.Secret == "" || !strings.Contains(ex.Code, ex.Secret) {
						t.Errorf("positive example %s of a secret rule must name the planted secret it contains", ex.File)
					}
				}
			}
		})
	}
	for _, c := range []string{engine.CategorySecrets, engine.CategoryInjection, engine.CategoryCrypto, engine.CategoryConfig} {
		if packs[c] == 0 {
			t.Errorf("no rules in pack %s", c)
		}
	}
	// Rules returns copies.
	rules[0].Keywords[0] = "changed"
	if e.Rules()[0].Keywords[0] == "changed" {
		t.Error("Rules exposes the engine's own slices")
	}
}

// TestRuleExamples runs every rule's samples: each positive yields the rule
// at least once, no negative yields it, and a secret rule's finding never
// carries the planted secret anywhere but Match.
func TestRuleExamples(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	for _, r := range e.Rules() {
		for i, ex := range r.Examples.Positive {
			t.Run(fmt.Sprintf("%s/positive-%d", r.ID, i), func(t *testing.T) {
				t.Parallel()
				found := ruleFindings(e.ScanContent(ex.File, []byte(ex.Code)), r.ID)
				if len(found) == 0 {
					t.Fatalf("no %s finding in %s:\n%s", r.ID, ex.File, ex.Code)
				}
				for _, f := range found {
					checkFinding(t, f, ex.File)
					if r.Secret {
						assertRedacted(t, f, ex.Secret)
					}
				}
			})
		}
		for i, ex := range r.Examples.Negative {
			t.Run(fmt.Sprintf("%s/negative-%d", r.ID, i), func(t *testing.T) {
				t.Parallel()
				if found := ruleFindings(e.ScanContent(ex.File, []byte(ex.Code)), r.ID); len(found) > 0 {
					t.Fatalf("%s found at line %d in negative sample %s:\n%s", r.ID, found[0].StartLine, ex.File, ex.Code)
				}
			})
		}
	}
}

func ruleFindings(fs []engine.Finding, id string) []engine.Finding {
	var out []engine.Finding
	for _, f := range fs {
		if f.RuleID == id {
			out = append(out, f)
		}
	}
	return out
}

func checkFinding(t *testing.T, f engine.Finding, file string) {
	t.Helper()
	if f.File != file || f.Engine != builtin.Name || f.StartLine < 1 || f.EndLine < f.StartLine ||
		len(f.Fingerprint) != 64 || f.Snippet == "" || f.Title == "" || f.Match == "" {
		t.Errorf("malformed finding: %+v", f)
	}
}

// assertRedacted checks that secret appears in no field of f except Match,
// nor in its JSON form.
func assertRedacted(t *testing.T, f engine.Finding, secret string) {
	t.Helper()
	if secret == "" {
		t.Fatal("no planted secret to check")
	}
	for name, v := range map[string]string{
		"snippet": f.Snippet, "message": f.Message, "title": f.Title,
		"remediation": f.Remediation, "fingerprint": f.Fingerprint,
	} {
		if strings.Contains(v, secret) {
			t.Errorf("secret leaks into %s: %q", name, v)
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(secret)) {
		t.Errorf("secret leaks into the JSON form: %s", b)
	}
	if !strings.Contains(f.Snippet, "****") {
		t.Errorf("snippet %q shows no redaction mark", f.Snippet)
	}
}
