package sarif

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/domain"
)

// Default limits of an imported document.
const (
	// DefaultMaxBytes is the largest document Import reads.
	DefaultMaxBytes = 32 << 20
	// DefaultMaxResults is the most results, over all runs, a document
	// may hold.
	DefaultMaxResults = 20000
	// DefaultMaxRuns is the most runs a document may hold.
	DefaultMaxRuns = 32
)

// DefaultConfidence is the confidence of an imported finding whose tool
// states none (neither a result "confidence" nor a rule "precision").
const DefaultConfidence = 0.8

// redactedMark replaces a secret in an imported snippet or message, as the
// builtin engine's snippets do.
const redactedMark = "****"

var (
	// ErrInvalid matches every *InvalidError.
	ErrInvalid = errors.New("invalid SARIF")
	// ErrTooLarge matches every *TooLargeError.
	ErrTooLarge = errors.New("SARIF document too large")
)

// InvalidError reports a document that is not SARIF 2.1.0 Vega can import;
// Reason names what and where ("run 0 result 3: absolute file URI"). It
// matches ErrInvalid and domain.ErrInvalidArgument (HTTP 400).
type InvalidError struct{ Reason string }

// Error returns "invalid SARIF: <reason>".
func (e *InvalidError) Error() string { return "invalid SARIF: " + e.Reason }

// Is matches ErrInvalid and domain.ErrInvalidArgument.
func (e *InvalidError) Is(target error) bool {
	return target == ErrInvalid || target == domain.ErrInvalidArgument
}

// TooLargeError reports a document over one of the Limits: Limit names it
// ("bytes", "results", "runs"), Max is its value. It matches ErrTooLarge
// (HTTP 413).
type TooLargeError struct {
	Limit string
	Max   int64
}

// Error names the limit.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("SARIF document too large: more than %d %s", e.Max, e.Limit)
}

// Is matches ErrTooLarge.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

