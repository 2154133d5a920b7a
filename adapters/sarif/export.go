package sarif

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/domain"
)

// ToolName is the driver name of every exported run.
const ToolName = "Vega"

// InformationURI is the driver's informationUri in exported runs.
const InformationURI = "https://github.com/vega-sec/vega"

// FingerprintKey is the partialFingerprints key under which Vega exports a
// finding's fingerprint, and from which Import takes it back.
const FingerprintKey = "vega/v1"

// SourceRootID is the uriBaseId of every exported location: file URIs are
// relative to the repository's root.
const SourceRootID = "%SRCROOT%"

// Rule describes a rule for export: what the driver's rules array says of
// it. Findings whose rule is not given get a rule made from the finding.
type Rule struct {
	ID          string
	Title       string
	CWE         string // "CWE-<n>" or empty
	Severity    domain.Severity
	Category    string // secrets, injection, crypto, config, …
	Description string // the rule's explanation
	Remediation string
	HelpURI     string
}

// RulesFromBuiltin turns the builtin engine's rules into export rules.
func RulesFromBuiltin(rules []builtin.Rule) []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		out[i] = Rule{ID: r.ID, Title: r.Title, CWE: r.CWE, Severity: domain.Severity(r.Severity), Category: r.Category,
			Description: r.Message, Remediation: r.Remediation}
	}
	return out
}

// Finding is a finding to export: the recorded finding and its diff against
// the scan's base (domain.DiffNew, DiffUnchanged, DiffReopened, or "" when
// the scan is not classified).
type Finding struct {
	domain.Finding
	Diff string
}

// ExportOptions are the parts of an exported document that do not come
// from the scan.
type ExportOptions struct {
	// ToolVersion is the driver's version (the vega build); empty: "dev".
	ToolVersion string
}

// SecuritySeverity returns the CVSS-like score exported as a rule's
// "security-severity" property (the scale GitHub code scanning reads):
// critical 9.5, high 8.0, medium 5.5, low 3.0, info 0.0.
func SecuritySeverity(s domain.Severity) float64 {
	switch s {
	case domain.SeverityCritical:
		return 9.5
	case domain.SeverityHigh:
		return 8.0
	case domain.SeverityMedium:
		return 5.5
	case domain.SeverityLow:
		return 3.0
	}
	return 0.0
}

// Level returns the SARIF level of a severity: error for critical and
// high, warning for medium, note for low and info.
func Level(s domain.Severity) string {
	switch s {
	case domain.SeverityCritical, domain.SeverityHigh:
		return "error"
	case domain.SeverityMedium:
		return "warning"
	}
	return "note"
}

// problemSeverity is CodeQL's "problem.severity" property of a severity.
func problemSeverity(s domain.Severity) string {
	switch s {
	case domain.SeverityCritical, domain.SeverityHigh:
		return "error"
	case domain.SeverityMedium:
		return "warning"
	}
	return "recommendation"
}

// BaselineState maps a finding's diff to SARIF's baselineState: new → new,
// unchanged → unchanged, and reopened → new, because SARIF compares a run
// with its baseline run only, where a reopened issue was absent (fixed) —
// "updated" would claim it was present there and changed. An unknown diff
// maps to "" (no baselineState).
func BaselineState(diff string) string {
	switch diff {
	case domain.DiffNew, domain.DiffReopened:
		return "new"
	case domain.DiffUnchanged:
		return "unchanged"
	}
	return ""
}

// cweTag is GitHub's and CodeQL's tag for a CWE: "external/cwe/cwe-798".
func cweTag(cwe string) string {
	n, ok := strings.CutPrefix(cwe, "CWE-")
	if !ok {
		return ""
	}
	return "external/cwe/cwe-" + n
}

