package ai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/domain"
)

// Answer limits.
const (
	// MaxAnswerBytes is the largest model answer (or agent output) parsed.
	MaxAnswerBytes = 1 << 20
	// MaxFindingsPerAnswer caps the findings taken from one answer.
	MaxFindingsPerAnswer = 100
	// MaxTitleRunes and MaxTextRunes cap what is kept of a finding's title
	// and of its message and remediation.
	MaxTitleRunes = 200
	MaxTextRunes  = 2000
	// MaxSnippetLines and MaxSnippetBytes cap a finding's snippet, cut from
	// the (masked) file.
	MaxSnippetLines = 8
	MaxSnippetBytes = 512
)

// DefaultMinConfidence is the confidence below which a model's finding is
// dropped (Config.MinConfidence).
const DefaultMinConfidence = 0.5

// ErrMalformedAnswer is returned (wrapped) by ParseAnswer for an answer
// that is not the required JSON document.
var ErrMalformedAnswer = errors.New("malformed answer")

// RawFinding is one finding as a model or agent reports it, before
// validation. The shape is the contract of the prompt and of the agent's
// output file:
//
//	{"findings": [{"file", "start_line", "end_line", "title", "severity",
//	  "cwe", "category", "message", "remediation", "confidence"}]}
type RawFinding struct {
	File        string  `json:"file"`
	StartLine   int     `json:"start_line"`
	EndLine     int     `json:"end_line"`
	Title       string  `json:"title"`
	Severity    string  `json:"severity"`
	CWE         string  `json:"cwe"`
	Category    string  `json:"category"`
	Message     string  `json:"message"`
	Remediation string  `json:"remediation"`
	Confidence  float64 `json:"confidence"`
}

// Answer is the document a model or agent must produce.
type Answer struct {
	Findings []RawFinding `json:"findings"`
}

// ParseAnswer decodes an answer: one JSON object with a "findings" array
// (a Markdown code fence around it is tolerated). Anything else is an error
// wrapping ErrMalformedAnswer. Findings beyond MaxFindingsPerAnswer are
// dropped.
func ParseAnswer(text []byte) (Answer, error) {
	if len(text) > MaxAnswerBytes {
		return Answer{}, fmt.Errorf("%w: larger than %d bytes", ErrMalformedAnswer, MaxAnswerBytes)
	}
	text = bytes.TrimSpace(text)
	if rest, ok := bytes.CutPrefix(text, []byte("```")); ok {
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:]
		}
		rest, _ = bytes.CutSuffix(bytes.TrimSpace(rest), []byte("```"))
		text = bytes.TrimSpace(rest)
	}
	var doc struct {
		Findings *[]json.RawMessage `json:"findings"`
	}
	if err := json.Unmarshal(text, &doc); err != nil {
		return Answer{}, fmt.Errorf("%w: not a JSON object: %v", ErrMalformedAnswer, err)
	}
	if doc.Findings == nil {
		return Answer{}, fmt.Errorf("%w: no \"findings\" array", ErrMalformedAnswer)
	}
	var a Answer
	for i, raw := range *doc.Findings {
		if i == MaxFindingsPerAnswer {
			break
		}
		var f RawFinding
		if err := json.Unmarshal(raw, &f); err != nil {
			return Answer{}, fmt.Errorf("%w: findings[%d]: %v", ErrMalformedAnswer, i, err)
		}
		a.Findings = append(a.Findings, f)
	}
	return a, nil
}

// SecretScanner finds secrets in a file's content; the builtin engine is
// one (its ScanContent).
type SecretScanner interface {
	ScanContent(path string, content []byte) []engine.Finding
}

// Mask is what replaces a secret in a prompt or an answer.
const Mask = "[REDACTED-SECRET]"

// Masker hides the secrets the builtin rules recognise. It is safe for
// concurrent use.
type Masker struct{ s SecretScanner }

// NewMasker returns a Masker over s.
func NewMasker(s SecretScanner) *Masker { return &Masker{s: s} }

