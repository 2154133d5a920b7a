package queries

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/projections"
)

// benchPageLimit is the page size BenchFindingsPage and BenchIssuesPage
// read: the API's default.
const benchPageLimit = DefaultLimit

// BenchFindingsPage lists pages of the findings of scan scanID as caller, n
// times, and returns the median and 99th percentile of one page's latency,
// for the dashboard/API figure. Each page has a random combination of the
// API's findings filters (severity, triage, diff, rule, file; each absent
// or one to three values, rules and files drawn from the scan's own and,
// now and then, one that matches nothing) and starts, half the time, at a
// random depth: after the cursor of a random finding of the scan. It
// returns an error for n < 1, for a scan without findings, and for any
// failed read. Run it on a caught-up read model; it writes nothing.
func BenchFindingsPage(ctx context.Context, q *Service, caller Caller, scanID string, n int) (p50, p99 time.Duration, err error) {
	if n < 1 {
		return 0, 0, errors.New("bench findings page: n must be at least 1")
	}
	keys, err := q.benchKeys(ctx, `SELECT severity_rank, id FROM findings WHERE scan_id = ?`, scanID)
	if err != nil {
		return 0, 0, fmt.Errorf("bench findings page: %w", err)
	}
	rules, err := q.benchDistinct(ctx, `SELECT DISTINCT rule_id FROM findings WHERE scan_id = ?`, scanID)
	if err != nil {
		return 0, 0, fmt.Errorf("bench findings page: %w", err)
	}
	files, err := q.benchDistinct(ctx, `SELECT DISTINCT file FROM findings WHERE scan_id = ?`, scanID)
	if err != nil {
		return 0, 0, fmt.Errorf("bench findings page: %w", err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	return benchLatency(n, func() error {
		f := randomFindingFilter(rng, rules, files)
		_, err := q.ListFindings(ctx, caller, scanID, f, ListOptions{Limit: benchPageLimit, Cursor: benchCursor(rng, "findings", keys)})
		return err
	})
}

// BenchIssuesPage is BenchFindingsPage for the issues of repository
// repositoryID, with random combinations of the issues filters (triage,
// severity, state).
func BenchIssuesPage(ctx context.Context, q *Service, caller Caller, repositoryID string, n int) (p50, p99 time.Duration, err error) {
	if n < 1 {
		return 0, 0, errors.New("bench issues page: n must be at least 1")
	}
	keys, err := q.benchKeys(ctx, `SELECT severity_rank, id FROM issues WHERE repository_id = ?`, repositoryID)
	if err != nil {
		return 0, 0, fmt.Errorf("bench issues page: %w", err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	return benchLatency(n, func() error {
		f := randomIssueFilter(rng)
		_, err := q.ListIssues(ctx, caller, repositoryID, f, ListOptions{Limit: benchPageLimit, Cursor: benchCursor(rng, "issues", keys)})
		return err
	})
}

// randomFindingFilter returns a random combination of findings filters,
// rules and files drawn from the given values or, now and then, a value
// nothing has.
func randomFindingFilter(rng *rand.Rand, rules, files []string) FindingFilter {
	severities := make([]string, 0, 5)
	for _, s := range domain.Severities() {
		severities = append(severities, string(s))
	}
	triages := make([]string, 0, 5)
	for _, t := range domain.Triages() {
		triages = append(triages, string(t))
	}
	diffs := []string{projections.DiffNew, projections.DiffUnchanged, projections.DiffReopened}
	return FindingFilter{
		Severity: pick(rng, severities, 3),
		Triage:   pick(rng, triages, 3),
		Diff:     pick(rng, diffs, 2),
		Rule:     pick(rng, append(slices.Clip(rules), "no.such.rule"), 3),
		File:     pick(rng, append(slices.Clip(files), "no/such/file.go"), 3),
	}
}

// randomIssueFilter returns a random combination of issues filters.
func randomIssueFilter(rng *rand.Rand) IssueFilter {
	severities := make([]string, 0, 5)
	for _, s := range domain.Severities() {
		severities = append(severities, string(s))
	}
	triages := make([]string, 0, 5)
	for _, t := range domain.Triages() {
		triages = append(triages, string(t))
	}
	return IssueFilter{
		Severity: pick(rng, severities, 3),
		Triage:   pick(rng, triages, 3),
		State:    pick(rng, []string{string(domain.IssueStateOpen), string(domain.IssueStateFixed)}, 1),
	}
}

// pick returns "" (no filter) half the time, else 1 to most distinct
// values of vals, comma-separated.
func pick(rng *rand.Rand, vals []string, most int) string {
	if len(vals) == 0 || rng.IntN(2) == 0 {
		return ""
	}
	k := 1 + rng.IntN(min(most, len(vals)))
	var out []string
	for _, i := range rng.Perm(len(vals))[:k] {
		out = append(out, vals[i])
	}
	return strings.Join(out, ",")
}

// benchKey is the sort key of one row of a list by (severity_rank, id).
type benchKey struct {
	rank int64
	id   string
}

// benchCursor returns "" half the time, else the cursor after a random key.
func benchCursor(rng *rand.Rand, kind string, keys []benchKey) string {
	if rng.IntN(2) == 0 {
		return ""
	}
	k := keys[rng.IntN(len(keys))]
	return encodeCursor(cursor{K: kind, S: []string{k.id}, N: []int64{k.rank}})
}

func (s *Service) benchKeys(ctx context.Context, q, parent string) ([]benchKey, error) {
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(q), parent)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []benchKey
	for rows.Next() {
		var k benchKey
		if err := rows.Scan(&k.rank, &k.id); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s has no rows to list", parent)
	}
	return keys, nil
}

func (s *Service) benchDistinct(ctx context.Context, q, parent string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(q), parent)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// benchLatency runs fn n times and returns the median and 99th percentile
// of its duration.
func benchLatency(n int, fn func() error) (p50, p99 time.Duration, err error) {
	d := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		if err := fn(); err != nil {
			return 0, 0, err
		}
		d[i] = time.Since(start)
	}
	slices.Sort(d)
	return d[(n-1)/2], d[(n*99+99)/100-1], nil
}
