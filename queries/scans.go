package queries

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/projections"
)

const scanColumns = `SELECT s.id, s.project_id, s.repository_id, s.snapshot_id, s.partial, s.status, s.phase, s.progress, s.engines,
	s.critical, s.high, s.medium, s.low, s.info, s.input_tokens, s.output_tokens, s.cost_usd,
	s.requested_at, s.started_at, s.finished_at, s.error FROM scans s`

func scanScan(row interface{ Scan(...any) error }) (Scan, []any, error) {
	var (
		sc                Scan
		engines           string
		requested         int64
		started, finished sql.NullInt64
	)
	if err := row.Scan(&sc.ID, &sc.ProjectID, &sc.RepositoryID, &sc.SnapshotID, &sc.Partial, &sc.Status, &sc.Phase, &sc.Progress, &engines,
		&sc.Counts.Critical, &sc.Counts.High, &sc.Counts.Medium, &sc.Counts.Low, &sc.Counts.Info,
		&sc.LLMUsage.InputTokens, &sc.LLMUsage.OutputTokens, &sc.LLMUsage.CostUSD,
		&requested, &started, &finished, &sc.Error); err != nil {
		return Scan{}, nil, err
	}
	if err := json.Unmarshal([]byte(engines), &sc.Engines); err != nil {
		return Scan{}, nil, fmt.Errorf("scan %s engines: %w", sc.ID, err)
	}
	if sc.Engines == nil {
		sc.Engines = []string{}
	}
	sc.RequestedAt, sc.StartedAt, sc.FinishedAt = stampOf(requested), stamp(started), stamp(finished)
	return sc, []any{requested, sc.ID}, nil
}

// ListScans lists a repository's scans, newest first; domain.ErrNotFound
// for a repository the caller cannot see.
func (s *Service) ListScans(ctx context.Context, c Caller, repositoryID string, o ListOptions) (Page[Scan], error) {
	if _, err := s.scope(ctx, c, "repository", repositoryScope, repositoryID); err != nil {
		return Page[Scan]{}, err
	}
	return page(ctx, s, o, listSpec{kind: "scans",
		cols: []keyCol{{expr: "s.requested_at", desc: true}, {expr: "s.id", desc: true}}, text: []bool{false, true},
		selekt: scanColumns, where: []string{"s.repository_id = ?"}, args: []any{repositoryID}},
		func(r *sql.Rows) (Scan, []any, error) { return scanScan(r) })
}

// Scan returns a scan the caller can see, or domain.ErrNotFound.
func (s *Service) Scan(ctx context.Context, c Caller, id string) (Scan, error) {
	if _, err := s.scope(ctx, c, "scan", scanScope, id); err != nil {
		return Scan{}, err
	}
	sc, _, err := scanScan(s.queryRow(ctx, scanColumns+` WHERE s.id = ?`, id))
	if err != nil {
		return Scan{}, fmt.Errorf("get scan %s: %w", id, err)
	}
	return sc, nil
}

func validSeverity(v string) bool { return domain.Severity(v).Valid() }
func validTriage(v string) bool   { return domain.Triage(v).Valid() }

// effectiveTriage is the SQL of a triage as it reads now: an accepted_risk
// whose expiry passed reads open. Its one argument is now.
const effectiveTriage = `(CASE WHEN triage = 'accepted_risk' AND triage_expires_at <= ? THEN 'open' ELSE coalesce(triage, '') END)`

