// Package queries is the read side of Vega: one Service with a method for
// every read of the HTTP API, over the read models that package
// projections maintains (and, for a scan's events, the event store).
//
// Every method takes the Caller and returns only objects of projects the
// caller is a member of (admins see every project). An object outside
// them is reported exactly like a missing one, domain.ErrNotFound, so
// that its existence never leaks (OWASP API1, BOLA). Removed repositories,
// and everything under them, are visible to admins only. Bad arguments
// (a limit out of range, a tampered cursor, an unknown filter value) are
// *domain.InvalidArgumentError values naming the field.
package queries

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/projections"
)

// ErrForbidden is returned by admin-only reads (ListTokens) to callers that
// are not admins.
var ErrForbidden = errors.New("forbidden")

// Options configures New. The zero value is valid.
type Options struct {
	// Clock gives the time against which triage expiry and token expiry
	// are read (default time.Now).
	Clock func() time.Time
}

// Service answers the API's reads. It is safe for concurrent use.
type Service struct {
	db     *sql.DB
	d      projections.Dialect
	events eventstore.StreamReader
	now    func() time.Time
}

// New returns a Service reading the read models through db (on SQLite
// preferably a read-only pool on the store's file; on PostgreSQL the same
// database and search_path as the projections) and scan events through
// events.
func New(db *sql.DB, d projections.Dialect, events eventstore.StreamReader, opts Options) (*Service, error) {
	if db == nil || events == nil {
		return nil, errors.New("new query service: db and events are required")
	}
	if !d.Valid() {
		return nil, fmt.Errorf("new query service: %s is not a dialect", d)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Service{db: db, d: d, events: events, now: opts.Clock}, nil
}

func notFound(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, domain.ErrNotFound)...)
}

func (s *Service) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.d.Rebind(q), args...)
}

// stamp formats stored Unix microseconds as RFC 3339 UTC; "" for NULL.
func stamp(v sql.NullInt64) string {
	if !v.Valid {
		return ""
	}
	return time.UnixMicro(v.Int64).UTC().Format(time.RFC3339Nano)
}

func stampOf(v int64) string { return stamp(sql.NullInt64{Int64: v, Valid: true}) }

// visible returns a condition restricting expr (a project ID column) to
// the caller's projects, and its arguments.
func visible(c Caller, expr string) (string, []any) {
	if c.Admin {
		return "1 = 1", nil
	}
	return expr + " IN (SELECT project_id FROM project_members WHERE principal = ?)", []any{c.Principal}
}

// RoleOf returns principal's role in the project, or domain.ErrNotFound
// when the project does not exist or principal is not a member (the HTTP
// layer answers 404 then, and 403 for a role too low). Installation admins
// are the caller's business.
func (s *Service) RoleOf(ctx context.Context, principal, projectID string) (domain.Role, error) {
	var role string
	err := s.queryRow(ctx, `SELECT role FROM project_members WHERE project_id = ? AND principal = ?`, projectID, principal).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("project %s", projectID)
	}
	if err != nil {
		return "", fmt.Errorf("role of %s in project %s: %w", principal, projectID, err)
	}
	return domain.Role(role), nil
}

// access checks that the caller may see an object of projectID under a
// repository that may be removed.
func (s *Service) access(ctx context.Context, c Caller, what, projectID string, removed bool) error {
	if c.Admin {
		return nil
	}
	if removed {
		return notFound("%s", what)
	}
	if _, err := s.RoleOf(ctx, c.Principal, projectID); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return notFound("%s", what)
		}
		return err
	}
	return nil
}

// lookup runs a query returning (project_id, removed) for one object.
func (s *Service) lookup(ctx context.Context, what, q, id string) (project string, removed bool, err error) {
	err = s.queryRow(ctx, q, id).Scan(&project, &removed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, notFound("%s %s", what, id)
	}
	if err != nil {
		return "", false, fmt.Errorf("look up %s %s: %w", what, id, err)
	}
	return project, removed, nil
}

const (
	repositoryScope = `SELECT project_id, removed FROM repositories WHERE id = ?`
	snapshotScope   = `SELECT r.project_id, r.removed FROM snapshots s JOIN repositories r ON r.id = s.repository_id WHERE s.id = ?`
	scanScope       = `SELECT s.project_id, coalesce(r.removed, false) FROM scans s LEFT JOIN repositories r ON r.id = s.repository_id WHERE s.id = ?`
	issueScope      = `SELECT r.project_id, r.removed FROM issues i JOIN repositories r ON r.id = i.repository_id WHERE i.id = ?`
)

// ProjectOfRepository returns the project of a repository (removed or
// not), or domain.ErrNotFound. It does not check the caller: pair it with
// RoleOf.
func (s *Service) ProjectOfRepository(ctx context.Context, id string) (string, error) {
	p, _, err := s.lookup(ctx, "repository", repositoryScope, id)
	return p, err
}

