package projections

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
)

// Grouped writes. A page of events is applied in one transaction, and most
// of a big page is alike (a scan's findings): one INSERT per finding and
// one counts UPDATE per finding made projecting a 100,000-finding scan
// take seconds of statements. In a grouped transaction (txn.grouped) the
// projections therefore hand such writes to the txn, which holds them in
// memory and writes them together: rows as multi-row INSERTs, counter
// increments as one UPDATE per row. A held write is flushed before any
// other statement that names its table, and at the end of the page, so
// every statement sees the writes of the events before it, as if each
// event had been applied alone. A grouped write that fails names no event:
// the runner then applies the page again, in a new transaction, one event
// at a time (txn.grouped false, every write at once) to find and report the
// exact event.
const (
	// maxHeldRows is how many rows of one table a txn holds before it
	// writes them; it bounds the memory of a grouped page.
	maxHeldRows = 4096
	// maxInsertRows is the most rows of one SQLite INSERT statement (16
	// columns × 256 rows stays far below SQLite's 32,766 parameters).
	// Smaller statements are powers of two, so that a transaction
	// prepares at most nine INSERT shapes per table.
	maxInsertRows = 256
)

// rowKind is the type of one column of an insertSpec: PostgreSQL receives
// each column as one typed array.
type rowKind byte

const (
	kindText rowKind = iota
	kindInt
	kindFloat
	kindBool
	kindNullInt // int64 or nil (NULL)
)

// insertSpec is the shape of the rows a projection inserts into one table.
type insertSpec struct {
	table string // logical name, as in "{table}"
	cols  []string
	kinds []rowKind
}

func (s *insertSpec) placeholder() string { return "{" + s.table + "}" }

// single is the one-row INSERT.
func (s *insertSpec) single() string { return s.multi(1) }

