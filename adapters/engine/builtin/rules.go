package builtin

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/vega-sec/vega/adapters/engine"
)

//go:embed rules/*.json
var rulePacks embed.FS

// Rule is the public description of one builtin rule, with the samples its
// tests run. It is a copy: changing it changes nothing in the engine.
type Rule struct {
	ID          string
	Title       string
	CWE         string
	Severity    string
	Category    string
	Message     string
	Remediation string
	// Languages and Files say which files the rule applies to: a file
	// whose language (see Language) is listed, or whose path matches one
	// of the globs. Both empty means every text file.
	Languages []string
	Files     []string
	// Keywords are lower-case literals; the rule's patterns run only
	// around the lines where one of them occurs (ASCII case-insensitive).
	Keywords   []string
	Confidence float64
	// Secret says the rule reports a secret value, which is redacted from
	// the snippet.
	Secret   bool
	Examples Examples
}

// Examples are a rule's samples: every positive must yield the rule at least
// once and no negative may.
type Examples struct {
	Positive []Example `json:"positive"`
	Negative []Example `json:"negative"`
}

// Example is one sample file. Secret, for a positive sample of a secret rule,
// is the planted value that must never appear in a finding.
type Example struct {
	File   string `json:"file"`
	Code   string `json:"code"`
	Secret string `json:"secret,omitempty"`
}

// packSpec is the JSON form of a rule pack file.
type packSpec struct {
	Pack string `json:"pack"`
	// SecretAllow are patterns added to the allow list of every rule of the
	// pack that has a secret group: placeholders and environment lookups.
	SecretAllow []string   `json:"secret_allow"`
	Rules       []ruleSpec `json:"rules"`
}

// ruleSpec is the JSON form of one rule.
type ruleSpec struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	CWE         string   `json:"cwe"`
	Severity    string   `json:"severity"`
	Category    string   `json:"category"`
	Languages   []string `json:"languages"`
	Files       []string `json:"files"`
	Keywords    []string `json:"keywords"`
	Patterns    []string `json:"patterns"`
	SecretGroup int      `json:"secret_group"`
	// RedactKeep is how many leading characters of a secret a snippet
	// shows (default 4, never more than a quarter of the secret).
	RedactKeep *int `json:"redact_keep"`
	// Allow drops a match whose secret (or, without a secret group, whole
	// matched text) matches one of these patterns.
	Allow []string `json:"allow"`
	// NegativePatterns drop a match when one matches the full lines of
	// the match.
	NegativePatterns []string `json:"negative_patterns"`
	// AbsentAfter keeps a match only when this pattern does not match
	// anywhere in the file after the match.
	AbsentAfter string `json:"absent_after"`
	// LastMatch keeps only the last surviving match in the file.
	LastMatch bool `json:"last_match"`
	// Entropy is the minimum Shannon entropy, in bits per byte, of the
	// secret for the match to count.
	Entropy float64 `json:"entropy"`
	// Generic marks a catch-all rule whose match is dropped when its
	// secret overlaps a secret found by a specific rule.
	Generic bool `json:"generic"`
	// Anchored says every match starts exactly where one of the rule's
	// keywords starts, so the patterns are tried only there: the cheapest
	// way to run a rule whose keywords are common words.
	Anchored bool `json:"anchored"`
	// WindowLines is how many lines after a keyword's line the patterns
	// see (default defaultWindowLines).
	WindowLines *int     `json:"window_lines"`
	Confidence  float64  `json:"confidence"`
	Message     string   `json:"message"`
	Remediation string   `json:"remediation"`
	Examples    Examples `json:"examples"`
}

// Window defaults: a rule's patterns see windowLinesBefore lines before a
// keyword's line, that line, and its window_lines after it (default
// defaultWindowLines); rules whose matches span lines raise window_lines.
const (
	defaultWindowLines = 0
	windowLinesBefore  = 0
	maxWindowLines     = 400
	defaultRedactKeep  = 4
)

var validCategories = []string{engine.CategorySecrets, engine.CategoryInjection, engine.CategoryCrypto, engine.CategoryConfig}

// rule is a compiled rule.
type rule struct {
	Rule
	index    int
	patterns []*regexp.Regexp
	sources  []string // the patterns as written, for the benchmark's ripgrep run
	// filters[i] is a literal condition that a text must meet for
	// patterns[i] to match in it.
	filters     []patternFilter
	anchored    bool
	secretGroup int
	redactKeep  int
	allow       []*regexp.Regexp
	negative    []*regexp.Regexp
	absentAfter *regexp.Regexp
	lastMatch   bool
	entropy     float64
	generic     bool
	windowLines int
}

