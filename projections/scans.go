package projections

import (
	"context"
	"encoding/json"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

func scansProjection() *projection {
	return &projection{
		name:       NameScans,
		version:    1,
		categories: []string{"scan"},
		tables: []table{
			{name: "scans", ddl: []string{`CREATE TABLE {t} (
				id               TEXT    NOT NULL PRIMARY KEY,
				project_id       TEXT    NOT NULL,
				repository_id    TEXT    NOT NULL,
				snapshot_id      TEXT    NOT NULL,
				status           TEXT    NOT NULL,
				phase            TEXT    NOT NULL,
				progress         BIGINT  NOT NULL,
				engines          TEXT    NOT NULL,
				partial          BOOLEAN NOT NULL,
				budget_exceeded  BOOLEAN NOT NULL,
				cancel_requested BOOLEAN NOT NULL,
				attempts         BIGINT  NOT NULL,
				critical         BIGINT  NOT NULL,
				high             BIGINT  NOT NULL,
				medium           BIGINT  NOT NULL,
				low              BIGINT  NOT NULL,
				info             BIGINT  NOT NULL,
				input_tokens     BIGINT  NOT NULL,
				output_tokens    BIGINT  NOT NULL,
				cost_usd         DOUBLE PRECISION NOT NULL,
				llm_requests     BIGINT  NOT NULL,
				requested_by     TEXT    NOT NULL,
				requested_at     BIGINT  NOT NULL,
				started_at       BIGINT,
				finished_at      BIGINT,
				error            TEXT    NOT NULL
			)`,
				`CREATE INDEX {t}_repository ON {t} (repository_id, requested_at, id)`,
				`CREATE INDEX {t}_project_status ON {t} (project_id, status)`,
				`CREATE INDEX {t}_project_requested ON {t} (project_id, requested_at, id)`,
				`CREATE INDEX {t}_requested ON {t} (requested_at, id)`}},
		},
		apply: applyScan,
	}
}

// countColumns are the scans columns counting findings by severity, in
// the order of severityColumn's indexes.
var countColumns = []string{"critical", "high", "medium", "low", "info"}

// severityColumn returns the index in countColumns of the column counting
// findings of severity s.
func severityColumn(s domain.Severity) (int, bool) {
	switch s {
	case domain.SeverityCritical:
		return 0, true
	case domain.SeverityHigh:
		return 1, true
	case domain.SeverityMedium:
		return 2, true
	case domain.SeverityLow:
		return 3, true
	case domain.SeverityInfo:
		return 4, true
	}
	return 0, false
}

func applyScan(ctx context.Context, t *txn, e eventstore.RecordedEvent, ev domain.Event) error {
	id := e.StreamID.ID()
	what := "scan " + id
	// resetAttempt mirrors domain.Scan.resetAttempt: a new claim or a
	// requeue forgets the previous attempt's progress and findings.
	const resetAttempt = `phase = '', progress = 0, started_at = NULL, critical = 0, high = 0, medium = 0, low = 0, info = 0`
	switch ev := ev.(type) {
	case domain.ScanRequested:
		if ev.ScanID != id {
			return invariantf("ScanRequested for scan %q on stream %s", ev.ScanID, e.StreamID)
		}
		engines, err := json.Marshal(ev.Engines)
		if err != nil {
			return err
		}
		_, err = t.exec(ctx, `INSERT INTO {scans} (id, project_id, repository_id, snapshot_id, status, phase, progress, engines,
			partial, budget_exceeded, cancel_requested, attempts, critical, high, medium, low, info,
			input_tokens, output_tokens, cost_usd, llm_requests, requested_by, requested_at, error)
			VALUES (?, ?, ?, ?, ?, '', 0, ?, ?, ?, ?, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ?, ?, '')`,
			id, ev.ProjectID, ev.RepositoryID, ev.SnapshotID, string(domain.ScanStateRequested), string(engines),
			false, false, false, ev.RequestedBy, ev.At.UnixMicro())
		return err
	case domain.ScanClaimed:
		return t.execOne(ctx, what, `UPDATE {scans} SET status = ?, attempts = ?, `+resetAttempt+` WHERE id = ?`,
			string(domain.ScanStateClaimed), int64(ev.Fence), id)
	case domain.ScanRequeued:
		return t.execOne(ctx, what, `UPDATE {scans} SET status = ?, `+resetAttempt+` WHERE id = ?`,
			string(domain.ScanStateRequested), id)
	case domain.ScanStarted:
		return t.execOne(ctx, what, `UPDATE {scans} SET status = ?, started_at = ? WHERE id = ?`,
			string(domain.ScanStateRunning), micros(ev.At), id)
	case domain.ScanProgressed:
		return t.execOne(ctx, what, `UPDATE {scans} SET phase = ?, progress = ? WHERE id = ?`, ev.Phase, ev.Progress, id)
	case domain.FindingRecorded:
		col, ok := severityColumn(ev.Finding.Severity)
		if !ok {
			return invariantf("finding %s has severity %q", ev.Finding.ID, ev.Finding.Severity)
		}
		// A page's findings of one scan move its counts once (group.go).
		return t.add(ctx, what, "scans", "id", countColumns, id, col, 1)
	case domain.LLMUsageRecorded:
		return t.execOne(ctx, what, `UPDATE {scans} SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ?,
			cost_usd = cost_usd + ?, llm_requests = llm_requests + ? WHERE id = ?`,
			ev.Usage.InputTokens, ev.Usage.OutputTokens, ev.Usage.CostUSD, ev.Usage.Requests, id)
	case domain.ScanBudgetExceeded:
		return t.execOne(ctx, what, `UPDATE {scans} SET budget_exceeded = ? WHERE id = ?`, true, id)
	case domain.ScanCancelRequested:
		return t.execOne(ctx, what, `UPDATE {scans} SET cancel_requested = ? WHERE id = ?`, true, id)
	case domain.ScanCancelled:
		return t.finishScan(ctx, id, domain.ScanStateCancelled, ev.Reason, ev)
	case domain.ScanFailed:
		return t.finishScan(ctx, id, domain.ScanStateFailed, ev.Reason, ev)
	case domain.ScanTimedOut:
		return t.finishScan(ctx, id, domain.ScanStateTimedOut, ev.Reason, ev)
	case domain.ScanCompleted:
		c := ev.Counts
		return t.execOne(ctx, what, `UPDATE {scans} SET status = ?, partial = ?, progress = 100, finished_at = ?, error = '',
			critical = ?, high = ?, medium = ?, low = ?, info = ? WHERE id = ?`,
			string(domain.ScanStateCompleted), ev.Partial, micros(ev.At), c.Critical, c.High, c.Medium, c.Low, c.Info, id)
	}
	return nil
}

func (t *txn) finishScan(ctx context.Context, id string, state domain.ScanState, reason string, ev domain.Event) error {
	var at any
	switch ev := ev.(type) {
	case domain.ScanCancelled:
		at = micros(ev.At)
	case domain.ScanFailed:
		at = micros(ev.At)
	case domain.ScanTimedOut:
		at = micros(ev.At)
	}
	return t.execOne(ctx, "scan "+id, `UPDATE {scans} SET status = ?, error = ?, finished_at = ? WHERE id = ?`,
		string(state), reason, at, id)
}