// Secrets returns the secret values found in content (the matches of the
// secrets category), longest first.
func (m *Masker) Secrets(path string, content []byte) []string {
	var out []string
	for _, f := range m.s.ScanContent(path, content) {
		if f.Category == engine.CategorySecrets && f.Match != "" && !slices.Contains(out, f.Match) {
			out = append(out, f.Match)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// Mask replaces every known secret in text, then every secret the builtin
// rules find in what is left (as if text were the file at path).
func (m *Masker) Mask(path, text string, known []string) string {
	for _, s := range known {
		text = strings.ReplaceAll(text, s, Mask)
	}
	if more := m.Secrets(path, []byte(text)); len(more) > 0 {
		for _, s := range more {
			text = strings.ReplaceAll(text, s, Mask)
		}
	}
	return text
}

var (
	categoryRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	cweNumRe   = regexp.MustCompile(`^(?i:cwe[-_ ]?)?([1-9][0-9]{0,5})$`)
)

// Validator turns raw findings into engine findings: it validates them,
// drops those below MinConfidence, masks secrets in every text field, cuts
// the snippet from the (masked) file, names the rule <Engine>.<category>,
// and fingerprints them. A Validator counts occurrences for fingerprints,
// so use one per scan; it is not safe for concurrent use.
type Validator struct {
	Engine        string
	Fingerprinter *engine.Fingerprinter
	Masker        *Masker
	MinConfidence float64
	occ           map[string]int
}

// Source is the file a finding points into: its path, its lines with
// secrets already masked, and the secrets found in it.
type Source struct {
	Path    string
	Lines   []string
	Secrets []string
}

// Finding validates rf against src. It returns keep false (and no error)
// for a finding below MinConfidence, and an error naming the field for an
// invalid one.
func (v *Validator) Finding(rf RawFinding, src Source) (f engine.Finding, keep bool, err error) {
	if v.occ == nil {
		v.occ = map[string]int{}
	}
	switch {
	case rf.File != src.Path:
		return f, false, fmt.Errorf("file %q is not %q", rf.File, src.Path)
	case rf.StartLine < 1 || rf.StartLine > len(src.Lines):
		return f, false, fmt.Errorf("start_line %d is outside the file's %d lines", rf.StartLine, len(src.Lines))
	case rf.EndLine < rf.StartLine:
		return f, false, fmt.Errorf("end_line %d is before start_line %d", rf.EndLine, rf.StartLine)
	case rf.Confidence < 0 || rf.Confidence > 1 || rf.Confidence != rf.Confidence:
		return f, false, fmt.Errorf("confidence %v is not between 0 and 1", rf.Confidence)
	}
	end := min(rf.EndLine, len(src.Lines))
	sev := strings.ToLower(strings.TrimSpace(rf.Severity))
	if !engine.ValidSeverity(sev) {
		return f, false, fmt.Errorf("severity %q is not one of critical, high, medium, low, info", rf.Severity)
	}
	cat := strings.ToLower(strings.TrimSpace(rf.Category))
	if !categoryRe.MatchString(cat) {
		return f, false, fmt.Errorf("category %q is not a category name", rf.Category)
	}
	title := v.text(src, rf.Title, MaxTitleRunes, true)
	if title == "" {
		return f, false, errors.New("title is empty")
	}
	if rf.Confidence < v.MinConfidence {
		return f, false, nil
	}
	cwe := ""
	if m := cweNumRe.FindStringSubmatch(strings.TrimSpace(rf.CWE)); m != nil {
		cwe = "CWE-" + m[1]
	}
	code := strings.Join(src.Lines[rf.StartLine-1:end], "\n")
	match := engine.NormalizeSpace(code)
	rule := v.Engine + "." + cat
	key := rule + "\x00" + src.Path + "\x00" + match
	occ := v.occ[key]
	v.occ[key] = occ + 1
	return engine.Finding{
		RuleID: rule, Title: title, Severity: sev, CWE: cwe, Category: cat, Engine: v.Engine,
		File: src.Path, StartLine: rf.StartLine, EndLine: end,
		Snippet:     snippet(code),
		Message:     v.text(src, rf.Message, MaxTextRunes, false),
		Remediation: v.text(src, rf.Remediation, MaxTextRunes, false),
		Confidence:  rf.Confidence,
		Fingerprint: v.Fingerprinter.Fingerprint(rule, src.Path, match, occ),
		Match:       match,
	}, true, nil
}

// text masks, cleans and caps a model-written field.
func (v *Validator) text(src Source, s string, maxRunes int, oneLine bool) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			if oneLine {
				return ' '
			}
			return r
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			return -1
		}
		return r
	}, s)
	s = v.Masker.Mask(src.Path, s, src.Secrets)
	if utf8.RuneCountInString(s) > maxRunes {
		s = string([]rune(s)[:maxRunes-1]) + "…"
	}
	return s
}

// snippet caps code at MaxSnippetLines lines and MaxSnippetBytes bytes.
func snippet(code string) string {
	lines := strings.Split(code, "\n")
	cut := false
	if len(lines) > MaxSnippetLines {
		lines, cut = lines[:MaxSnippetLines], true
	}
	s := strings.Join(lines, "\n")
	if len(s) > MaxSnippetBytes {
		i := MaxSnippetBytes
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s, cut = s[:i], true
	}
	if cut {
		s += "…"
	}
	return s
}

// ValidPath reports whether p is a clean repository-relative path.
func ValidPath(p string) bool { return domain.ValidateRelativePath("file", p) == nil }

// itoa is strconv.Itoa, named for the prompt builders.
func itoa(n int) string { return strconv.Itoa(n) }
