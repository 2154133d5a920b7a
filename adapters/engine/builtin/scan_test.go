package builtin_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/builtin"
)

// Fake secrets, built so that no real key appears in the source.
var (
	fakeAWSKeyID  = "AKIA" + "Q7RZ4MWX2KJB6TPN"
	fakeAWSSecret = "rT9vKq2Lm" + "X8bWz4NcP1eYh7GfJ3sDa6UoQ0iZkVw"
)

const sqlLine = `cur.execute("SELECT * FROM t WHERE id = %s" % tid)`

func scanDir(t *testing.T, e *builtin.Engine, tg engine.Target) []engine.Finding {
	t.Helper()
	var mu sync.Mutex
	var got []engine.Finding
	if err := e.Scan(t.Context(), tg, func(f engine.Finding) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, f)
		return nil
	}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	slices.SortFunc(got, func(a, b engine.Finding) int {
		return strings.Compare(a.File+"\x00"+a.RuleID, b.File+"\x00"+b.RuleID)
	})
	return got
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFingerprintSurvivesLineShifts(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	code := "import os\n" + sqlLine + "\nKEY = \"" + fakeAWSKeyID + "\"\n"
	before := e.ScanContent("app/db.py", []byte(code))
	after := e.ScanContent("app/db.py", []byte("# a\n# b\n\n\n# c\n"+code))
	if len(before) != 2 || len(after) != 2 {
		t.Fatalf("want 2 findings each, got %d and %d", len(before), len(after))
	}
	for i := range before {
		if before[i].Fingerprint != after[i].Fingerprint {
			t.Errorf("%s: fingerprint changed when lines were inserted above", before[i].RuleID)
		}
		if after[i].StartLine != before[i].StartLine+5 {
			t.Errorf("%s: line %d after inserting 5 lines, was %d", before[i].RuleID, after[i].StartLine, before[i].StartLine)
		}
	}
	// Re-indenting the match keeps the fingerprint too.
	reindented := e.ScanContent("app/db.py", []byte(strings.Replace(code, "% tid", "%   tid", 1)))
	if len(reindented) != 2 || reindented[0].Fingerprint != before[0].Fingerprint {
		t.Errorf("white space inside the match changed the fingerprint")
	}
	// Another path is another finding.
	moved := e.ScanContent("app/other.py", []byte(code))
	if moved[0].Fingerprint == before[0].Fingerprint {
		t.Error("same fingerprint in another file")
	}
}

func TestFingerprintOccurrenceIndex(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	code := "def a():\n    " + sqlLine + "\n\ndef b():\n    " + sqlLine + "\n"
	got := e.ScanContent("app/db.py", []byte(code))
	if len(got) != 2 {
		t.Fatalf("want 2 findings, got %d", len(got))
	}
	if got[0].Fingerprint == got[1].Fingerprint {
		t.Fatal("two identical matches in one file share a fingerprint")
	}
	// Removing the second occurrence keeps the first one's identity.
	first := e.ScanContent("app/db.py", []byte(code[:strings.Index(code, "def b")]))
	if len(first) != 1 || first[0].Fingerprint != got[0].Fingerprint {
		t.Error("the first occurrence changed fingerprint when the second was removed")
	}
}

func TestFingerprintIsKeyedAndComposed(t *testing.T) {
	t.Parallel()
	keyA := bytes.Repeat([]byte("a"), engine.MinFingerprintKeySize)
	keyB := bytes.Repeat([]byte("b"), engine.MinFingerprintKeySize)
	fpA, _ := engine.NewFingerprinter(keyA)
	fpB, _ := engine.NewFingerprinter(keyB)
	ea, err := builtin.New(fpA)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := builtin.New(fpB)
	if err != nil {
		t.Fatal(err)
	}
	code := []byte("KEY = \"" + fakeAWSKeyID + "\"\n")
	a, b := ea.ScanContent("k.py", code), eb.ScanContent("k.py", code)
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("want one finding per engine, got %d and %d", len(a), len(b))
	}
	if a[0].Fingerprint == b[0].Fingerprint {
		t.Error("fingerprint does not depend on the key")
	}
	// For a secret the fingerprinted text is the secret itself.
	if a[0].Match != fakeAWSKeyID {
		t.Errorf("Match = %q, want the secret", a[0].Match)
	}
	if want := fpA.Fingerprint(a[0].RuleID, "k.py", fakeAWSKeyID, 0); a[0].Fingerprint != want {
		t.Errorf("fingerprint %s, want Fingerprinter's %s", a[0].Fingerprint, want)
	}
}

func TestSnippetRedactsEverySecretOnTheLine(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	line := `cur.execute("SELECT * FROM t WHERE k = '` + fakeAWSKeyID + `' AND id = %s" % tid)` + "\n"
	got := e.ScanContent("app/db.py", []byte(line))
	ids := map[string]bool{}
	for _, f := range got {
		ids[f.RuleID] = true
		assertRedacted(t, f, fakeAWSKeyID)
	}
	if !ids["injection.sql-python"] || !ids["secrets.aws-access-key-id"] {
		t.Fatalf("want both the SQL and the key finding, got %v", ids)
	}
}

func TestGenericSecretDefersToSpecificRule(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	got := e.ScanContent("settings.py", []byte(`AWS_SECRET_ACCESS_KEY = "`+fakeAWSSecret+`"`+"\n"))
	if len(got) != 1 || got[0].RuleID != "secrets.aws-secret-access-key" {
		t.Fatalf("want only secrets.aws-secret-access-key, got %+v", got)
	}
	assertRedacted(t, got[0], fakeAWSSecret)
}

