package engine_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vega-sec/vega/adapters/engine"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		glob, path string
		want       bool
	}{
		{"*.go", "main.go", true},
		{"*.go", "cmd/main.go", false},
		{"**/*.go", "main.go", true},
		{"**/*.go", "a/b/c/main.go", true},
		{"**/*.go", "a/b/c/main.gox", false},
		{"**", "anything/at/all", true},
		{"**", "", true},
		{"vendor/**", "vendor", true},
		{"vendor/**", "vendor/x/y.go", true},
		{"vendor/**", "vendors/x.go", false},
		{"**/node_modules/**", "web/node_modules/lib/index.js", true},
		{"**/node_modules/**", "node_modules", true},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/z/b", true},
		{"a/**/b", "a/x/y/z/c", false},
		{"a/**/b/**/c", "a/1/b/2/b/3/c", true},
		{"a/**/b/**/c", "a/1/b/2/b/3/d", false},
		{"**/**/x", "x", true},
		{"src/*/x.py", "src/pkg/x.py", true},
		{"src/*/x.py", "src/pkg/sub/x.py", false},
		{"?.py", "a.py", true},
		{"?.py", "ab.py", false},
		{"?.py", "é.py", true},
		{"*_test.go", "foo_test.go", true},
		{"*_test.go", "foo_test.go.bak", false},
		{"a*b*c", "aXXbYYbZZc", true},
		{"a*b*c", "aXXbYYbZZ", false},
		{"Dockerfile*", "Dockerfile.prod", true},
		{`\*.md`, "*.md", true},
		{`\*.md`, "x.md", false},
		{"docs/*.md", "Docs/x.md", false},
		{"", "", true},
		{"", "x", false},
		{"a/", "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.glob+"|"+tt.path, func(t *testing.T) {
			t.Parallel()
			if got := engine.Match([]string{tt.glob}, tt.path); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.glob, tt.path, got, tt.want)
			}
		})
	}
	if engine.Match(nil, "x") {
		t.Error("Match(nil, x) = true, want false")
	}
	if !engine.Match([]string{"*.py", "**/*.go"}, "a/b.go") {
		t.Error("Match with two globs missed the second")
	}
}

func TestMatchIsNotExponential(t *testing.T) {
	t.Parallel()
	// A backtracking matcher would take ~2^20 steps here; the greedy one is
	// quadratic at worst. The test asserts the answer, not the time.
	glob := "**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/b"
	path := "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/c"
	if engine.Match([]string{glob}, path) {
		t.Errorf("Match(%q, %q) = true, want false", glob, path)
	}
	if !engine.Match([]string{"*a*a*a*a*a*a*a*a*b"}, "aaaaaaaaaaaaaaaaaaaaaaaaaaab") {
		t.Error("segment wildcards missed a match")
	}
}

func TestAtLeast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sev, min string
		want     bool
	}{
		{"critical", "high", true},
		{"high", "high", true},
		{"medium", "high", false},
		{"info", "", true},
		{"info", "info", true},
		{"bogus", "info", false},
		{"bogus", "", true},
		{"critical", "bogus", false},
		{"low", "medium", false},
	}
	for _, tt := range tests {
		if got := engine.AtLeast(tt.sev, tt.min); got != tt.want {
			t.Errorf("AtLeast(%q, %q) = %v, want %v", tt.sev, tt.min, got, tt.want)
		}
	}
}

func TestTargetValidateAndWants(t *testing.T) {
	t.Parallel()
	if err := (engine.Target{}).Validate(); !errors.Is(err, engine.ErrInvalidTarget) {
		t.Errorf("empty root: err = %v, want ErrInvalidTarget", err)
	}
	if err := (engine.Target{Root: "/x", MinSeverity: "urgent"}).Validate(); !errors.Is(err, engine.ErrInvalidTarget) {
		t.Errorf("bad severity: err = %v, want ErrInvalidTarget", err)
	}
	if err := (engine.Target{Root: "/x", MinSeverity: "low"}).Validate(); err != nil {
		t.Errorf("valid target: err = %v", err)
	}
	tg := engine.Target{Categories: []string{"secrets", "crypto"}, MinSeverity: "medium"}
	for _, tt := range []struct {
		cat, sev string
		want     bool
	}{
		{"secrets", "high", true},
		{"crypto", "medium", true},
		{"crypto", "low", false},
		{"config", "critical", false},
	} {
		if got := tg.Wants(tt.cat, tt.sev); got != tt.want {
			t.Errorf("Wants(%q, %q) = %v, want %v", tt.cat, tt.sev, got, tt.want)
		}
	}
	if !(engine.Target{}).Wants("anything", "info") {
		t.Error("a target without filters must want everything")
	}
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, engine.MinFingerprintKeySize) }

func TestNewFingerprinterRejectsShortKey(t *testing.T) {
	t.Parallel()
	if _, err := engine.NewFingerprinter(make([]byte, engine.MinFingerprintKeySize-1)); !errors.Is(err, engine.ErrShortKey) {
		t.Fatalf("err = %v, want ErrShortKey", err)
	}
	if _, err := engine.NewFingerprinter(nil); !errors.Is(err, engine.ErrShortKey) {
		t.Fatalf("nil key: err = %v, want ErrShortKey", err)
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	key := testKey(7)
	f, err := engine.NewFingerprinter(key)
	if err != nil {
		t.Fatal(err)
	}
	key[0] = 99 // the Fingerprinter must have copied its key
	g, err := engine.NewFingerprinter(testKey(8))
	if err != nil {
		t.Fatal(err)
	}
	base := f.Fingerprint("r", "a/b.py", "x = 1", 0)
	if len(base) != 64 {
		t.Fatalf("fingerprint %q is not 64 hex digits", base)
	}
	same, _ := engine.NewFingerprinter(testKey(7))
	if got := same.Fingerprint("r", "a/b.py", "x = 1", 0); got != base {
		t.Errorf("same key, same input: %s != %s", got, base)
	}
	if got := f.Fingerprint("r", "a/b.py", "  x   =\n\t1 ", 0); got != base {
		t.Errorf("white space changed the fingerprint")
	}
	differ := map[string]string{
		"key":        g.Fingerprint("r", "a/b.py", "x = 1", 0),
		"rule":       f.Fingerprint("r2", "a/b.py", "x = 1", 0),
		"path":       f.Fingerprint("r", "a/c.py", "x = 1", 0),
		"text":       f.Fingerprint("r", "a/b.py", "x = 2", 0),
		"occurrence": f.Fingerprint("r", "a/b.py", "x = 1", 1),
		"x=1":        f.Fingerprint("r", "a/b.py", "x=1", 0),
		// Length prefixes keep field boundaries: moving bytes across
		// fields must change the result.
		"boundary": f.Fingerprint("ra", "/b.py", "x = 1", 0),
	}
	for name, fp := range differ {
		if fp == base {
			t.Errorf("changing %s did not change the fingerprint", name)
		}
	}
}

func TestNormalizeSpace(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                    "",
		"  a  ":               "a",
		"a\t\n b":             "a b",
		"a\u00a0b":            "a b",
		"select *\n  from x ": "select * from x",
	} {
		if got := engine.NormalizeSpace(in); got != want {
			t.Errorf("NormalizeSpace(%q) = %q, want %q", in, got, want)
		}
	}
}
