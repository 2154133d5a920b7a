package builtin_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestPrefiltersAdmitEveryMatch checks the literal prefilters are sound:
// every match a rule's pattern makes in the rule samples and the labelled
// corpus is admitted by that pattern's prefilter, both as a window of its
// own and as the start of an anchored one. A prefilter that rejected a
// match would silently lose findings.
func TestPrefiltersAdmitEveryMatch(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	var texts [][]byte
	for _, r := range e.Rules() {
		for _, ex := range append(r.Examples.Positive, r.Examples.Negative...) {
			texts = append(texts, []byte(ex.Code))
		}
	}
	err := filepath.WalkDir(corpusDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		texts = append(texts, b)
		return err
	})
	if err != nil {
		t.Fatalf("read corpus: %v", err)
	}
	matches := 0
	for _, r := range e.Rules() {
		patterns, admits := e.PatternFilters(r.ID)
		if len(patterns) == 0 {
			t.Fatalf("%s: no patterns", r.ID)
		}
		for i, p := range patterns {
			re := regexp.MustCompile(p)
			for _, text := range texts {
				for _, loc := range re.FindAllIndex(text, -1) {
					matches++
					m := text[loc[0]:loc[1]]
					if !admits[i](m, false) || !admits[i](m, true) {
						t.Errorf("%s pattern %d: prefilter rejects its match %q", r.ID, i, m)
					}
				}
			}
		}
	}
	if matches < 100 {
		t.Fatalf("only %d matches checked; the samples should give far more", matches)
	}
}

// TestPrefilterRejects checks that the prefilters do rule texts out: a line
// with a rule's keyword but none of a pattern's literals is not admitted.
func TestPrefilterRejects(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	patterns, admits := e.PatternFilters("crypto.tls-verification-disabled")
	if len(patterns) == 0 {
		t.Fatal("rule crypto.tls-verification-disabled not found")
	}
	line := []byte(`claims, err := h.auth.Verify(ctx, token)`)
	for i := range patterns {
		if admits[i](line, false) {
			t.Errorf("pattern %d (%s) admits %q", i, patterns[i], line)
		}
	}
}
