package engine

import (
	"context"
	"errors"
	"fmt"
)

// Severity values, from most to least severe. They are stored in events, so
// the set is append-only.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
	SeverityInfo     = "info"
)

// Category values understood by Vega's engines. They are stored in events,
// so the set is append-only; engines may report other categories.
const (
	CategorySecrets   = "secrets"
	CategoryInjection = "injection"
	CategoryCrypto    = "crypto"
	CategoryConfig    = "config"
)

// ErrInvalidTarget is returned (wrapped) by Target.Validate and by engines
// given a Target that fails it.
var ErrInvalidTarget = errors.New("invalid scan target")

// Finding is what an engine reports: one rule matched at one place.
//
// Snippet is already redacted: a secret value never appears in any field
// except Match, which is excluded from JSON and must never be stored or
// logged; it exists only so that a Fingerprinter can be applied to it.
type Finding struct {
	RuleID   string `json:"rule_id"`
	Title    string `json:"title"`
	Severity string `json:"severity"` // critical, high, medium, low or info
	CWE      string `json:"cwe"`      // e.g. "CWE-798"
	Category string `json:"category"` // secrets, injection, crypto, config, …
	Engine   string `json:"engine"`
	// File is repo-relative with forward slashes, never starting with "/"
	// or containing "..".
	File        string  `json:"file"`
	StartLine   int     `json:"start_line"` // 1-based
	EndLine     int     `json:"end_line"`   // 1-based, >= StartLine
	Snippet     string  `json:"snippet"`
	Message     string  `json:"message"`
	Remediation string  `json:"remediation"`
	Confidence  float64 `json:"confidence"` // 0..1
	Fingerprint string  `json:"fingerprint"`
	// Match is the text the fingerprint is computed from (for a secret, the
	// secret itself). It never leaves the process.
	Match string `json:"-"`
}

// Target says what to scan.
type Target struct {
	// Root is the directory holding the extracted snapshot. Engines open
	// files beneath it only, never following a symlink out of it.
	Root string
	// Include, when not empty, limits the scan to paths matching one of its
	// globs; Exclude removes paths (and whole directories) matching one of
	// its globs. Globs use the syntax of Match.
	Include, Exclude []string
	// Categories, when not empty, limits findings to these categories.
	Categories []string
	// MinSeverity, when not empty, drops findings below this severity.
	MinSeverity string
}

// Validate reports whether t can be scanned: Root is set and MinSeverity is
// empty or a known severity. Its errors wrap ErrInvalidTarget.
func (t Target) Validate() error {
	if t.Root == "" {
		return fmt.Errorf("validate target: %w: empty root", ErrInvalidTarget)
	}
	if t.MinSeverity != "" && !ValidSeverity(t.MinSeverity) {
		return fmt.Errorf("validate target: %w: unknown minimum severity %q", ErrInvalidTarget, t.MinSeverity)
	}
	return nil
}

// Wants reports whether a finding of this category and severity passes the
// target's Categories and MinSeverity filters.
func (t Target) Wants(category, severity string) bool {
	if t.MinSeverity != "" && !AtLeast(severity, t.MinSeverity) {
		return false
	}
	if len(t.Categories) == 0 {
		return true
	}
	for _, c := range t.Categories {
		if c == category {
			return true
		}
	}
	return false
}

// Engine scans a target and reports findings.
//
// Scan calls emit for every finding, never concurrently, and stops at the
// first error emit returns, returning that error wrapped. It honours ctx
// cancellation and returns ctx's error wrapped when cancelled. An
// implementation is safe for concurrent Scans unless it documents otherwise.
type Engine interface {
	Name() string
	Scan(ctx context.Context, t Target, emit func(Finding) error) error
}

// severityRank orders severities; unknown values have no rank.
var severityRank = map[string]int{
	SeverityInfo:     1,
	SeverityLow:      2,
	SeverityMedium:   3,
	SeverityHigh:     4,
	SeverityCritical: 5,
}

// ValidSeverity reports whether s is one of the Severity values.
func ValidSeverity(s string) bool {
	_, ok := severityRank[s]
	return ok
}

// AtLeast reports whether severity sev is at least as severe as min. An empty
// min accepts every severity; an unknown sev, or an unknown non-empty min,
// is never at least anything.
func AtLeast(sev, min string) bool {
	if min == "" {
		return true
	}
	r, ok := severityRank[sev]
	m, okm := severityRank[min]
	return ok && okm && r >= m
}