// multi is the INSERT of n rows with '?' placeholders (SQLite).
func (s *insertSpec) multi(n int) string {
	row := "(?" + strings.Repeat(", ?", len(s.cols)-1) + ")"
	var b strings.Builder
	b.WriteString("INSERT INTO " + s.placeholder() + " (" + strings.Join(s.cols, ", ") + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// unnest is the INSERT of any number of rows from one array per column
// (PostgreSQL): one statement shape, one round trip, whatever the count.
func (s *insertSpec) unnest() string {
	casts := make([]string, len(s.cols))
	for i, k := range s.kinds {
		casts[i] = "?::" + [...]string{kindText: "text[]", kindInt: "bigint[]", kindFloat: "double precision[]", kindBool: "boolean[]", kindNullInt: "bigint[]"}[k]
	}
	return "INSERT INTO " + s.placeholder() + " (" + strings.Join(s.cols, ", ") + ") SELECT * FROM unnest(" + strings.Join(casts, ", ") + ")"
}

// heldRows are the rows of one insertSpec a grouped txn holds, row after
// row, flattened.
type heldRows struct {
	spec *insertSpec
	args []any
}

func (h *heldRows) rows() int { return len(h.args) / len(h.spec.cols) }

// heldCounts are increments of integer columns of rows of one table keyed
// by one column, in the order the rows were first touched.
type heldCounts struct {
	table, key string
	cols       []string
	order      []string
	deltas     map[string][]int64
}

// insert writes one row of spec: at once, or held until the txn flushes.
func (t *txn) insert(ctx context.Context, spec *insertSpec, args ...any) error {
	if len(args) != len(spec.cols) {
		return fmt.Errorf("insert into %s: %d values for %d columns", spec.table, len(args), len(spec.cols))
	}
	if !t.grouped {
		_, err := t.exec(ctx, spec.single(), args...)
		return err
	}
	h := t.rows[spec.table]
	if h == nil {
		if t.rows == nil {
			t.rows = map[string]*heldRows{}
		}
		h = &heldRows{spec: spec}
		t.rows[spec.table] = h
	}
	h.args = append(h.args, args...)
	if h.rows() >= maxHeldRows {
		return t.flushRows(ctx, h)
	}
	return nil
}

// add increments column cols[col] of the row of table whose key column is
// id, which must exist (what names it in the error otherwise): at once, or
// held until the txn flushes, summed with the other increments of the row.
func (t *txn) add(ctx context.Context, what, table, key string, cols []string, id string, col int, delta int64) error {
	if !t.grouped {
		return t.execOne(ctx, what, `UPDATE {`+table+`} SET `+cols[col]+` = `+cols[col]+` + ? WHERE `+key+` = ?`, delta, id)
	}
	h := t.counts[table]
	if h == nil {
		if t.counts == nil {
			t.counts = map[string]*heldCounts{}
		}
		h = &heldCounts{table: table, key: key, cols: cols, deltas: map[string][]int64{}}
		t.counts[table] = h
	}
	d, ok := h.deltas[id]
	if !ok {
		d = make([]int64, len(cols))
		h.deltas[id] = d
		h.order = append(h.order, id)
	}
	d[col] += delta
	return nil
}

// flushFor writes what the txn holds for the tables statement q names.
func (t *txn) flushFor(ctx context.Context, q string) error {
	for _, h := range t.rows {
		if len(h.args) > 0 && strings.Contains(q, h.spec.placeholder()) {
			if err := t.flushRows(ctx, h); err != nil {
				return err
			}
		}
	}
	for _, h := range t.counts {
		if len(h.order) > 0 && strings.Contains(q, "{"+h.table+"}") {
			if err := t.flushCounts(ctx, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush writes everything the txn holds.
func (t *txn) flush(ctx context.Context) error {
	for _, h := range t.rows {
		if err := t.flushRows(ctx, h); err != nil {
			return err
		}
	}
	for _, h := range t.counts {
		if err := t.flushCounts(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) flushRows(ctx context.Context, h *heldRows) error {
	if len(h.args) == 0 {
		return nil
	}
	args := h.args
	h.args = h.args[:0]
	spec, n := h.spec, len(args)/len(h.spec.cols)
	if t.b.d == Postgres {
		cols := make([]any, len(spec.cols))
		w := len(spec.cols)
		for c, k := range spec.kinds {
			var err error
			if cols[c], err = column(k, n, func(i int) any { return args[i*w+c] }); err != nil {
				return fmt.Errorf("insert into %s: column %s: %w", spec.table, spec.cols[c], err)
			}
		}
		_, err := t.run(ctx, spec.unnest(), cols...)
		return err
	}
	for off := 0; off < n; {
		size := maxInsertRows
		if rest := n - off; rest < size {
			size = 1 << (bits.Len(uint(rest)) - 1)
		}
		w := len(spec.cols)
		if _, err := t.run(ctx, spec.multi(size), args[off*w:(off+size)*w]...); err != nil {
			return err
		}
		off += size
	}
	return nil
}

func (t *txn) flushCounts(ctx context.Context, h *heldCounts) error {
	if len(h.order) == 0 {
		return nil
	}
	sets := make([]string, len(h.cols))
	for i, c := range h.cols {
		sets[i] = c + " = " + c + " + ?"
	}
	q := `UPDATE {` + h.table + `} SET ` + strings.Join(sets, ", ") + ` WHERE ` + h.key + ` = ?`
	order := h.order
	h.order = nil
	for _, id := range order {
		d := h.deltas[id]
		delete(h.deltas, id)
		args := make([]any, 0, len(d)+1)
		for _, v := range d {
			args = append(args, v)
		}
		n, err := t.run(ctx, q, append(args, id)...)
		if err != nil {
			return err
		}
		if n != 1 {
			return invariantf("%s row %s: %d rows changed, want 1", h.table, id, n)
		}
	}
	return nil
}

// column gathers n values of one kind into the typed slice PostgreSQL
// receives as an array.
func column(k rowKind, n int, at func(int) any) (any, error) {
	bad := func(v any) error {
		return fmt.Errorf("%T is not a %s value", v, [...]string{"text", "integer", "float", "boolean", "integer"}[k])
	}
	switch k {
	case kindText:
		out := make([]string, n)
		for i := range n {
			v, ok := at(i).(string)
			if !ok {
				return nil, bad(at(i))
			}
			out[i] = v
		}
		return out, nil
	case kindInt:
		out := make([]int64, n)
		for i := range n {
			switch v := at(i).(type) {
			case int64:
				out[i] = v
			case int:
				out[i] = int64(v)
			default:
				return nil, bad(v)
			}
		}
		return out, nil
	case kindNullInt:
		out := make([]*int64, n)
		for i := range n {
			switch v := at(i).(type) {
			case int64:
				out[i] = &v
			case nil:
			default:
				return nil, bad(v)
			}
		}
		return out, nil
	case kindFloat:
		out := make([]float64, n)
		for i := range n {
			v, ok := at(i).(float64)
			if !ok {
				return nil, bad(at(i))
			}
			out[i] = v
		}
		return out, nil
	case kindBool:
		out := make([]bool, n)
		for i := range n {
			v, ok := at(i).(bool)
			if !ok {
				return nil, bad(at(i))
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown column kind %d", k)
}
