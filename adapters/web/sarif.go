package web

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

// ClassifiedFindings reads a scan's findings with their issues and diffs
// (*classify.Reader).
type ClassifiedFindings interface {
	Findings(ctx context.Context, scanID string) (*domain.Scan, []classify.Finding, error)
}

// RuleSource gives the builtin rules that SARIF exports describe
// (*builtin.Engine).
type RuleSource interface {
	Rules() []builtin.Rule
}

var (
	_ ClassifiedFindings = (*classify.Reader)(nil)
	_ RuleSource         = (*builtin.Engine)(nil)
	_ SARIFExporter      = (*SARIFExport)(nil)
)

// SARIFExport exports a scan as the API's GET /scans/{id}/sarif does
// (sarif.Export over the classified findings). It is safe for concurrent
// use.
type SARIFExport struct {
	findings ClassifiedFindings
	rules    []sarif.Rule
	version  string
}

// NewSARIFExport returns an exporter over findings; rules may be nil (each
// rule is then made from its first finding); version is the tool version
// written ("" for "dev").
func NewSARIFExport(findings ClassifiedFindings, rules RuleSource, version string) (*SARIFExport, error) {
	if findings == nil {
		return nil, errors.New("new sarif export: findings are required")
	}
	x := &SARIFExport{findings: findings, version: version}
	if rules != nil {
		x.rules = sarif.RulesFromBuiltin(rules.Rules())
	}
	return x, nil
}

// ScanSARIF writes scan scanID's SARIF 2.1.0 log to w. The caller must
// have checked that c may see the scan (the Scan page does).
func (x *SARIFExport) ScanSARIF(ctx context.Context, c queries.Caller, scanID string, w io.Writer) error {
	sc, found, err := x.findings.Findings(ctx, scanID)
	if err != nil {
		return fmt.Errorf("export scan %s as sarif: %w", scanID, err)
	}
	fs := make([]sarif.Finding, len(found))
	for i, f := range found {
		fs[i] = sarif.Finding{Finding: f.Finding, Diff: f.Diff}
	}
	doc, err := sarif.Export(sc, fs, x.rules, sarif.ExportOptions{ToolVersion: x.version})
	if err != nil {
		return fmt.Errorf("export scan %s as sarif: %w", scanID, err)
	}
	_, err = w.Write(append(doc, '\n'))
	return err
}
