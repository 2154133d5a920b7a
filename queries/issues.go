package queries

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/vega-sec/vega/domain"
)

const issueColumns = `SELECT id, repository_id, fingerprint, rule_id, title, severity, severity_rank, file, ` + effectiveTriage + `,
	triage, triage_expires_at, first_seen_scan_id, last_seen_scan_id, state FROM issues`

func scanIssue(row interface{ Scan(...any) error }) (Issue, []any, error) {
	var (
		is      Issue
		rank    int64
		stored  string
		expires sql.NullInt64
	)
	if err := row.Scan(&is.ID, &is.RepositoryID, &is.Fingerprint, &is.RuleID, &is.Title, &is.Severity, &rank, &is.File, &is.Triage,
		&stored, &expires, &is.FirstSeenScanID, &is.LastSeenScanID, &is.State); err != nil {
		return Issue{}, nil, err
	}
	if is.Triage == domain.TriageAcceptedRisk {
		is.ExpiresAt = stamp(expires)
	}
	return is, []any{rank, is.ID}, nil
}

// ListIssues lists a repository's issues, most severe first (then by ID,
// descending),
// filtered by f; domain.ErrNotFound for a repository the caller cannot
// see, *domain.InvalidArgumentError for a bad filter value.
func (s *Service) ListIssues(ctx context.Context, c Caller, repositoryID string, f IssueFilter, o ListOptions) (Page[Issue], error) {
	triage, err := values("triage", f.Triage, validTriage)
	if err != nil {
		return Page[Issue]{}, err
	}
	sev, err := values("severity", f.Severity, validSeverity)
	if err != nil {
		return Page[Issue]{}, err
	}
	state, err := values("state", f.State, func(v string) bool {
		return v == string(domain.IssueStateOpen) || v == string(domain.IssueStateFixed)
	})
	if err != nil {
		return Page[Issue]{}, err
	}
	if _, err := s.scope(ctx, c, "repository", repositoryScope, repositoryID); err != nil {
		return Page[Issue]{}, err
	}
	now := s.now().UnixMicro()
	where, args := []string{"repository_id = ?"}, []any{repositoryID}
	// Split by triage or state, then by severity; test the rest (see
	// splitter).
	var cols []filterCol
	for _, c := range []filterCol{
		{col: "triage", vals: triageValues(triage), branches: triageBranches("triage", "triage_expires_at", triage, now)},
		{col: "state", vals: state, branches: eqBranches("state", state)},
	} {
		if len(c.vals) > 0 {
			cols = append(cols, c)
		}
	}
	drive, err := s.driver(ctx, "issues", "repository_id = ?", repositoryID, cols)
	if err != nil {
		return Page[Issue]{}, fmt.Errorf("list issues of repository %s: %w", repositoryID, err)
	}
	var sp splitter
	if len(cols) > 0 {
		sp.by(cols[drive].branches)
		if cols[drive].col == "triage" {
			triage = nil
		} else {
			state = nil
		}
	}
	if len(sev) > 0 && !sp.by(severityBranches(sev)) {
		where = append(where, severityIn(sev))
	}
	if len(state) > 0 {
		where = append(where, in(s.residual("state"), state, &args))
	}
	if len(triage) > 0 {
		where = append(where, triageIn(s.residual("triage"), "triage_expires_at", triage, now, &args))
	}
	return page(ctx, s, o, listSpec{kind: "issues",
		cols: []keyCol{{expr: "severity_rank", desc: true}, {expr: "id", desc: true}}, text: []bool{false, true},
		selekt: issueColumns, where: where, args: append([]any{now}, args...), union: sp.union},
		func(r *sql.Rows) (Issue, []any, error) { return scanIssue(r) })
}

// Issue returns an issue the caller can see with its history (oldest
// first), or domain.ErrNotFound.
func (s *Service) Issue(ctx context.Context, c Caller, id string) (Issue, error) {
	if _, err := s.scope(ctx, c, "issue", issueScope, id); err != nil {
		return Issue{}, err
	}
	is, _, err := scanIssue(s.queryRow(ctx, issueColumns+` WHERE id = ?`, s.now().UnixMicro(), id))
	if err != nil {
		return Issue{}, fmt.Errorf("get issue %s: %w", id, err)
	}
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT at, actor, kind, value, note, expires_at, scan_id FROM issue_history
		WHERE issue_id = ? ORDER BY version`), id)
	if err != nil {
		return Issue{}, fmt.Errorf("history of issue %s: %w", id, err)
	}
	defer rows.Close()
	is.History = []HistoryEntry{}
	for rows.Next() {
		var (
			h           HistoryEntry
			at          int64
			kind, value string
			expires     sql.NullInt64
		)
		if err := rows.Scan(&at, &h.Actor, &kind, &value, &h.Note, &expires, &h.ScanID); err != nil {
			return Issue{}, fmt.Errorf("history of issue %s: %w", id, err)
		}
		h.At, h.ExpiresAt = stampOf(at), stamp(expires)
		if kind == "triage" {
			h.Triage = value
		} else {
			h.State = value
		}
		is.History = append(is.History, h)
	}
	if err := rows.Err(); err != nil {
		return Issue{}, fmt.Errorf("history of issue %s: %w", id, err)
	}
	return is, nil
}