// loadRules parses and compiles every embedded rule pack, rejecting a rule
// that lacks a required field, has a duplicate ID, an unknown severity,
// category or language, a keyword that is not lower-case ASCII, or a pattern
// that does not compile.
func loadRules() ([]*rule, error) {
	names, err := fs.Glob(rulePacks, "rules/*.json")
	if err != nil {
		return nil, fmt.Errorf("list rule packs: %w", err)
	}
	var rules []*rule
	seen := map[string]bool{}
	for _, name := range names {
		data, err := rulePacks.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read rule pack %s: %w", name, err)
		}
		var pack packSpec
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&pack); err != nil {
			return nil, fmt.Errorf("parse rule pack %s: %w", name, err)
		}
		if want := strings.TrimSuffix(path.Base(name), ".json"); pack.Pack != want {
			return nil, fmt.Errorf("parse rule pack %s: pack %q, want %q", name, pack.Pack, want)
		}
		for _, spec := range pack.Rules {
			r, err := compileRule(spec, pack.SecretAllow)
			if err != nil {
				return nil, fmt.Errorf("compile rule pack %s: %w", name, err)
			}
			if seen[r.ID] {
				return nil, fmt.Errorf("compile rule pack %s: duplicate rule %s", name, r.ID)
			}
			seen[r.ID] = true
			r.index = len(rules)
			rules = append(rules, r)
		}
	}
	return rules, nil
}

func compileRule(s ruleSpec, packAllow []string) (*rule, error) {
	missing := func(field string) error { return fmt.Errorf("rule %q: missing %s", s.ID, field) }
	switch {
	case s.ID == "":
		return nil, missing("id")
	case s.Title == "":
		return nil, missing("title")
	case !strings.HasPrefix(s.CWE, "CWE-"):
		return nil, missing("cwe")
	case s.Message == "":
		return nil, missing("message")
	case s.Remediation == "":
		return nil, missing("remediation")
	case len(s.Keywords) == 0:
		return nil, missing("keywords")
	case len(s.Patterns) == 0:
		return nil, missing("patterns")
	case len(s.Examples.Positive) == 0 || len(s.Examples.Negative) == 0:
		return nil, missing("positive and negative examples")
	case !engine.ValidSeverity(s.Severity):
		return nil, fmt.Errorf("rule %q: unknown severity %q", s.ID, s.Severity)
	case !slices.Contains(validCategories, s.Category):
		return nil, fmt.Errorf("rule %q: unknown category %q", s.ID, s.Category)
	case !strings.HasPrefix(s.ID, s.Category+"."):
		return nil, fmt.Errorf("rule %q: id does not start with its category", s.ID)
	case s.Confidence <= 0 || s.Confidence > 1:
		return nil, fmt.Errorf("rule %q: confidence %v not in (0, 1]", s.ID, s.Confidence)
	}
	for _, l := range s.Languages {
		if !slices.Contains(languages, l) {
			return nil, fmt.Errorf("rule %q: unknown language %q", s.ID, l)
		}
	}
	r := &rule{
		Rule: Rule{
			ID: s.ID, Title: s.Title, CWE: s.CWE, Severity: s.Severity, Category: s.Category,
			Message: s.Message, Remediation: s.Remediation,
			Languages: s.Languages, Files: s.Files, Keywords: s.Keywords,
			Confidence: s.Confidence, Secret: s.SecretGroup > 0, Examples: s.Examples,
		},
		sources:     s.Patterns,
		secretGroup: s.SecretGroup,
		redactKeep:  defaultRedactKeep,
		lastMatch:   s.LastMatch,
		anchored:    s.Anchored,
		entropy:     s.Entropy,
		generic:     s.Generic,
		windowLines: defaultWindowLines,
	}
	if s.RedactKeep != nil {
		r.redactKeep = *s.RedactKeep
	}
	if s.WindowLines != nil {
		if *s.WindowLines < 0 || *s.WindowLines > maxWindowLines {
			return nil, fmt.Errorf("rule %q: window_lines %d not in [0, %d]", s.ID, *s.WindowLines, maxWindowLines)
		}
		r.windowLines = *s.WindowLines
	}
	for _, kw := range s.Keywords {
		if kw == "" || strings.ToLower(kw) != kw {
			return nil, fmt.Errorf("rule %q: keyword %q is not lower case", s.ID, kw)
		}
	}
	compile := func(exprs []string) ([]*regexp.Regexp, error) {
		var res []*regexp.Regexp
		for _, e := range exprs {
			re, err := regexp.Compile(e)
			if err != nil {
				return nil, fmt.Errorf("rule %q: compile %s: %w", s.ID, e, err)
			}
			res = append(res, re)
		}
		return res, nil
	}
	exprs := s.Patterns
	if s.Anchored {
		exprs = make([]string, len(s.Patterns))
		for i, p := range s.Patterns {
			exprs[i] = "^(?:" + p + ")"
		}
	}
	var err error
	if r.patterns, err = compile(exprs); err != nil {
		return nil, err
	}
	for _, p := range s.Patterns {
		f, err := newPatternFilter(p, s.Keywords)
		if err != nil {
			return nil, fmt.Errorf("rule %q: prefilter %s: %w", s.ID, p, err)
		}
		r.filters = append(r.filters, f)
	}
	for _, re := range r.patterns {
		if re.NumSubexp() < s.SecretGroup {
			return nil, fmt.Errorf("rule %q: pattern %s has no group %d", s.ID, re, s.SecretGroup)
		}
	}
	allow := s.Allow
	if s.SecretGroup > 0 {
		allow = append(slices.Clip(allow), packAllow...)
	}
	if r.allow, err = compile(allow); err != nil {
		return nil, err
	}
	if r.negative, err = compile(s.NegativePatterns); err != nil {
		return nil, err
	}
	if s.AbsentAfter != "" {
		if r.absentAfter, err = regexp.Compile(s.AbsentAfter); err != nil {
			return nil, fmt.Errorf("rule %q: compile %s: %w", s.ID, s.AbsentAfter, err)
		}
	}
	return r, nil
}

