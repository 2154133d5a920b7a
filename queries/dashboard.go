package queries

import (
	"context"
	"fmt"

	"github.com/vega-sec/vega/domain"
)

// DashboardRecentScans is how many scans Dashboard lists.
const DashboardRecentScans = 10

// Dashboard summarises the caller's projects (admins: every project). Open
// issues are those in state open whose triage, as it reads now, is open or
// under_review (a dismissed issue needs no work); removed repositories and
// their scans and issues are left out for everyone.
func (s *Service) Dashboard(ctx context.Context, c Caller) (Dashboard, error) {
	d := Dashboard{Scans: map[string]int{}, OpenIssues: map[string]int{}, RecentScans: []Scan{}}
	for _, st := range domain.ScanStates() {
		d.Scans[string(st)] = 0
	}
	for _, sv := range domain.Severities() {
		d.OpenIssues[string(sv)] = 0
	}
	cond, args := visible(c, "id")
	if err := s.queryRow(ctx, `SELECT count(*) FROM projects WHERE `+cond, args...).Scan(&d.Projects); err != nil {
		return Dashboard{}, fmt.Errorf("dashboard projects: %w", err)
	}
	cond, args = visible(c, "project_id")
	if err := s.queryRow(ctx, `SELECT count(*) FROM repositories WHERE removed = ? AND `+cond, append([]any{false}, args...)...).Scan(&d.Repositories); err != nil {
		return Dashboard{}, fmt.Errorf("dashboard repositories: %w", err)
	}
	live := `s.repository_id IN (SELECT id FROM repositories WHERE removed = ?)`
	cond, args = visible(c, "s.project_id")
	if err := s.counts(ctx, d.Scans, `SELECT s.status, count(*) FROM scans s WHERE `+live+` AND `+cond+` GROUP BY s.status`,
		append([]any{false}, args...)...); err != nil {
		return Dashboard{}, fmt.Errorf("dashboard scans: %w", err)
	}
	cond, args = visible(c, "r.project_id")
	if err := s.counts(ctx, d.OpenIssues, `SELECT i.severity, count(*) FROM issues i JOIN repositories r ON r.id = i.repository_id
		WHERE r.removed = ? AND i.state = ? AND (i.triage IN (?, ?) OR (i.triage = ? AND i.triage_expires_at <= ?)) AND `+cond+`
		GROUP BY i.severity`, append([]any{false, string(domain.IssueStateOpen), string(domain.TriageOpen), string(domain.TriageUnderReview),
		string(domain.TriageAcceptedRisk), s.now().UnixMicro()}, args...)...); err != nil {
		return Dashboard{}, fmt.Errorf("dashboard issues: %w", err)
	}
	cond, args = visible(c, "s.project_id")
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(scanColumns+` WHERE `+live+` AND `+cond+` ORDER BY s.requested_at DESC, s.id DESC LIMIT ?`),
		append(append([]any{false}, args...), DashboardRecentScans)...)
	if err != nil {
		return Dashboard{}, fmt.Errorf("dashboard recent scans: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		sc, _, err := scanScan(rows)
		if err != nil {
			return Dashboard{}, fmt.Errorf("dashboard recent scans: %w", err)
		}
		d.RecentScans = append(d.RecentScans, sc)
	}
	if err := rows.Err(); err != nil {
		return Dashboard{}, fmt.Errorf("dashboard recent scans: %w", err)
	}
	return d, nil
}

// counts adds the (key, count) rows of q to m.
func (s *Service) counts(ctx context.Context, m map[string]int, q string, args ...any) error {
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(q), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k string
			n int
		)
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		m[k] += n
	}
	return rows.Err()
}
