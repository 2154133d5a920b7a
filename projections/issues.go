package projections

import (
	"context"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// History kinds of issue_history rows.
const (
	HistoryState  = "state"
	HistoryTriage = "triage"
)

func issuesProjection() *projection {
	return &projection{
		name:       NameIssues,
		version:    1,
		categories: []string{"issue"},
		tables: []table{
			{name: "issues", ddl: []string{`CREATE TABLE {t} (
				id                 TEXT   NOT NULL PRIMARY KEY,
				repository_id      TEXT   NOT NULL,
				fingerprint        TEXT   NOT NULL,
				rule_id            TEXT   NOT NULL,
				title              TEXT   NOT NULL,
				severity           TEXT   NOT NULL,
				severity_rank      BIGINT NOT NULL,
				file               TEXT   NOT NULL,
				state              TEXT   NOT NULL,
				triage             TEXT   NOT NULL,
				triage_note        TEXT   NOT NULL,
				triage_expires_at  BIGINT,
				triaged_by         TEXT   NOT NULL,
				first_seen_scan_id TEXT   NOT NULL,
				last_seen_scan_id  TEXT   NOT NULL,
				fixed_by_scan_id   TEXT   NOT NULL,
				opened_at          BIGINT NOT NULL,
				updated_at         BIGINT NOT NULL
			)`,
				`CREATE UNIQUE INDEX {t}_fingerprint ON {t} (repository_id, fingerprint)`,
				`CREATE INDEX {t}_order ON {t} (repository_id, severity_rank, id)`,
				`CREATE INDEX {t}_state ON {t} (repository_id, state, severity_rank, id)`,
				`CREATE INDEX {t}_triage ON {t} (repository_id, triage, severity_rank, id)`}},
			// One row per state or triage change; version is the issue
			// stream's version of the event.
			{name: "issue_history", ddl: []string{`CREATE TABLE {t} (
				issue_id   TEXT   NOT NULL,
				version    BIGINT NOT NULL,
				at         BIGINT NOT NULL,
				actor      TEXT   NOT NULL,
				kind       TEXT   NOT NULL,
				value      TEXT   NOT NULL,
				note       TEXT   NOT NULL,
				expires_at BIGINT,
				scan_id    TEXT   NOT NULL,
				PRIMARY KEY (issue_id, version)
			)`}},
		},
		apply: applyIssue,
	}
}

// issueRow and historyRow are the rows of an IssueOpened and of a history
// entry; a page's rows are written together (see group.go).
var (
	issueRow = &insertSpec{table: "issues",
		cols: []string{"id", "repository_id", "fingerprint", "rule_id", "title", "severity", "severity_rank",
			"file", "state", "triage", "triage_note", "triaged_by", "first_seen_scan_id", "last_seen_scan_id", "fixed_by_scan_id", "opened_at", "updated_at"},
		kinds: []rowKind{kindText, kindText, kindText, kindText, kindText, kindText, kindInt,
			kindText, kindText, kindText, kindText, kindText, kindText, kindText, kindText, kindInt, kindInt}}
	historyRow = &insertSpec{table: "issue_history",
		cols:  []string{"issue_id", "version", "at", "actor", "kind", "value", "note", "expires_at", "scan_id"},
		kinds: []rowKind{kindText, kindInt, kindInt, kindText, kindText, kindText, kindText, kindNullInt, kindText}}
)

func applyIssue(ctx context.Context, t *txn, e eventstore.RecordedEvent, ev domain.Event) error {
	id := e.StreamID.ID()
	what := "issue " + id
	history := func(at int64, actor, kind, value, note string, expires any, scanID string) error {
		return t.insert(ctx, historyRow, id, e.Version, at, actor, kind, value, note, expires, scanID)
	}
	switch ev := ev.(type) {
	case domain.IssueOpened:
		if ev.IssueID != id {
			return invariantf("IssueOpened for issue %q on stream %s", ev.IssueID, e.StreamID)
		}
		at := ev.At.UnixMicro()
		if err := t.insert(ctx, issueRow, id, ev.RepositoryID, ev.Fingerprint, ev.RuleID, ev.Title, string(ev.Severity), ev.Severity.Rank(), ev.File,
			string(domain.IssueStateOpen), string(domain.TriageOpen), "", "", ev.ScanID, ev.ScanID, "", at, at); err != nil {
			return err
		}
		return history(at, e.Metadata.Actor, HistoryState, string(domain.IssueStateOpen), "", nil, ev.ScanID)
	case domain.IssueSeen:
		return t.execOne(ctx, what, `UPDATE {issues} SET last_seen_scan_id = ?, title = ?, severity = ?, severity_rank = ?,
			file = ?, updated_at = ? WHERE id = ?`, ev.ScanID, ev.Title, string(ev.Severity), ev.Severity.Rank(), ev.File, ev.At.UnixMicro(), id)
	case domain.IssueReopened:
		at := ev.At.UnixMicro()
		if err := t.execOne(ctx, what, `UPDATE {issues} SET state = ?, fixed_by_scan_id = '', last_seen_scan_id = ?, title = ?,
			severity = ?, severity_rank = ?, file = ?, updated_at = ? WHERE id = ?`, string(domain.IssueStateOpen), ev.ScanID,
			ev.Title, string(ev.Severity), ev.Severity.Rank(), ev.File, at, id); err != nil {
			return err
		}
		return history(at, e.Metadata.Actor, HistoryState, string(domain.IssueStateOpen), "", nil, ev.ScanID)
	case domain.IssueFixed:
		at := ev.At.UnixMicro()
		if err := t.execOne(ctx, what, `UPDATE {issues} SET state = ?, fixed_by_scan_id = ?, updated_at = ? WHERE id = ?`,
			string(domain.IssueStateFixed), ev.ScanID, at, id); err != nil {
			return err
		}
		return history(at, e.Metadata.Actor, HistoryState, string(domain.IssueStateFixed), "", nil, ev.ScanID)
	case domain.IssueTriaged:
		at := ev.At.UnixMicro()
		if err := t.execOne(ctx, what, `UPDATE {issues} SET triage = ?, triage_note = ?, triage_expires_at = ?, triaged_by = ?,
			updated_at = ? WHERE id = ?`, string(ev.Status), ev.Note, micros(ev.ExpiresAt), ev.Actor, at, id); err != nil {
			return err
		}
		return history(at, ev.Actor, HistoryTriage, string(ev.Status), ev.Note, micros(ev.ExpiresAt), "")
	}
	return nil
}
