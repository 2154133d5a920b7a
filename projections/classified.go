package projections

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/vega-sec/vega/domain"
)

// ScanClassified lists only the findings that opened or reopened an issue;
// every other finding of the scan is unchanged and has no issue event of
// its own when its issue was seen before by the same engine, or when the
// scan is stale. The projection therefore fills what the issue events left
// empty: each part sets the diff of its New and Reopened findings, and the
// last part marks every finding still without a diff unchanged, derives the
// missing issue IDs (domain.IssueID of the scan's repository and the
// finding's fingerprint) and copies their issue's triage. Every write is
// guarded by "still empty", so issue events (which come before the scan's
// ScanClassified) win and applying a part again changes nothing.
const (
	// maxClassifyIDs is how many finding IDs one SQLite statement of a
	// classification names; SQLite statements are padded to it, so each
	// has a single shape. PostgreSQL receives any number as one array.
	maxClassifyIDs = 500
	// maxIssueIDBatch is how many findings without an issue ID are read,
	// and written back, at a time: it bounds the memory of a classified
	// 100,000-finding scan.
	maxIssueIDBatch = 4096
)

// classified applies one part of the classification of scan scanID.
func (t *txn) classified(ctx context.Context, scanID string, ev domain.ScanClassified) error {
	if ev.Part < 1 || ev.Parts < ev.Part {
		return invariantf("scan %s: classification part %d of %d", scanID, ev.Part, ev.Parts)
	}
	if err := t.setDiff(ctx, scanID, ev.New, DiffNew); err != nil {
		return err
	}
	if err := t.setDiff(ctx, scanID, ev.Reopened, DiffReopened); err != nil {
		return err
	}
	if ev.Part != ev.Parts {
		return nil // later parts may still list findings as new or reopened
	}
	var repo string
	err := t.queryRow(ctx, `SELECT repository_id FROM {finding_scans} WHERE scan_id = ?`, scanID).Scan(&repo)
	if errors.Is(err, sql.ErrNoRows) {
		return invariantf("scan %s was not requested", scanID)
	}
	if err != nil {
		return err
	}
	if err := t.deriveIssueIDs(ctx, scanID, repo); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `UPDATE {findings} SET diff = ? WHERE scan_id = ? AND diff IS NULL`, DiffUnchanged, scanID); err != nil {
		return err
	}
	_, err = t.exec(ctx, `UPDATE {findings} SET
			triage = (SELECT fi.triage FROM {finding_issues} fi WHERE fi.issue_id = {findings}.issue_id),
			triage_expires_at = (SELECT fi.expires_at FROM {finding_issues} fi WHERE fi.issue_id = {findings}.issue_id)
		WHERE scan_id = ? AND triage IS NULL AND issue_id IS NOT NULL`, scanID)
	return err
}

// setDiff sets the diff of the findings ids of scan scanID that have none.
func (t *txn) setDiff(ctx context.Context, scanID string, ids []string, diff string) error {
	if len(ids) == 0 {
		return nil
	}
	if t.b.d == Postgres {
		_, err := t.exec(ctx, `UPDATE {findings} SET diff = ? WHERE scan_id = ? AND id = ANY(?::text[]) AND diff IS NULL`,
			diff, scanID, ids)
		return err
	}
	q := `UPDATE {findings} SET diff = ? WHERE scan_id = ? AND diff IS NULL AND id IN (?` +
		strings.Repeat(", ?", maxClassifyIDs-1) + `)`
	args := make([]any, 2+maxClassifyIDs)
	args[0], args[1] = diff, scanID
	for off := 0; off < len(ids); off += maxClassifyIDs {
		chunk := ids[off:min(len(ids), off+maxClassifyIDs)]
		for i := range maxClassifyIDs {
			args[2+i] = chunk[min(i, len(chunk)-1)] // padded with the last ID
		}
		if _, err := t.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// deriveIssueIDs sets issue_id = domain.IssueID(repo, fingerprint) on the
// findings of scan scanID that have none, in batches of maxIssueIDBatch.
func (t *txn) deriveIssueIDs(ctx context.Context, scanID, repo string) error {
	after := ""
	for {
		ids, fps, err := t.findingsWithoutIssue(ctx, scanID, after)
		if err != nil || len(ids) == 0 {
			return err
		}
		issues := make([]string, len(ids))
		for i, fp := range fps {
			issues[i] = domain.IssueID(repo, fp)
		}
		if err := t.setIssueIDs(ctx, scanID, ids, issues); err != nil {
			return err
		}
		if len(ids) < maxIssueIDBatch {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// findingsWithoutIssue returns the IDs and fingerprints of up to
// maxIssueIDBatch findings of scan scanID without an issue ID, after ID
// after, in ID order.
func (t *txn) findingsWithoutIssue(ctx context.Context, scanID, after string) (ids, fps []string, err error) {
	q := `SELECT id, fingerprint FROM {findings} WHERE scan_id = ? AND issue_id IS NULL AND id > ? ORDER BY id LIMIT ?`
	if err := t.flushFor(ctx, q); err != nil {
		return nil, nil, err
	}
	rows, err := t.tx.QueryContext(ctx, t.b.bind(q), scanID, after, maxIssueIDBatch)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, fp string
		if err := rows.Scan(&id, &fp); err != nil {
			return nil, nil, err
		}
		ids, fps = append(ids, id), append(fps, fp)
	}
	return ids, fps, rows.Err()
}

// setIssueIDs sets issue_id issues[i] on finding ids[i] of scan scanID.
func (t *txn) setIssueIDs(ctx context.Context, scanID string, ids, issues []string) error {
	if t.b.d == Postgres {
		_, err := t.exec(ctx, `UPDATE {findings} AS f SET issue_id = v.issue_id
			FROM unnest(?::text[], ?::text[]) AS v(id, issue_id)
			WHERE f.scan_id = ? AND f.id = v.id`, ids, issues, scanID)
		return err
	}
	q := `WITH v(id, issue_id) AS (VALUES (?, ?)` + strings.Repeat(", (?, ?)", maxClassifyIDs-1) + `)
		UPDATE {findings} SET issue_id = v.issue_id FROM v WHERE {findings}.scan_id = ? AND {findings}.id = v.id`
	args := make([]any, 2*maxClassifyIDs+1)
	for off := 0; off < len(ids); off += maxClassifyIDs {
		end := min(len(ids), off+maxClassifyIDs)
		for i := range maxClassifyIDs {
			j := min(off+i, end-1) // padded with the last pair
			args[2*i], args[2*i+1] = ids[j], issues[j]
		}
		args[2*maxClassifyIDs] = scanID
		if _, err := t.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}
