package queries

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/projections"
)

// Limits of every list.
const (
	DefaultLimit = 50  // items per page when ListOptions.Limit is 0
	MaxLimit     = 500 // most items per page
)

// limitOf validates a page size.
func limitOf(o ListOptions) (int, error) {
	switch {
	case o.Limit == 0:
		return DefaultLimit, nil
	case o.Limit < 1 || o.Limit > MaxLimit:
		return 0, &domain.InvalidArgumentError{Field: "limit", Reason: fmt.Sprintf("%d is not between 1 and %d", o.Limit, MaxLimit)}
	}
	return o.Limit, nil
}

// cursor is the keyset of the last item of a page: the list it belongs to
// and the values of its sort key, text (S) and integers (N) in key order
// as the list's shape says.
type cursor struct {
	K string   `json:"k"`
	S []string `json:"s,omitempty"`
	N []int64  `json:"n,omitempty"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses an opaque cursor of list kind with ns text and nn
// integer key values. ok is false for "" (the first page). Anything else
// that does not decode is an *domain.InvalidArgumentError naming "cursor".
func decodeCursor(raw, kind string, ns, nn int) (c cursor, ok bool, err error) {
	if raw == "" {
		return cursor{}, false, nil
	}
	bad := &domain.InvalidArgumentError{Field: "cursor", Reason: "not a cursor of this list"}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return cursor{}, false, bad
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return cursor{}, false, bad
	}
	if c.K != kind || len(c.S) != ns || len(c.N) != nn {
		return cursor{}, false, bad
	}
	return c, true, nil
}

// keyCol is one column of a list's sort key.
type keyCol struct {
	expr string
	desc bool
}

// after returns the condition "the row's key comes after vals in the
// list's order" for keyset pagination, and its arguments. A key whose
// columns all sort the same way gets a row-value comparison, which both
// databases turn into one index range; mixed directions get the expanded
// form.
func after(cols []keyCol, vals []any) (string, []any) {
	same := true
	for _, c := range cols {
		same = same && c.desc == cols[0].desc
	}
	if same {
		exprs := make([]string, len(cols))
		for i, c := range cols {
			exprs[i] = c.expr
		}
		op := " > "
		if cols[0].desc {
			op = " < "
		}
		return "(" + strings.Join(exprs, ", ") + ")" + op + "(?" + strings.Repeat(", ?", len(cols)-1) + ")", vals
	}
	var (
		ors  []string
		args []any
	)
	for i := range cols {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, cols[j].expr+" = ?")
			args = append(args, vals[j])
		}
		op := " > ?"
		if cols[i].desc {
			op = " < ?"
		}
		ands = append(ands, cols[i].expr+op)
		args = append(args, vals[i])
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// orderBy returns the ORDER BY clause of a sort key.
func orderBy(cols []keyCol) string {
	var parts []string
	for _, c := range cols {
		if c.desc {
			parts = append(parts, c.expr+" DESC")
		} else {
			parts = append(parts, c.expr)
		}
	}
	return " ORDER BY " + strings.Join(parts, ", ")
}

// values splits a filter value: "" is no filter; otherwise comma-separated
// values, each checked by valid (nil: any non-empty value). Errors name
// field.
func values(field, raw string, valid func(string) bool) ([]string, error) {
	if raw == "" {
		return nil, nil
	}
	var out []string
	for _, v := range strings.Split(raw, ",") {
		v = strings.TrimSpace(v)
		if v == "" || valid != nil && !valid(v) {
			return nil, &domain.InvalidArgumentError{Field: field, Reason: fmt.Sprintf("%q is not a valid value", v)}
		}
		out = append(out, v)
	}
	return out, nil
}

// in returns "expr IN (?, …)" for vals and appends them to args.
func in(expr string, vals []string, args *[]any) string {
	for _, v := range vals {
		*args = append(*args, v)
	}
	return expr + " IN (?" + strings.Repeat(", ?", len(vals)-1) + ")"
}

// triageIn returns the condition "the triage as it reads at now is one of
// vals" over a triage column and its expiry column, written so that an
// index on the triage column applies (an accepted_risk whose expiry passed
// reads open), and appends its arguments.
func triageIn(col, expires string, vals []string, now int64, args *[]any) string {
	open := slices.Contains(vals, string(domain.TriageOpen))
	risk := slices.Contains(vals, string(domain.TriageAcceptedRisk))
	set := slices.Clone(vals)
	if open && !risk {
		set = append(set, string(domain.TriageAcceptedRisk))
	}
	cond := in(col, set, args)
	switch {
	case open && !risk:
		cond += " AND (" + col + " <> ? OR " + expires + " <= ?)"
		*args = append(*args, string(domain.TriageAcceptedRisk), now)
	case risk && !open:
		cond += " AND (" + col + " <> ? OR " + expires + " > ?)"
		*args = append(*args, string(domain.TriageAcceptedRisk), now)
	}
	return "(" + cond + ")"
}

// branch is one part of a list that a listSpec's union splits: conditions
// added to the list's own and their arguments.
type branch struct {
	where []string
	args  []any
}

// maxBranches bounds how many parts a list is split into.
const maxBranches = 32

// Filters and the order index. A list sorted by (severity_rank, id) and
// filtered by "col IN (a, b)" on an index (parent, col, severity_rank, id)
// cannot walk that index in the list's order: the planner either sorts
// every matching row or walks the order index (parent, severity_rank, id)
// and tests each row, which reads the whole parent when few rows match
// (SQLite, 86 ms at 100,000 findings for a triage that none had). Split
// into one branch per value (and per severity), each branch is an
// equality prefix of an index followed by the sort key: each walks its
// index in order and stops after one page, and the page merges them.
// The filter that drives the split is the one that selects fewest rows,
// found with a capped count on each filter's index (Service.driver); the
// other filters are tested on the rows it reads (Service.residual).

// probeCap bounds how many rows a probe counts: a filter matching more is
// as good as any other that does.
const probeCap = 2000

// filterCol is one equality filter of a list: its column, its values, and
// the branches that split the list by it.
type filterCol struct {
	col      string
	vals     []string // stored values the filter may match
	branches []branch
}

// driver returns the index in cols of the filter that selects fewest rows
// of the parent (the list's first condition, with its one argument),
// counting at most probeCap rows of each with a probe on its index; with
// one filter, it returns 0 without a probe.
func (s *Service) driver(ctx context.Context, table, parentCond string, parent any, cols []filterCol) (int, error) {
	if len(cols) < 2 {
		return 0, nil
	}
	best, bestN := 0, probeCap+1
	for i, c := range cols {
		args := []any{parent}
		q := `SELECT count(*) FROM (SELECT 1 FROM ` + table + ` WHERE ` + parentCond + ` AND ` + in(c.col, c.vals, &args) +
			` LIMIT ` + strconv.Itoa(probeCap) + `) AS p`
		var n int
		if err := s.queryRow(ctx, q, args...).Scan(&n); err != nil {
			return 0, fmt.Errorf("probe %s: %w", c.col, err)
		}
		if n < bestN {
			best, bestN = i, n
		}
	}
	return best, nil
}

// residual returns the column of a filter that does not drive the split.
// On SQLite the unary + keeps the planner from using the column's index
// (which would give up the list's order and sort); PostgreSQL weighs
// indexes with per-value statistics and combines them.
func (s *Service) residual(col string) string {
	if s.d == projections.SQLite {
		return "+" + col
	}
	return col
}

// triageValues is the stored triage values that may read as one of vals.
func triageValues(vals []string) []string {
	if slices.Contains(vals, string(domain.TriageOpen)) && !slices.Contains(vals, string(domain.TriageAcceptedRisk)) {
		return append(slices.Clone(vals), string(domain.TriageAcceptedRisk))
	}
	return vals
}

// splitter collects the branches of a list.
type splitter struct{ union []branch }

// by splits the list further by bs, unless that would make more than
// maxBranches branches; it reports whether it did.
func (s *splitter) by(bs []branch) bool {
	switch {
	case len(bs) == 0:
		return false
	case len(s.union) == 0:
		s.union = bs
		return true
	case len(s.union)*len(bs) > maxBranches:
		return false
	}
	var out []branch
	for _, a := range s.union {
		for _, b := range bs {
			out = append(out, branch{where: append(append([]string(nil), a.where...), b.where...), args: append(append([]any(nil), a.args...), b.args...)})
		}
	}
	s.union = out
	return true
}

// eqBranches returns one branch "expr = ?" per value.
func eqBranches(expr string, vals []string) []branch {
	out := make([]branch, len(vals))
	for i, v := range vals {
		out[i] = branch{where: []string{expr + " = ?"}, args: []any{v}}
	}
	return out
}

// severityBranches returns one branch per severity, on severity_rank.
func severityBranches(sev []string) []branch {
	out := make([]branch, len(sev))
	for i, v := range sev {
		out[i] = branch{where: []string{"severity_rank = " + strconv.Itoa(domain.Severity(v).Rank())}}
	}
	return out
}

// severityIn returns the condition on severity_rank for a severity filter.
func severityIn(sev []string) string {
	ranks := make([]string, len(sev))
	for i, v := range sev {
		ranks[i] = strconv.Itoa(domain.Severity(v).Rank())
	}
	return "severity_rank IN (" + strings.Join(ranks, ", ") + ")"
}

// triageBranches is triageIn split: one branch per stored triage value
// that reads, at now, as one of vals.
func triageBranches(col, expires string, vals []string, now int64) []branch {
	open := slices.Contains(vals, string(domain.TriageOpen))
	risk := slices.Contains(vals, string(domain.TriageAcceptedRisk))
	var out []branch
	for _, v := range vals {
		if v == string(domain.TriageAcceptedRisk) && !open {
			out = append(out, branch{where: []string{col + " = ?", expires + " > ?"}, args: []any{v, now}})
			continue
		}
		out = append(out, branch{where: []string{col + " = ?"}, args: []any{v}})
	}
	if open && !risk {
		out = append(out, branch{where: []string{col + " = ?", expires + " <= ?"}, args: []any{string(domain.TriageAcceptedRisk), now}})
	}
	return out
}