func invalidf(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// Limits bound an imported document; zero fields take the defaults.
type Limits struct {
	MaxBytes   int64 // DefaultMaxBytes
	MaxResults int   // DefaultMaxResults
	MaxRuns    int   // DefaultMaxRuns
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxResults <= 0 {
		l.MaxResults = DefaultMaxResults
	}
	if l.MaxRuns <= 0 {
		l.MaxRuns = DefaultMaxRuns
	}
	return l
}

// ImportOptions configures NewImporter.
type ImportOptions struct {
	// Engine is the engine name of every imported finding ("sarif",
	// "sarif-upload"). Required.
	Engine string
	// Limits bound each document.
	Limits Limits
	// Secrets, the builtin engine, finds secrets in imported snippets and
	// messages so they are redacted; nil: no snippet is kept at all.
	Secrets *builtin.Engine
	// Logger receives a line per document with results skipped; nil
	// discards. It never receives snippets or messages.
	Logger *slog.Logger
}

// Importer turns SARIF 2.1.0 documents of third-party tools (Semgrep,
// CodeQL, gitleaks, …) and of Vega itself into engine findings. It is
// immutable and safe for concurrent use.
type Importer struct {
	fp          *engine.Fingerprinter
	engine      string
	limits      Limits
	secrets     *builtin.Engine
	secretRules map[string]bool
	log         *slog.Logger
}

// NewImporter returns an Importer that fingerprints with fp. It fails for a
// nil fp or an engine name that domain.ValidateEngines refuses.
func NewImporter(fp *engine.Fingerprinter, opts ImportOptions) (*Importer, error) {
	if fp == nil {
		return nil, errors.New("new sarif importer: fingerprinter is required")
	}
	if err := domain.ValidateEngines("engine", []string{opts.Engine}); err != nil {
		return nil, fmt.Errorf("new sarif importer: %w", err)
	}
	im := &Importer{fp: fp, engine: opts.Engine, limits: opts.Limits.withDefaults(), secrets: opts.Secrets,
		secretRules: map[string]bool{}, log: opts.Logger}
	if im.log == nil {
		im.log = slog.New(slog.DiscardHandler)
	}
	if im.secrets != nil {
		for _, r := range im.secrets.Rules() {
			if r.Secret {
				im.secretRules[r.ID] = true
			}
		}
	}
	return im, nil
}

// Limits returns the importer's limits, defaults filled in.
func (im *Importer) Limits() Limits { return im.limits }

// ImportReader reads at most Limits.MaxBytes from r and imports it (see
// Import). A longer body is a *TooLargeError.
func (im *Importer) ImportReader(r io.Reader, root string) ([]engine.Finding, error) {
	doc, err := io.ReadAll(io.LimitReader(r, im.limits.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read sarif: %w", err)
	}
	return im.Import(doc, root)
}

// Import parses a SARIF 2.1.0 document and returns one finding per result,
// in document order:
//
//   - version must be "2.1.0"; the document, its runs and its results stay
//     within Limits (else a *TooLargeError);
//   - a result's rule is found by ruleIndex, rule.index or ruleId among its
//     run's driver (and extension) rules;
//   - severity comes from the result's "severity" property (Vega's own),
//     a "security-severity" score (result, then rule: ≥9 critical, ≥7 high,
//     ≥4 medium, >0 low, 0 info), or the level (error high, warning
//     medium, note low, none info; the rule's default level, then warning);
//   - the CWE comes from tags ("external/cwe/cwe-79", "CWE-79: …"), a "cwe"
//     property or a relationship to a CWE taxon;
//   - the file is the first location's artifactLocation URI, which must be
//     relative without "..", or a file: URI under root (the scanned
//     snapshot's absolute directory; "" accepts none); lines come from its
//     region;
//   - snippets and messages are redacted with the builtin engine's secret
//     rules, and a secret-ish result (a secret scanner's, or a rule about
//     secrets or credentials by id, tags or CWE) keeps no snippet at all;
//   - the fingerprint is partialFingerprints["vega/v1"] when it is one of
//     ours (64 hex digits: a document Vega exported), else the keyed
//     fingerprint over (rule, file, the result's fingerprints, or else its
//     snippet, or else its message, and the occurrence of that triple).
//
// Results of kind pass, notApplicable or informational, results whose
// baselineState is absent, results without a file location and repeats
// of a fingerprint are skipped (and counted in a log line). Any other
// problem is an *InvalidError naming the run and result.
func (im *Importer) Import(doc []byte, root string) ([]engine.Finding, error) {
	if int64(len(doc)) > im.limits.MaxBytes {
		return nil, &TooLargeError{Limit: "bytes", Max: im.limits.MaxBytes}
	}
	var head struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		return nil, invalidf("not a JSON object: %v", jsonReason(err))
	}
	if head.Version != Version {
		return nil, invalidf("version %q is not supported; want %q", head.Version, Version)
	}
	var log Log
	dec := json.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&log); err != nil {
		return nil, invalidf("%v", jsonReason(err))
	}
	if len(log.Runs) > im.limits.MaxRuns {
		return nil, &TooLargeError{Limit: "runs", Max: int64(im.limits.MaxRuns)}
	}
	total := 0
	for _, run := range log.Runs {
		total += len(run.Results)
	}
	if total > im.limits.MaxResults {
		return nil, &TooLargeError{Limit: "results", Max: int64(im.limits.MaxResults)}
	}
	root = strings.TrimSuffix(root, "/")
	var out []engine.Finding
	seen := map[string]bool{}
	skipped := map[string]int{}
	for ri, run := range log.Runs {
		st := runState{im: im, run: &run, root: root, occ: map[string]int{}, secretTool: secretTool(run.Tool.Driver.Name)}
		for i, r := range run.Results {
			f, skip, err := st.finding(r)
			if err != nil {
				return nil, invalidf("run %d result %d: %s", ri, i, err.Error())
			}
			if skip == "" && seen[f.Fingerprint] {
				skip = "duplicate fingerprint"
			}
			if skip != "" {
				skipped[skip]++
				continue
			}
			seen[f.Fingerprint] = true
			out = append(out, f)
		}
	}
	if len(skipped) > 0 {
		attrs := []any{slog.String("engine", im.engine), slog.Int("imported", len(out))}
		for k, n := range skipped {
			attrs = append(attrs, slog.Int("skipped "+k, n))
		}
		im.log.Info("sarif import skipped results", attrs...)
	}
	return out, nil
}

// jsonReason shortens a decoding error to what a client can act on.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q: %s where %s was expected", te.Field, te.Value, te.Type)
	}
	return err.Error()
}

// runState is the importer's state over one run.
type runState struct {
	im         *Importer
	run        *Run
	root       string
	occ        map[string]int
	secretTool bool
}