// public returns a deep copy of the rule's public description.
func (r *rule) public() Rule {
	p := r.Rule
	p.Languages = slices.Clone(p.Languages)
	p.Files = slices.Clone(p.Files)
	p.Keywords = slices.Clone(p.Keywords)
	p.Examples.Positive = slices.Clone(p.Examples.Positive)
	p.Examples.Negative = slices.Clone(p.Examples.Negative)
	return p
}

// Language names the builtin engine recognises.
const (
	LangPython     = "python"
	LangGo         = "go"
	LangJavaScript = "javascript"
	LangTypeScript = "typescript"
	LangJava       = "java"
	LangDockerfile = "dockerfile"
	LangYAML       = "yaml"
	LangJSON       = "json"
	LangProperties = "properties"
	LangEnv        = "env"
)

var languages = []string{LangPython, LangGo, LangJavaScript, LangTypeScript, LangJava, LangDockerfile, LangYAML, LangJSON, LangProperties, LangEnv}

// Language returns the language the builtin engine assigns to a
// repo-relative path, from its name alone, or "" when it has none.
func Language(p string) string {
	base := path.Base(p)
	lower := strings.ToLower(base)
	switch {
	case lower == "dockerfile" || lower == "containerfile" ||
		strings.HasPrefix(lower, "dockerfile.") || strings.HasSuffix(lower, ".dockerfile"):
		return LangDockerfile
	case lower == ".env" || strings.HasPrefix(lower, ".env.") || strings.HasSuffix(lower, ".env"):
		return LangEnv
	}
	switch strings.ToLower(path.Ext(base)) {
	case ".py", ".pyw":
		return LangPython
	case ".go":
		return LangGo
	case ".js", ".jsx", ".mjs", ".cjs":
		return LangJavaScript
	case ".ts", ".tsx", ".mts", ".cts":
		return LangTypeScript
	case ".java":
		return LangJava
	case ".yaml", ".yml":
		return LangYAML
	case ".json":
		return LangJSON
	case ".properties":
		return LangProperties
	}
	return ""
}

// appliesTo reports whether the rule's language and file filters admit the
// file.
func (r *rule) appliesTo(p, lang string) bool {
	if len(r.Languages) == 0 && len(r.Files) == 0 {
		return true
	}
	return (lang != "" && slices.Contains(r.Languages, lang)) || engine.Match(r.Files, p)
}