// ListFindings lists the findings of a scan the caller can see, most severe
// first (then by ID, descending), filtered by f; domain.ErrNotFound for a scan the
// caller cannot see, *domain.InvalidArgumentError for a bad filter value.
func (s *Service) ListFindings(ctx context.Context, c Caller, scanID string, f FindingFilter, o ListOptions) (Page[Finding], error) {
	sev, err := values("severity", f.Severity, validSeverity)
	if err != nil {
		return Page[Finding]{}, err
	}
	triage, err := values("triage", f.Triage, validTriage)
	if err != nil {
		return Page[Finding]{}, err
	}
	diff, err := values("diff", f.Diff, func(v string) bool {
		return slices.Contains([]string{projections.DiffNew, projections.DiffUnchanged, projections.DiffReopened}, v)
	})
	if err != nil {
		return Page[Finding]{}, err
	}
	rule, err := values("rule", f.Rule, nil)
	if err != nil {
		return Page[Finding]{}, err
	}
	file, err := values("file", f.File, nil)
	if err != nil {
		return Page[Finding]{}, err
	}
	if _, err := s.scope(ctx, c, "scan", scanScope, scanID); err != nil {
		return Page[Finding]{}, err
	}
	now := s.now().UnixMicro()
	where, args := []string{"scan_id = ?"}, []any{scanID}
	// Split by the most selective filter, then by severity; test the rest
	// (see splitter).
	var cols []filterCol
	for _, c := range []filterCol{
		{col: "file", vals: file, branches: eqBranches("file", file)},
		{col: "rule_id", vals: rule, branches: eqBranches("rule_id", rule)},
		{col: "triage", vals: triageValues(triage), branches: triageBranches("triage", "triage_expires_at", triage, now)},
		{col: "diff", vals: diff, branches: eqBranches("diff", diff)},
	} {
		if len(c.vals) > 0 {
			cols = append(cols, c)
		}
	}
	drive, err := s.driver(ctx, "findings", "scan_id = ?", scanID, cols)
	if err != nil {
		return Page[Finding]{}, fmt.Errorf("list findings of scan %s: %w", scanID, err)
	}
	var sp splitter
	if len(cols) > 0 {
		sp.by(cols[drive].branches)
		switch cols[drive].col {
		case "file":
			file = nil
		case "rule_id":
			rule = nil
		case "triage":
			triage = nil
		case "diff":
			diff = nil
		}
	}
	if len(sev) > 0 && !sp.by(severityBranches(sev)) {
		where = append(where, severityIn(sev))
	}
	if len(triage) > 0 {
		where = append(where, triageIn(s.residual("triage"), "triage_expires_at", triage, now, &args))
	}
	if len(diff) > 0 {
		where = append(where, in(s.residual("diff"), diff, &args))
	}
	if len(rule) > 0 {
		where = append(where, in(s.residual("rule_id"), rule, &args))
	}
	if len(file) > 0 {
		where = append(where, in(s.residual("file"), file, &args))
	}
	return page(ctx, s, o, listSpec{kind: "findings",
		cols: []keyCol{{expr: "severity_rank", desc: true}, {expr: "id", desc: true}}, text: []bool{false, true},
		selekt: `SELECT scan_id, id, coalesce(issue_id, ''), fingerprint, rule_id, title, severity, severity_rank, cwe, engine, file,
			start_line, end_line, snippet, message, remediation, confidence, coalesce(diff, ''), ` + effectiveTriage + ` FROM findings`,
		where: where, args: append([]any{now}, args...), union: sp.union},
		func(r *sql.Rows) (Finding, []any, error) {
			var (
				fd   Finding
				rank int64
			)
			if err := r.Scan(&fd.ScanID, &fd.ID, &fd.IssueID, &fd.Fingerprint, &fd.RuleID, &fd.Title, &fd.Severity, &rank, &fd.CWE,
				&fd.Engine, &fd.File, &fd.StartLine, &fd.EndLine, &fd.Snippet, &fd.Message, &fd.Remediation, &fd.Confidence,
				&fd.Diff, &fd.Triage); err != nil {
				return Finding{}, nil, err
			}
			return fd, []any{rank, fd.ID}, nil
		})
}

// ListScanEvents lists the events of a scan's stream the caller can see, in
// version order, from the event store; domain.ErrNotFound for a scan the
// caller cannot see.
func (s *Service) ListScanEvents(ctx context.Context, c Caller, scanID string, o ListOptions) (Page[Event], error) {
	limit, err := limitOf(o)
	if err != nil {
		return Page[Event]{}, err
	}
	cur, ok, err := decodeCursor(o.Cursor, "events", 0, 1)
	if err != nil {
		return Page[Event]{}, err
	}
	if _, err := s.scope(ctx, c, "scan", scanScope, scanID); err != nil {
		return Page[Event]{}, err
	}
	from := int64(1)
	if ok {
		from = cur.N[0] + 1
	}
	stream := eventstore.NewStreamID("scan", scanID)
	recs, err := s.events.ReadStream(ctx, stream, from, limit+1)
	if err != nil {
		return Page[Event]{}, fmt.Errorf("list events of %s: %w", stream, err)
	}
	out := Page[Event]{Items: []Event{}}
	for i, e := range recs {
		if i == limit {
			out.NextCursor = encodeCursor(cursor{K: "events", N: []int64{recs[i-1].Version}})
			break
		}
		out.Items = append(out.Items, eventOf(e))
	}
	return out, nil
}

// eventOf turns a stored event into the API's shape.
func eventOf(e eventstore.RecordedEvent) Event {
	return Event{StreamID: string(e.StreamID), Version: e.Version, Type: e.Type,
		RecordedAt: e.RecordedAt.UTC().Format(time.RFC3339Nano), Actor: e.Metadata.Actor, Data: json.RawMessage(e.Data)}
}