// finding converts one result; a non-empty skip says why it is left out.
func (st *runState) finding(r Result) (f engine.Finding, skip string, err error) {
	switch r.Kind {
	case "pass", "notApplicable", "informational":
		return f, "kind " + r.Kind, nil
	}
	if r.BaselineState == "absent" {
		return f, "absent", nil
	}
	rule := st.rule(r)
	ruleID := r.RuleID
	if ruleID == "" && r.Rule != nil {
		ruleID = r.Rule.ID
	}
	if ruleID == "" && rule != nil {
		ruleID = rule.ID
	}
	if ruleID == "" {
		return f, "", errors.New("no ruleId")
	}
	if !validOneLine(ruleID, domain.MaxRuleIDLength) {
		return f, "", fmt.Errorf("ruleId %.60q is longer than %d characters or has control characters", ruleID, domain.MaxRuleIDLength)
	}
	loc := firstLocation(r)
	if loc == nil {
		return f, "no file location", nil
	}
	file, err := st.relPath(loc.ArtifactLocation.URI)
	if err != nil {
		return f, "", err
	}
	start, end := 1, 1
	var rawSnippet string
	if reg := loc.Region; reg != nil {
		start = max(1, reg.StartLine)
		end = max(start, reg.EndLine)
		if reg.Snippet != nil {
			rawSnippet = reg.Snippet.Text
		}
	}
	tags := append(stringsOf(propsOf(rule)["tags"]), stringsOf(r.Properties["tags"])...)
	cwe := cweOf(rule, tags)
	secretish := st.secretTool || secretRule(ruleID, cwe, tags)

	message := r.Message.Text
	if message == "" {
		message = r.Message.Markdown
	}
	title := ""
	if rule != nil {
		for _, s := range []*MultiformatMessageString{rule.ShortDescription, rule.FullDescription} {
			if s != nil && title == "" {
				title = s.Text
			}
		}
		if title == "" {
			title = rule.Name
		}
	}
	if title == "" {
		title = ruleID
	}
	remediation := ""
	if rule != nil && rule.Help != nil {
		remediation = rule.Help.Text
	}

	// The fingerprint's basis: ours, the tool's own fingerprints, the
	// snippet, the message — computed from the raw text, never stored.
	fingerprint, basis := "", ""
	if v := r.PartialFingerprints[FingerprintKey]; vegaFingerprint.MatchString(v) {
		fingerprint = v
	} else {
		basis = toolFingerprints(r)
		if basis == "" {
			basis = rawSnippet
		}
		if basis == "" {
			basis = message
		}
		key := ruleID + "\x00" + file + "\x00" + engine.NormalizeSpace(basis)
		occ := st.occ[key]
		st.occ[key] = occ + 1
		fingerprint = st.im.fp.Fingerprint(ruleID, file, basis, occ)
	}

	snippet, _ := st.im.redact(file, rawSnippet)
	if secretish || st.im.secrets == nil {
		snippet = ""
	}
	message, _ = st.im.redact(file, message)
	if secretish && len(strings.TrimSpace(rawSnippet)) >= 4 {
		message = strings.ReplaceAll(message, strings.TrimSpace(rawSnippet), redactedMark)
	}
	remediation, _ = st.im.redact(file, remediation)

	if title = oneLine(title, domain.MaxTitleLength); title == "" {
		title = ruleID
	}
	sev := severityOf(r, rule)
	return engine.Finding{
		RuleID:      ruleID,
		Title:       title,
		Severity:    string(sev),
		CWE:         cwe,
		Category:    categoryOf(secretish, cwe, tags),
		Engine:      st.im.engine,
		File:        file,
		StartLine:   start,
		EndLine:     end,
		Snippet:     text(snippet, domain.MaxSnippetLength),
		Message:     text(message, domain.MaxMessageLength),
		Remediation: text(remediation, domain.MaxMessageLength),
		Confidence:  confidenceOf(r, rule),
		Fingerprint: fingerprint,
		Match:       basis,
	}, "", nil
}

var vegaFingerprint = regexp.MustCompile(`^[0-9a-f]{64}$`)

// rule finds the result's rule: by ruleIndex, then rule.index (in the
// driver, or the extension rule.toolComponent names), then by id among the
// driver's and extensions' rules. It returns nil when there is none.
func (st *runState) rule(r Result) *ReportingDescriptor {
	driver := st.run.Tool.Driver.Rules
	at := func(rules []ReportingDescriptor, i *int) *ReportingDescriptor {
		if i != nil && *i >= 0 && *i < len(rules) {
			return &rules[*i]
		}
		return nil
	}
	if d := at(driver, r.RuleIndex); d != nil {
		return d
	}
	if r.Rule != nil {
		rules := driver
		if tc := r.Rule.ToolComponent; tc != nil && tc.Index != nil && *tc.Index >= 0 && *tc.Index < len(st.run.Tool.Extensions) {
			rules = st.run.Tool.Extensions[*tc.Index].Rules
		}
		if d := at(rules, r.Rule.Index); d != nil {
			return d
		}
	}
	id := r.RuleID
	if id == "" && r.Rule != nil {
		id = r.Rule.ID
	}
	if id == "" {
		return nil
	}
	for _, rules := range append([][]ReportingDescriptor{driver}, extensionRules(st.run.Tool.Extensions)...) {
		for i := range rules {
			if rules[i].ID == id {
				return &rules[i]
			}
		}
	}
	return nil
}

