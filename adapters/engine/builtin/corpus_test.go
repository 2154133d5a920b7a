package builtin_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/vega-sec/vega/adapters/engine"
)

// corpusDir is the labelled corpus: planted vulnerabilities and safe
// look-alikes per language, with labels.json listing what must be found.
var corpusDir = filepath.Join("..", "..", "..", "testdata", "corpus")

type corpusLabel struct {
	File   string `json:"file"`
	RuleID string `json:"rule_id"`
	Line   int    `json:"line"`
}

type corpusLabels struct {
	Findings []corpusLabel `json:"findings"`
	// SafeLookalikes are lines written to resemble a rule's target while
	// being safe; they are not expected findings and serve as the
	// corpus's record of what precision is measured against.
	SafeLookalikes []corpusLabel `json:"safe_lookalikes"`
}

// TestCorpusRecallPrecision scans the labelled corpus through the full Scan
// path and requires recall and precision of at least 0.9, a finding
// counting as true when a label has the same file, rule and start line.
func TestCorpusRecallPrecision(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(corpusDir, "labels.json"))
	if err != nil {
		t.Fatalf("read labels: %v", err)
	}
	var labels corpusLabels
	if err := json.Unmarshal(raw, &labels); err != nil {
		t.Fatalf("parse labels: %v", err)
	}
	if len(labels.Findings) < 60 || len(labels.SafeLookalikes) < 60 {
		t.Fatalf("corpus too small: %d planted, %d safe look-alikes; want at least 60 of each", len(labels.Findings), len(labels.SafeLookalikes))
	}
	want := map[corpusLabel]bool{}
	for _, l := range labels.Findings {
		want[l] = true
	}

	e := newEngine(t)
	var got []corpusLabel
	err = e.Scan(t.Context(), engine.Target{Root: corpusDir, Exclude: []string{"labels.json"}}, func(f engine.Finding) error {
		got = append(got, corpusLabel{File: f.File, RuleID: f.RuleID, Line: f.StartLine})
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	sort.Slice(got, func(i, j int) bool { return fmt.Sprint(got[i]) < fmt.Sprint(got[j]) })

	matched := map[corpusLabel]bool{}
	tp, fp := 0, 0
	for _, g := range got {
		if want[g] {
			tp++
			matched[g] = true
			continue
		}
		fp++
		t.Logf("false positive: %s:%d %s", g.File, g.Line, g.RuleID)
	}
	for _, l := range labels.Findings {
		if !matched[l] {
			t.Logf("missed: %s:%d %s", l.File, l.Line, l.RuleID)
		}
	}
	recall := float64(len(matched)) / float64(len(want))
	precision := 1.0
	if tp+fp > 0 {
		precision = float64(tp) / float64(tp+fp)
	}
	t.Logf("corpus: %d planted, %d safe look-alikes; %d findings, %d true, %d false; recall %.3f, precision %.3f",
		len(want), len(labels.SafeLookalikes), len(got), tp, fp, recall, precision)
	if recall < 0.9 || precision < 0.9 {
		t.Errorf("recall %.3f, precision %.3f: both must be at least 0.9", recall, precision)
	}
}
