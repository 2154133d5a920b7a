package projections

import (
	"strconv"
	"strings"
)

// Dialect names the SQL database that holds the events and the read models.
// The read models use one set of statements for both: '?' placeholders
// (rewritten by Rebind), INSERT … ON CONFLICT upserts, and portable column
// types (BIGINT, TEXT, BOOLEAN, DOUBLE PRECISION) that SQLite maps by
// affinity. Times are stored as BIGINT Unix microseconds in UTC (NULL for
// none), so ordering and comparisons behave the same in both.
type Dialect int

// Dialects. Stored nowhere; the values may change.
const (
	SQLite Dialect = iota + 1
	Postgres
)

// String returns "sqlite" or "postgres".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "dialect(" + strconv.Itoa(int(d)) + ")"
}

// Valid reports whether d is SQLite or Postgres.
func (d Dialect) Valid() bool { return d == SQLite || d == Postgres }

// Rebind rewrites the '?' placeholders of q as $1, $2, … for PostgreSQL and
// returns q unchanged for SQLite. Statements must not contain '?' anywhere
// else (no literals or operators with it).
func (d Dialect) Rebind(q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