// Export writes scan s's findings as a SARIF 2.1.0 log of one run whose
// driver is Vega: each rule the findings use (from rules, or made from the
// first finding of a rule not given) with its descriptions, help
// (remediation), tags ("security", the category, "external/cwe/cwe-N"),
// security-severity and problem.severity properties and default level; and
// one result per finding with its rule, level, message, location (a URI
// relative to %SRCROOT%, lines, the already-redacted snippet),
// partialFingerprints {"vega/v1": fingerprint}, baselineState (see
// BaselineState) and properties (severity, confidence, engine). Findings
// keep the order given. It fails for a nil scan or a finding that does
// not pass domain.Finding.Validate. The output is deterministic.
func Export(s *domain.Scan, findings []Finding, rules []Rule, opts ExportOptions) ([]byte, error) {
	if s == nil || s.Version == 0 {
		return nil, errors.New("export sarif: no scan")
	}
	if opts.ToolVersion == "" {
		opts.ToolVersion = "dev"
	}
	known := make(map[string]Rule, len(rules))
	for _, r := range rules {
		known[r.ID] = r
	}
	used := map[string]Rule{}
	for i, f := range findings {
		if err := f.Validate(); err != nil {
			return nil, fmt.Errorf("export sarif of scan %s: finding %d: %w", s.ID, i, err)
		}
		if _, ok := used[f.RuleID]; ok {
			continue
		}
		r, ok := known[f.RuleID]
		if !ok {
			r = Rule{ID: f.RuleID, Title: f.Title, CWE: f.CWE, Severity: f.Severity, Remediation: f.Remediation}
		}
		used[f.RuleID] = r
	}
	ids := make([]string, 0, len(used))
	for id := range used {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	index := make(map[string]int, len(ids))
	descriptors := make([]ReportingDescriptor, len(ids))
	for i, id := range ids {
		index[id] = i
		descriptors[i] = descriptor(used[id])
	}
	results := make([]Result, len(findings))
	for i, f := range findings {
		results[i] = result(f, index[f.RuleID])
	}
	run := Run{
		Tool:               Tool{Driver: ToolComponent{Name: ToolName, Version: opts.ToolVersion, InformationURI: InformationURI, Rules: descriptors}},
		OriginalURIBaseIDs: map[string]ArtifactLocation{SourceRootID: {}},
		AutomationDetails:  &AutomationDetails{ID: "vega/" + s.RepositoryID + "/" + s.ID},
		Results:            results,
		Properties: map[string]any{
			"vega/scanId": s.ID, "vega/repositoryId": s.RepositoryID, "vega/snapshotId": s.SnapshotID,
			"vega/status": string(s.State), "vega/partial": s.Partial, "vega/engines": slices.Clone(s.Engines),
		},
	}
	if s.Classification != nil {
		run.Properties["vega/baseScanId"] = s.Classification.BaseScanID
	}
	if !s.StartedAt.IsZero() {
		inv := Invocation{ExecutionSuccessful: s.State == domain.ScanStateCompleted, StartTimeUTC: s.StartedAt.UTC().Format(time.RFC3339Nano)}
		if !s.FinishedAt.IsZero() {
			inv.EndTimeUTC = s.FinishedAt.UTC().Format(time.RFC3339Nano)
		}
		run.Invocations = []Invocation{inv}
	}
	out, err := json.MarshalIndent(Log{Schema: SchemaURI, Version: Version, Runs: []Run{run}}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export sarif of scan %s: %w", s.ID, err)
	}
	return out, nil
}

func descriptor(r Rule) ReportingDescriptor {
	title := r.Title
	if title == "" {
		title = r.ID
	}
	full := r.Description
	if full == "" {
		full = title
	}
	tags := []string{"security"}
	if r.Category != "" {
		tags = append(tags, r.Category)
	}
	if t := cweTag(r.CWE); t != "" {
		tags = append(tags, t)
	}
	d := ReportingDescriptor{
		ID: r.ID, Name: title,
		ShortDescription:     &MultiformatMessageString{Text: title},
		FullDescription:      &MultiformatMessageString{Text: full},
		HelpURI:              r.HelpURI,
		DefaultConfiguration: &ReportingConfiguration{Level: Level(r.Severity)},
		Properties: map[string]any{
			"tags":              tags,
			"security-severity": strconv.FormatFloat(SecuritySeverity(r.Severity), 'f', 1, 64),
			"problem.severity":  problemSeverity(r.Severity),
		},
	}
	if r.Remediation != "" {
		d.Help = &MultiformatMessageString{Text: r.Remediation, Markdown: r.Remediation}
	}
	return d
}

func result(f Finding, ruleIndex int) Result {
	msg := f.Message
	if msg == "" {
		msg = f.Title
	}
	region := &Region{StartLine: f.StartLine, EndLine: f.EndLine}
	if f.Snippet != "" {
		region.Snippet = &ArtifactContent{Text: f.Snippet}
	}
	idx := ruleIndex
	return Result{
		RuleID: f.RuleID, RuleIndex: &idx, Level: Level(f.Severity), Message: Message{Text: msg},
		Locations: []Location{{PhysicalLocation: &PhysicalLocation{
			ArtifactLocation: &ArtifactLocation{URI: fileURI(f.File), URIBaseID: SourceRootID},
			Region:           region,
		}}},
		PartialFingerprints: map[string]string{FingerprintKey: f.Fingerprint},
		BaselineState:       BaselineState(f.Diff),
		Properties: map[string]any{
			"severity": string(f.Severity), "confidence": f.Confidence, "engine": f.Engine,
		},
	}
}

// fileURI escapes a repository-relative path as a relative URI reference
// ("a b/c.go" → "a%20b/c.go"; a first segment with a colon gets "./").
func fileURI(p string) string {
	return (&url.URL{Path: p}).String()
}