// ProjectOfSnapshot returns the project of a snapshot, or
// domain.ErrNotFound. It does not check the caller.
func (s *Service) ProjectOfSnapshot(ctx context.Context, id string) (string, error) {
	p, _, err := s.lookup(ctx, "snapshot", snapshotScope, id)
	return p, err
}

// ProjectOfScan returns the project of a scan, or domain.ErrNotFound. It
// does not check the caller.
func (s *Service) ProjectOfScan(ctx context.Context, id string) (string, error) {
	p, _, err := s.lookup(ctx, "scan", scanScope, id)
	return p, err
}

// ProjectOfIssue returns the project of an issue, or domain.ErrNotFound.
// It does not check the caller.
func (s *Service) ProjectOfIssue(ctx context.Context, id string) (string, error) {
	p, _, err := s.lookup(ctx, "issue", issueScope, id)
	return p, err
}

// scope checks that the caller may see the object and returns its project.
func (s *Service) scope(ctx context.Context, c Caller, what, q, id string) (string, error) {
	p, removed, err := s.lookup(ctx, what, q, id)
	if err != nil {
		return "", err
	}
	if err := s.access(ctx, c, what+" "+id, p, removed); err != nil {
		return "", err
	}
	return p, nil
}

// listSpec is one keyset-paginated list query.
type listSpec struct {
	kind   string   // cursor kind
	cols   []keyCol // sort key
	text   []bool   // per key column: text (true) or integer
	selekt string   // "SELECT … FROM …"
	where  []string
	args   []any // of selekt, then of where
	// union, when it has two or more branches, splits the list: each
	// branch's conditions are added to where in a subquery of its own, and
	// the page merges the branches' pages (see branches).
	union []branch
}

// page runs a listSpec: it decodes the cursor, reads limit+1 rows, and
// returns the items with the cursor of the last one when more follow.
// scan reads one row and returns its item and key values.
func page[T any](ctx context.Context, s *Service, o ListOptions, l listSpec, scan func(*sql.Rows) (T, []any, error)) (Page[T], error) {
	limit, err := limitOf(o)
	if err != nil {
		return Page[T]{}, err
	}
	ns, nn := 0, 0
	for _, t := range l.text {
		if t {
			ns++
		} else {
			nn++
		}
	}
	c, ok, err := decodeCursor(o.Cursor, l.kind, ns, nn)
	if err != nil {
		return Page[T]{}, err
	}
	var cond string
	var cargs []any
	if ok {
		vals := make([]any, len(l.cols))
		si, ni := 0, 0
		for i, t := range l.text {
			if t {
				vals[i] = c.S[si]
				si++
			} else {
				vals[i] = c.N[ni]
				ni++
			}
		}
		cond, cargs = after(l.cols, vals)
	}
	// The limit is a literal, not a parameter: PostgreSQL's generic plan
	// for a prepared statement cannot see a parameter's small value and
	// then prefers sorting the whole range to walking the index.
	tail := orderBy(l.cols) + " LIMIT " + strconv.Itoa(limit+1)
	one := func(b branch) (string, []any) {
		where := append(append([]string(nil), l.where...), b.where...)
		args := append(append([]any(nil), l.args...), b.args...)
		if ok {
			where, args = append(where, cond), append(args, cargs...)
		}
		q := l.selekt
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		return q + tail, args
	}
	var (
		q    string
		args []any
	)
	if len(l.union) < 2 {
		var b branch
		if len(l.union) == 1 {
			b = l.union[0]
		}
		q, args = one(b)
	} else {
		parts := make([]string, len(l.union))
		for i, b := range l.union {
			bq, bargs := one(b)
			parts[i] = "SELECT * FROM (" + bq + ") AS b" + strconv.Itoa(i)
			args = append(args, bargs...)
		}
		q = strings.Join(parts, " UNION ALL ") + tail
	}
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(q), args...)
	if err != nil {
		return Page[T]{}, fmt.Errorf("list %s: %w", l.kind, err)
	}
	defer rows.Close()
	out := Page[T]{Items: []T{}}
	var last []any
	for rows.Next() {
		if len(out.Items) == limit {
			next := cursor{K: l.kind}
			for i, v := range last {
				if l.text[i] {
					next.S = append(next.S, v.(string))
				} else {
					next.N = append(next.N, v.(int64))
				}
			}
			out.NextCursor = encodeCursor(next)
			break
		}
		item, key, err := scan(rows)
		if err != nil {
			return Page[T]{}, fmt.Errorf("list %s: %w", l.kind, err)
		}
		out.Items = append(out.Items, item)
		last = key
	}
	if err := rows.Err(); err != nil {
		return Page[T]{}, fmt.Errorf("list %s: %w", l.kind, err)
	}
	return out, nil
}