func TestScanWalksTheTreeSafely(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	outside := t.TempDir()
	finding := sqlLine + "\n"
	writeTree(t, root, map[string]string{
		"app/db.py":               finding,
		"app/main.go":             "tr := &tls.Config{InsecureSkipVerify: true}\n",
		"Dockerfile":              "FROM alpine:3.20\n",
		"node_modules/x/index.py": finding,
		"vendor/lib/db.py":        finding,
		".git/hooks/db.py":        finding,
		"build/gen/db.py":         finding,
		"bin/blob.py":             finding + "\x00\x01\x02",
		"big/large.py":            finding + strings.Repeat("# padding\n", 200),
	})
	writeTree(t, outside, map[string]string{"secret/db.py": finding, "db.py": finding})
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "linkdir")); err != nil {
		t.Fatalf("make a symlink for the escape test: %v", err)
	}
	if err := os.Symlink(filepath.Join(outside, "db.py"), filepath.Join(root, "link.py")); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, builtin.WithMaxFileSize(1024), builtin.WithWorkers(3))

	files := func(fs []engine.Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.File+" "+f.RuleID)
		}
		return out
	}
	tests := []struct {
		name   string
		target engine.Target
		want   []string
	}{
		{"defaults", engine.Target{Root: root, Exclude: []string{"build/**"}}, []string{
			"Dockerfile config.dockerfile-no-user",
			"app/db.py injection.sql-python",
			"app/main.go crypto.tls-verification-disabled",
		}},
		{"include", engine.Target{Root: root, Include: []string{"**/*.go"}}, []string{
			"app/main.go crypto.tls-verification-disabled",
		}},
		{"categories", engine.Target{Root: root, Categories: []string{"crypto", "config"}, Exclude: []string{"build/**"}}, []string{
			"Dockerfile config.dockerfile-no-user",
			"app/main.go crypto.tls-verification-disabled",
		}},
		{"min severity", engine.Target{Root: root, MinSeverity: "high", Exclude: []string{"build/**"}}, []string{
			"app/db.py injection.sql-python",
			"app/main.go crypto.tls-verification-disabled",
		}},
		{"no exclude", engine.Target{Root: root, Include: []string{"**/*.py"}}, []string{
			"app/db.py injection.sql-python",
			"build/gen/db.py injection.sql-python",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := files(scanDir(t, e, tt.target)); !slices.Equal(got, tt.want) {
				t.Errorf("findings\n got %q\nwant %q", got, tt.want)
			}
		})
	}

	t.Run("skip dirs option", func(t *testing.T) {
		t.Parallel()
		e := newEngine(t, builtin.WithSkipDirs("app"))
		got := files(scanDir(t, e, engine.Target{Root: root, Include: []string{"**/*.py"}}))
		want := []string{
			".git/hooks/db.py injection.sql-python",
			"big/large.py injection.sql-python",
			"build/gen/db.py injection.sql-python",
			"node_modules/x/index.py injection.sql-python",
			"vendor/lib/db.py injection.sql-python",
		}
		if !slices.Equal(got, want) {
			t.Errorf("findings\n got %q\nwant %q", got, want)
		}
	})
}

func TestScanErrors(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a.py": sqlLine + "\n", "b.py": sqlLine + "\n", "c.py": sqlLine + "\n"})
	e := newEngine(t)

	t.Run("invalid target", func(t *testing.T) {
		t.Parallel()
		err := e.Scan(t.Context(), engine.Target{}, func(engine.Finding) error { return nil })
		if !errors.Is(err, engine.ErrInvalidTarget) {
			t.Errorf("err = %v, want ErrInvalidTarget", err)
		}
		err = e.Scan(t.Context(), engine.Target{Root: root, MinSeverity: "severe"}, func(engine.Finding) error { return nil })
		if !errors.Is(err, engine.ErrInvalidTarget) {
			t.Errorf("err = %v, want ErrInvalidTarget", err)
		}
	})
	t.Run("missing root", func(t *testing.T) {
		t.Parallel()
		err := e.Scan(t.Context(), engine.Target{Root: filepath.Join(root, "nope")}, func(engine.Finding) error { return nil })
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want ErrNotExist", err)
		}
	})
	t.Run("emit error stops the scan", func(t *testing.T) {
		t.Parallel()
		stop := errors.New("stop")
		calls := 0
		err := e.Scan(t.Context(), engine.Target{Root: root}, func(engine.Finding) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) {
			t.Errorf("err = %v, want the emit error", err)
		}
		if calls != 1 {
			t.Errorf("emit called %d times after failing, want 1", calls)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := e.Scan(ctx, engine.Target{Root: root}, func(engine.Finding) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	fp, _ := engine.NewFingerprinter(bytes.Repeat([]byte("k"), engine.MinFingerprintKeySize))
	if _, err := builtin.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	for name, opt := range map[string]builtin.Option{
		"workers":  builtin.WithWorkers(0),
		"size":     builtin.WithMaxFileSize(0),
		"skip dir": builtin.WithSkipDirs("a/b"),
	} {
		if _, err := builtin.New(fp, opt); err == nil {
			t.Errorf("%s: New accepted an invalid option", name)
		}
	}
	if e := newEngine(t); e.Name() != builtin.Name {
		t.Errorf("Name() = %q", e.Name())
	}
}

func TestLanguage(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]string{
		"a/b.py": "python", "x.go": "go", "w/app.tsx": "typescript", "w/app.mjs": "javascript",
		"A.java": "java", "Dockerfile": "dockerfile", "deploy/api.Dockerfile": "dockerfile",
		"Dockerfile.prod": "dockerfile", "k8s/a.yml": "yaml", ".env": "env", ".env.local": "env",
		"conf/app.properties": "properties", "x.json": "json", "README.md": "",
	} {
		if got := builtin.Language(p); got != want {
			t.Errorf("Language(%q) = %q, want %q", p, got, want)
		}
	}
}