func extensionRules(exts []ToolComponent) [][]ReportingDescriptor {
	out := make([][]ReportingDescriptor, len(exts))
	for i, e := range exts {
		out[i] = e.Rules
	}
	return out
}

func firstLocation(r Result) *PhysicalLocation {
	for _, l := range r.Locations {
		if p := l.PhysicalLocation; p != nil && p.ArtifactLocation != nil && p.ArtifactLocation.URI != "" {
			return p
		}
	}
	return nil
}

// relPath turns an artifact URI into a clean repository-relative path.
func (st *runState) relPath(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("file URI %.80q: not a URI", uri)
	}
	p := u.Path
	switch {
	case u.Scheme == "file" && st.root != "" && (u.Host == "" || u.Host == "localhost"):
		rel, ok := strings.CutPrefix(p, st.root+"/")
		if !ok {
			return "", fmt.Errorf("file URI %.80q is outside the scanned directory", uri)
		}
		p = rel
	case u.Scheme != "" || u.Host != "" || u.Opaque != "":
		return "", fmt.Errorf("file URI %.80q is absolute; a path relative to the repository is required", uri)
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("file path %.80q is absolute; a path relative to the repository is required", p)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return "", fmt.Errorf("file path %.80q contains '..'", p)
	}
	if strings.Contains(p, `\`) {
		return "", fmt.Errorf("file path %.80q contains a backslash", p)
	}
	p = path.Clean(p)
	if err := domain.ValidateRelativePath("file", p); err != nil {
		return "", fmt.Errorf("file path %.80q: %s", p, reasonOf(err))
	}
	return p, nil
}

func reasonOf(err error) string {
	var ia *domain.InvalidArgumentError
	if errors.As(err, &ia) {
		return ia.Reason
	}
	return err.Error()
}

// toolFingerprints joins the result's own fingerprints, sorted by key,
// except Vega's.
func toolFingerprints(r Result) string {
	var pairs []string
	for _, m := range []map[string]string{r.Fingerprints, r.PartialFingerprints} {
		for k, v := range m {
			if k != FingerprintKey && v != "" {
				pairs = append(pairs, k+"="+v)
			}
		}
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "\n")
}

// redact replaces every secret the builtin secret rules find in text (as
// if it were a file at path p).
func (im *Importer) redact(p, s string) (string, bool) {
	if s == "" || im.secrets == nil {
		return s, false
	}
	found := false
	for _, f := range im.secrets.ScanContent(p, []byte(s)) {
		if im.secretRules[f.RuleID] && f.Match != "" {
			s = strings.ReplaceAll(s, f.Match, redactedMark)
			found = true
		}
	}
	return s, found
}

func propsOf(d *ReportingDescriptor) map[string]any {
	if d == nil {
		return nil
	}
	return d.Properties
}

func stringsOf(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return f, err == nil
	}
	return 0, false
}

// SeverityFromScore maps a CVSS-like score to a severity as GitHub code
// scanning does: ≥9.0 critical, ≥7.0 high, ≥4.0 medium, >0 low, else info.
func SeverityFromScore(score float64) domain.Severity {
	switch {
	case score >= 9.0:
		return domain.SeverityCritical
	case score >= 7.0:
		return domain.SeverityHigh
	case score >= 4.0:
		return domain.SeverityMedium
	case score > 0:
		return domain.SeverityLow
	}
	return domain.SeverityInfo
}

func severityOf(r Result, rule *ReportingDescriptor) domain.Severity {
	if s, ok := r.Properties["severity"].(string); ok && domain.Severity(s).Valid() {
		return domain.Severity(s)
	}
	if v, ok := number(r.Properties["security-severity"]); ok {
		return SeverityFromScore(v)
	}
	if v, ok := number(propsOf(rule)["security-severity"]); ok {
		return SeverityFromScore(v)
	}
	level := r.Level
	if level == "" && rule != nil && rule.DefaultConfiguration != nil {
		level = rule.DefaultConfiguration.Level
	}
	switch level {
	case "error":
		return domain.SeverityHigh
	case "note":
		return domain.SeverityLow
	case "none":
		return domain.SeverityInfo
	}
	return domain.SeverityMedium // "warning", SARIF's default level
}

func confidenceOf(r Result, rule *ReportingDescriptor) float64 {
	if v, ok := number(r.Properties["confidence"]); ok && v >= 0 && v <= 1 {
		return v
	}
	if p, ok := propsOf(rule)["precision"].(string); ok {
		switch p {
		case "very-high":
			return 0.95
		case "high":
			return 0.9
		case "medium":
			return 0.7
		case "low":
			return 0.5
		}
	}
	return DefaultConfidence
}

var (
	cweTagRe  = regexp.MustCompile(`(?i)^external/cwe/cwe-0*([1-9][0-9]{0,5})$`)
	cweTextRe = regexp.MustCompile(`(?i)^cwe-0*([1-9][0-9]{0,5})\b`)
	cweIDRe   = regexp.MustCompile(`(?i)^(?:cwe-)?0*([1-9][0-9]{0,5})$`)
)

// cweOf finds the first CWE in tags, a "cwe" property or a relationship to
// a taxon of a component named CWE.
func cweOf(rule *ReportingDescriptor, tags []string) string {
	for _, t := range append(tags, stringsOf(propsOf(rule)["cwe"])...) {
		t = strings.TrimSpace(t)
		if m := cweTagRe.FindStringSubmatch(t); m != nil {
			return "CWE-" + m[1]
		}
		if m := cweTextRe.FindStringSubmatch(t); m != nil {
			return "CWE-" + m[1]
		}
	}
	if rule != nil {
		for _, rel := range rule.Relationships {
			tc := rel.Target.ToolComponent
			if tc != nil && strings.EqualFold(tc.Name, "CWE") {
				if m := cweIDRe.FindStringSubmatch(rel.Target.ID); m != nil {
					return "CWE-" + m[1]
				}
			}
		}
	}
	return ""
}

// secretTools are scanners whose every result is a secret.
var secretTools = []string{"gitleaks", "trufflehog", "detect-secrets", "ggshield", "secretlint", "talisman"}

func secretTool(name string) bool {
	return slices.Contains(secretTools, strings.ToLower(strings.TrimSpace(name)))
}

// secretCWEs are the CWEs of hard-coded or exposed credentials.
var secretCWEs = []string{"CWE-798", "CWE-259", "CWE-321", "CWE-522", "CWE-256", "CWE-257", "CWE-260", "CWE-312", "CWE-540", "CWE-615"}

var secretWords = regexp.MustCompile(`(?i)secret|password|passwd|credential|token|api[-_.]?key|private[-_.]?key|access[-_.]?key`)

// secretRule reports whether a rule is about secrets, so its results keep
// no snippet.
func secretRule(ruleID, cwe string, tags []string) bool {
	if slices.Contains(secretCWEs, cwe) || secretWords.MatchString(ruleID) {
		return true
	}
	for _, t := range tags {
		if secretWords.MatchString(t) {
			return true
		}
	}
	return false
}

var categoryCWEs = map[string][]string{
	engine.CategoryInjection: {"CWE-77", "CWE-78", "CWE-79", "CWE-89", "CWE-90", "CWE-91", "CWE-94", "CWE-95", "CWE-643", "CWE-917", "CWE-1336", "CWE-611", "CWE-502"},
	engine.CategoryCrypto:    {"CWE-295", "CWE-326", "CWE-327", "CWE-328", "CWE-330", "CWE-338", "CWE-916", "CWE-347"},
	engine.CategoryConfig:    {"CWE-16", "CWE-215", "CWE-250", "CWE-489", "CWE-614", "CWE-732", "CWE-942", "CWE-1004"},
}

// categoryOf infers a Vega category; "" when none fits (the sarif engine
// keeps such findings whatever the profile's categories).
func categoryOf(secretish bool, cwe string, tags []string) string {
	if secretish {
		return engine.CategorySecrets
	}
	for _, c := range []string{engine.CategoryInjection, engine.CategoryCrypto, engine.CategoryConfig} {
		if slices.Contains(categoryCWEs[c], cwe) || slices.ContainsFunc(tags, func(t string) bool { return strings.EqualFold(t, c) }) {
			return c
		}
	}
	return ""
}

// oneLine makes s a one-line text of at most max runes: control characters
// become spaces, runs of white space one space.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return truncate(engine.NormalizeSpace(s), max)
}

// text makes s a multi-line text of at most max runes: control characters
// other than tab and newline are dropped.
func text(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return truncate(strings.TrimSpace(s), max)
}

func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

func validOneLine(s string, max int) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= max && !strings.ContainsFunc(s, unicode.IsControl)
}
