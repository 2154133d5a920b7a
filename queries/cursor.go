package queries

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/vega-sec/vega/domain"
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
