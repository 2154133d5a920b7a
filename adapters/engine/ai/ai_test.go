package ai_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/ai"
	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/adapters/llm/llmtest"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/internal/fakellm"
)

const (
	awsKey   = "AKIAVQJXXVBOTHD2WTFL"
	ghToken  = "ghp_UByxRmXBYQ0DVbpag1xYKiuMw7TpHD8BHbNd"
	dbPython = `import sqlite3
AWS_ACCESS_KEY_ID = "` + awsKey + `"

def find(conn, name):
    return conn.execute("SELECT * FROM users WHERE name = '" + name + "'")
`
)

func fingerprinter(t *testing.T) *engine.Fingerprinter {
	t.Helper()
	fp, err := engine.NewFingerprinter(bytes.Repeat([]byte("k"), engine.MinFingerprintKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func secrets(t *testing.T) *builtin.Engine {
	t.Helper()
	b, err := builtin.New(fingerprinter(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// answer is a model answer with the given findings.
func answer(fs ...map[string]any) string {
	if fs == nil {
		fs = []map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"findings": fs})
	return string(b)
}

func sqlFinding(file string, confidence float64, message string) map[string]any {
	return map[string]any{"file": file, "start_line": 5, "end_line": 5, "title": "SQL injection in find",
		"severity": "HIGH", "cwe": "89", "category": "injection", "message": message,
		"remediation": "Use parameters.", "confidence": confidence}
}

// recorder collects an engine's output.
type recorder struct {
	mu       sync.Mutex
	findings []engine.Finding
	progress []ai.Progress
}

func (r *recorder) emit(f engine.Finding) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.findings = append(r.findings, f)
	return nil
}

func (r *recorder) onProgress(p ai.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, p)
}

func (r *recorder) warnings() []string {
	var out []string
	for _, p := range r.progress {
		if p.Warning != "" {
			out = append(out, p.Warning)
		}
	}
	return out
}

func newEngine(t *testing.T, w *llmtest.World, rec *recorder, tweak ...func(*ai.Config)) *ai.Engine {
	t.Helper()
	cfg := ai.Config{ProxyURL: w.ProxyURL, Token: w.Token, Profile: w.Profile, Fingerprinter: fingerprinter(t),
		Secrets: secrets(t), OnProgress: rec.onProgress}
	for _, f := range tweak {
		f(&cfg)
	}
	e, err := ai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAuditThroughTheProxy(t *testing.T) {
	t.Parallel()
	w := llmtest.Start(t, domain.ThreatProfile{Name: "payments", Categories: []domain.Category{domain.CategoryInjection, domain.CategorySecrets}})
	root := writeTree(t, map[string]string{"app/db.py": dbPython})
	w.Fake.Always(fakellm.Reply{Content: answer(
		sqlFinding("app/db.py", 0.9, "Query built from input; the key "+awsKey+" and token "+ghToken+" are exposed too."),
		sqlFinding("app/db.py", 0.2, "a guess"),
	)})
	rec := &recorder{}
	e := newEngine(t, w, rec)
	if err := e.Scan(t.Context(), engine.Target{Root: root}, rec.emit); err != nil {
		t.Fatalf("scan: %v", err)
	}
	if len(rec.findings) != 1 {
		t.Fatalf("findings = %+v, want the confident one only", rec.findings)
	}
	f := rec.findings[0]
	if f.RuleID != "ai.injection" || f.Engine != "ai" || f.Severity != "high" || f.CWE != "CWE-89" || f.File != "app/db.py" ||
		f.StartLine != 5 || f.Fingerprint == "" || !strings.Contains(f.Snippet, "SELECT") {
		t.Fatalf("finding = %+v", f)
	}
	all, _ := json.Marshal(rec.findings)
	for _, s := range []string{awsKey, ghToken} {
		if strings.Contains(string(all), s) || strings.Contains(f.Message, s) {
			t.Fatalf("secret %s kept in a finding: %s", s, all)
		}
	}
	if !strings.Contains(f.Message, ai.Mask) {
		t.Fatalf("message not masked: %q", f.Message)
	}
	got := w.Fake.Received()
	if len(got) != 1 {
		t.Fatalf("provider got %d requests, want 1", len(got))
	}
	if strings.Contains(string(got[0].Body), awsKey) {
		t.Fatal("the prompt carried the secret")
	}
	if !strings.Contains(string(got[0].Body), `5| `) || !strings.Contains(string(got[0].Body), "payments") {
		t.Fatalf("prompt lacks line numbers or the profile: %s", got[0].Body)
	}
	if strings.Contains(got[0].Header.Get("Authorization"), w.Token) {
		t.Fatal("the scan token reached the provider")
	}
	last := rec.progress[len(rec.progress)-1]
	if last.Done != last.Total || last.Total != 1 || last.File != "app/db.py" {
		t.Fatalf("progress = %+v", rec.progress)
	}
	if u := w.Scan().LLMUsage; u.Requests != 1 || u.InputTokens == 0 {
		t.Fatalf("usage recorded by the proxy = %+v", u)
	}
	// Same input, same fingerprint.
	rec2 := &recorder{}
	if err := newEngine(t, w, rec2).Scan(t.Context(), engine.Target{Root: root}, rec2.emit); err != nil {
		t.Fatal(err)
	}
	if rec2.findings[0].Fingerprint != f.Fingerprint {
		t.Fatal("fingerprint not stable")
	}
}

func TestMalformedAnswers(t *testing.T) {
	t.Parallel()
	t.Run("retried once", func(t *testing.T) {
		t.Parallel()
		w := llmtest.Start(t, domain.ThreatProfile{})
		root := writeTree(t, map[string]string{"app/db.py": dbPython})
		w.Fake.Sequence(fakellm.Reply{Content: "Sure! Here are the findings: none"}, fakellm.Reply{Content: answer(sqlFinding("app/db.py", 0.8, "x"))})
		rec := &recorder{}
		if err := newEngine(t, w, rec).Scan(t.Context(), engine.Target{Root: root}, rec.emit); err != nil {
			t.Fatal(err)
		}
		if len(rec.findings) != 1 || len(rec.warnings()) != 0 || len(w.Fake.Received()) != 2 {
			t.Fatalf("findings %d warnings %v requests %d", len(rec.findings), rec.warnings(), len(w.Fake.Received()))
		}
	})
	t.Run("twice is a warning, not a crash", func(t *testing.T) {
		t.Parallel()
		w := llmtest.Start(t, domain.ThreatProfile{})
		root := writeTree(t, map[string]string{"app/db.py": dbPython})
		w.Fake.Always(fakellm.Reply{Content: `{"findings": [{"file": 7`})
		rec := &recorder{}
		if err := newEngine(t, w, rec).Scan(t.Context(), engine.Target{Root: root}, rec.emit); err != nil {
			t.Fatal(err)
		}
		if len(rec.findings) != 0 || len(rec.warnings()) != 1 || !strings.Contains(rec.warnings()[0], "malformed") {
			t.Fatalf("findings %d warnings %v", len(rec.findings), rec.warnings())
		}
		if n := len(w.Fake.Received()); n != 2 {
			t.Fatalf("requests = %d, want 2 (one retry)", n)
		}
	})
	t.Run("invalid findings dropped with a warning", func(t *testing.T) {
		t.Parallel()
		w := llmtest.Start(t, domain.ThreatProfile{})
		root := writeTree(t, map[string]string{"app/db.py": dbPython})
		bad := sqlFinding("app/db.py", 0.9, "x")
		bad["start_line"] = 99
		other := sqlFinding("../etc/passwd", 0.9, "x")
		sev := sqlFinding("app/db.py", 0.9, "x")
		sev["severity"] = "catastrophic"
		w.Fake.Always(fakellm.Reply{Content: answer(bad, other, sev, sqlFinding("app/db.py", 0.9, "ok"))})
		rec := &recorder{}
		if err := newEngine(t, w, rec).Scan(t.Context(), engine.Target{Root: root}, rec.emit); err != nil {
			t.Fatal(err)
		}
		if len(rec.findings) != 1 || len(rec.warnings()) != 3 {
			t.Fatalf("findings %d warnings %v", len(rec.findings), rec.warnings())
		}
	})
}

func TestBudgetExhaustedEndsEarly(t *testing.T) {
	t.Parallel()
	w := llmtest.Start(t, domain.ThreatProfile{LLMBudget: domain.LLMBudget{MaxRequests: 1}})
	root := writeTree(t, map[string]string{"app/db.py": dbPython, "app/run.py": "import os\nos.system(cmd)\n"})
	w.Fake.Respond(func(r fakellm.Received) fakellm.Reply {
		if strings.Contains(string(r.Body), "app/db.py") {
			return fakellm.Reply{Content: answer(sqlFinding("app/db.py", 0.9, "x"))}
		}
		return fakellm.Reply{Content: answer()}
	})
	rec := &recorder{}
	err := newEngine(t, w, rec).Scan(t.Context(), engine.Target{Root: root}, rec.emit)
	var be *ai.BudgetExhaustedError
	if !errors.Is(err, ai.ErrBudgetExhausted) || !errors.As(err, &be) || be.Limit != "max_requests" || be.Total != 2 || be.Files != 1 {
		t.Fatalf("err = %v (%+v), want budget exhausted on max_requests after 1 of 2 files", err, be)
	}
	if s := w.Scan(); !s.BudgetExceeded || s.LLMUsage.Requests != 1 {
		t.Fatalf("scan exceeded %v usage %+v", s.BudgetExceeded, s.LLMUsage)
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	w := llmtest.Start(t, domain.ThreatProfile{})
	root := writeTree(t, map[string]string{"app/db.py": dbPython})
	for _, tc := range []struct {
		name  string
		tweak func(*ai.Config)
		want  string
	}{
		{"no proxy", func(c *ai.Config) { c.ProxyURL = "" }, "VEGA_LLM_PROXY_URL"},
		{"no token", func(c *ai.Config) { c.Token = "" }, "VEGA_LLM_PROXY_URL"},
		{"token refused", func(c *ai.Config) { c.Token = "vega-scan.nope" }, "refused the scan token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			err := newEngine(t, w, rec, tc.tweak).Scan(t.Context(), engine.Target{Root: root}, rec.emit)
			if !errors.Is(err, ai.ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrUnavailable saying %q", err, tc.want)
			}
		})
	}
	t.Run("provider failing", func(t *testing.T) {
		w.Fake.Always(fakellm.Reply{Status: 500, Body: "boom"})
		files := map[string]string{}
		for _, n := range []string{"a", "b", "c", "d"} {
			files["app/"+n+".py"] = "import os\nos.system(x)\n"
		}
		rec := &recorder{}
		err := newEngine(t, w, rec).Scan(t.Context(), engine.Target{Root: writeTree(t, files)}, rec.emit)
		if !errors.Is(err, ai.ErrUnavailable) || len(rec.warnings()) != ai.MaxConsecutiveFailures-1 {
			t.Fatalf("err = %v warnings %v", err, rec.warnings())
		}
	})
	// Fewer chunks than MaxConsecutiveFailures, every call failing: the
	// audit did not happen, so the engine must not report a clean result.
	t.Run("provider failing on a small tree", func(t *testing.T) {
		w := llmtest.Start(t, domain.ThreatProfile{})
		w.Fake.Always(fakellm.Reply{Status: 500, Body: "boom"})
		rec := &recorder{}
		err := newEngine(t, w, rec).Scan(t.Context(), engine.Target{Root: writeTree(t, map[string]string{"app/a.py": "import os\nos.system(x)\n"})}, rec.emit)
		if !errors.Is(err, ai.ErrUnavailable) || !strings.Contains(err.Error(), "none of 1 LLM calls was answered") {
			t.Fatalf("err = %v, want ErrUnavailable saying no call was answered", err)
		}
	})
}

func TestPlanRanksAndFits(t *testing.T) {
	t.Parallel()
	root := writeTree(t, map[string]string{
		"src/handler.py":       "import subprocess\nsubprocess.Popen(cmd, shell=True)\nos.system(x)\neval(y)\n",
		"config/settings.yaml": "password: hunter2\ndebug: true\n",
		"docs/notes.txt":       "nothing to see\n",
		"big/huge.py":          strings.Repeat("eval(x)\n", 100_000),
		"bin/blob.py":          "eval(\x00\x01)",
		"node_modules/x.js":    "eval(x)",
	})
	ctx := t.Context()
	plan, err := ai.Plan(ctx, engine.Target{Root: root, Categories: []string{engine.CategoryInjection}}, ai.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range plan {
		paths = append(paths, f.Path)
	}
	if len(paths) == 0 || paths[0] != "src/handler.py" {
		t.Fatalf("plan = %v, want src/handler.py first", paths)
	}
	for _, p := range paths {
		if p == "docs/notes.txt" || p == "big/huge.py" || p == "bin/blob.py" || p == "node_modules/x.js" {
			t.Fatalf("plan = %v holds %s", paths, p)
		}
	}
	all, err := ai.Plan(ctx, engine.Target{Root: root}, ai.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	one, err := ai.Plan(ctx, engine.Target{Root: root}, ai.PlanOptions{MaxTokens: ai.PromptOverheadTokens + ai.ExpectedAnswerTokens + 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 2 || len(one) != 1 {
		t.Fatalf("unbounded plan %d files, budget plan %d files; want at least 2 and exactly 1", len(all), len(one))
	}
}

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		text string
		n    int
		ok   bool
	}{
		{"plain", `{"findings": [{"file": "a.go", "start_line": 1}]}`, 1, true},
		{"empty", `{"findings": []}`, 0, true},
		{"fenced", "```json\n{\"findings\": []}\n```", 0, true},
		{"prose", "I found nothing.", 0, false},
		{"no findings key", `{"results": []}`, 0, false},
		{"findings not a list", `{"findings": {}}`, 0, false},
		{"bad finding", `{"findings": [{"start_line": "one"}]}`, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := ai.ParseAnswer([]byte(tc.text))
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ai.ErrMalformedAnswer)) || len(a.Findings) != tc.n {
				t.Fatalf("ParseAnswer = %+v, %v", a, err)
			}
		})
	}
}
