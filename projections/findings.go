package projections

import (
	"context"
	"database/sql"
	"errors"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// Finding diffs, set when the scan's findings are classified.
const (
	DiffNew       = "new"
	DiffUnchanged = "unchanged"
	DiffReopened  = "reopened"
)

// findingsProjection keeps the findings of every scan's final attempt, with
// the classification a completed scan gives them (issue_id, diff) and their
// issue's triage, copied so that findings filter without a join. A
// requeued attempt's findings are deleted (the domain discards them).
func findingsProjection() *projection {
	return &projection{
		name: NameFindings,
		// Version 2: ScanClassified fills diff, issue_id and triage of the
		// findings no issue event names (unchanged ones, stale scans).
		version:    2,
		categories: []string{"scan", "issue"},
		types: []string{"ScanRequested", "FindingRecorded", "ScanRequeued", "ScanClassified",
			"IssueOpened", "IssueSeen", "IssueReopened", "IssueTriaged"},
		tables: []table{
			// severity_rank is domain.Severity.Rank: lists read critical
			// first. issue_id, diff and triage are NULL until classified.
			{name: "findings", ddl: []string{`CREATE TABLE {t} (
				scan_id           TEXT    NOT NULL,
				id                TEXT    NOT NULL,
				issue_id          TEXT,
				fingerprint       TEXT    NOT NULL,
				rule_id           TEXT    NOT NULL,
				title             TEXT    NOT NULL,
				severity          TEXT    NOT NULL,
				severity_rank     BIGINT  NOT NULL,
				cwe               TEXT    NOT NULL,
				engine            TEXT    NOT NULL,
				file              TEXT    NOT NULL,
				start_line        BIGINT  NOT NULL,
				end_line          BIGINT  NOT NULL,
				snippet           TEXT    NOT NULL,
				message           TEXT    NOT NULL,
				remediation       TEXT    NOT NULL,
				confidence        DOUBLE PRECISION NOT NULL,
				diff              TEXT,
				triage            TEXT,
				triage_expires_at BIGINT,
				PRIMARY KEY (scan_id, id)
			)`,
				`CREATE INDEX {t}_order ON {t} (scan_id, severity_rank, id)`,
				`CREATE INDEX {t}_rule ON {t} (scan_id, rule_id, severity_rank, id)`,
				`CREATE INDEX {t}_file ON {t} (scan_id, file, severity_rank, id)`,
				`CREATE INDEX {t}_diff ON {t} (scan_id, diff, severity_rank, id)`,
				`CREATE INDEX {t}_triage ON {t} (scan_id, triage, severity_rank, id)`,
				`CREATE INDEX {t}_issue ON {t} (issue_id)`},
				writeIndexes: []string{"{t}_issue"}},
			// The current triage of every issue, for findings classified
			// after the issue was triaged.
			{name: "finding_issues", ddl: []string{`CREATE TABLE {t} (
				issue_id   TEXT   NOT NULL PRIMARY KEY,
				triage     TEXT   NOT NULL,
				expires_at BIGINT
			)`}},
			// The repository of every scan, from which ScanClassified
			// derives the issue_id of findings no issue event names.
			{name: "finding_scans", ddl: []string{`CREATE TABLE {t} (
				scan_id       TEXT NOT NULL PRIMARY KEY,
				repository_id TEXT NOT NULL
			)`}},
		},
		apply: applyFinding,
	}
}

// findingRow is the row a FindingRecorded inserts; a page's findings are
// written together (see group.go).
var findingRow = &insertSpec{table: "findings",
	cols: []string{"scan_id", "id", "fingerprint", "rule_id", "title", "severity", "severity_rank", "cwe",
		"engine", "file", "start_line", "end_line", "snippet", "message", "remediation", "confidence"},
	kinds: []rowKind{kindText, kindText, kindText, kindText, kindText, kindText, kindInt, kindText,
		kindText, kindText, kindInt, kindInt, kindText, kindText, kindText, kindFloat}}

// findingIssueRow is the row of a new issue's triage.
var findingIssueRow = &insertSpec{table: "finding_issues", cols: []string{"issue_id", "triage", "expires_at"},
	kinds: []rowKind{kindText, kindText, kindNullInt}}

func applyFinding(ctx context.Context, t *txn, e eventstore.RecordedEvent, ev domain.Event) error {
	id := e.StreamID.ID()
	switch ev := ev.(type) {
	case domain.FindingRecorded:
		f := ev.Finding
		if !f.Severity.Valid() {
			return invariantf("finding %s has severity %q", f.ID, f.Severity)
		}
		return t.insert(ctx, findingRow, id, f.ID, f.Fingerprint, f.RuleID, f.Title, string(f.Severity), f.Severity.Rank(), f.CWE,
			f.Engine, f.File, f.StartLine, f.EndLine, f.Snippet, f.Message, f.Remediation, f.Confidence)
	case domain.ScanRequested:
		_, err := t.exec(ctx, `INSERT INTO {finding_scans} (scan_id, repository_id) VALUES (?, ?)`, id, ev.RepositoryID)
		return err
	case domain.ScanClassified:
		return t.classified(ctx, id, ev)
	case domain.ScanRequeued:
		_, err := t.exec(ctx, `DELETE FROM {findings} WHERE scan_id = ?`, id)
		return err
	case domain.IssueOpened:
		if err := t.insert(ctx, findingIssueRow, id, string(domain.TriageOpen), nil); err != nil {
			return err
		}
		// A new issue's triage is open: no need to read it back.
		return t.link(ctx, id, ev.ScanID, ev.FindingID, DiffNew, string(domain.TriageOpen), nil)
	case domain.IssueSeen:
		return t.classify(ctx, id, ev.ScanID, ev.FindingID, DiffUnchanged)
	case domain.IssueReopened:
		return t.classify(ctx, id, ev.ScanID, ev.FindingID, DiffReopened)
	case domain.IssueTriaged:
		if err := t.execOne(ctx, "issue "+id, `UPDATE {finding_issues} SET triage = ?, expires_at = ? WHERE issue_id = ?`,
			string(ev.Status), micros(ev.ExpiresAt), id); err != nil {
			return err
		}
		_, err := t.exec(ctx, `UPDATE {findings} SET triage = ?, triage_expires_at = ? WHERE issue_id = ?`,
			string(ev.Status), micros(ev.ExpiresAt), id)
		return err
	}
	return nil
}

// classify links finding findingID of scan scanID to issue issueID.
func (t *txn) classify(ctx context.Context, issueID, scanID, findingID, diff string) error {
	var (
		triage  string
		expires sql.NullInt64
	)
	err := t.queryRow(ctx, `SELECT triage, expires_at FROM {finding_issues} WHERE issue_id = ?`, issueID).Scan(&triage, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return invariantf("issue %s was not opened", issueID)
	}
	if err != nil {
		return err
	}
	return t.link(ctx, issueID, scanID, findingID, diff, triage, expires)
}

// link sets the issue, diff and triage of finding findingID of scan scanID.
func (t *txn) link(ctx context.Context, issueID, scanID, findingID, diff, triage string, expires any) error {
	return t.execOne(ctx, "finding "+findingID+" of scan "+scanID,
		`UPDATE {findings} SET issue_id = ?, diff = ?, triage = ?, triage_expires_at = ? WHERE scan_id = ? AND id = ?`,
		issueID, diff, triage, expires, scanID, findingID)
}
