package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/queries"
)

// terminalState maps a scan's terminal event to the state it leaves.
var terminalState = map[string]domain.ScanState{"ScanCompleted": domain.ScanStateCompleted, "ScanFailed": domain.ScanStateFailed,
	"ScanCancelled": domain.ScanStateCancelled, "ScanTimedOut": domain.ScanStateTimedOut}

// DiffPreview is how many new and reopened findings the Scan page lists
// when it builds the diff from the findings' labels.
const DiffPreview = 20

// logLine is one event of a scan's log.
type logLine struct {
	Version    int64
	Type       string
	RecordedAt string
	Actor      string
	Summary    string
}

// summary describes an event's data in a few words (never its raw JSON).
func summary(typ string, data json.RawMessage) string {
	var d struct {
		Phase    string                `json:"phase"`
		Progress *int                  `json:"progress"`
		Reason   string                `json:"reason"`
		WorkerID string                `json:"worker_id"`
		Partial  bool                  `json:"partial"`
		Counts   domain.SeverityCounts `json:"counts"`
		Finding  struct {
			Title     string `json:"title"`
			Severity  string `json:"severity"`
			File      string `json:"file"`
			StartLine int    `json:"start_line"`
		} `json:"finding"`
	}
	_ = json.Unmarshal(data, &d)
	switch typ {
	case "ScanProgressed":
		if d.Progress != nil {
			return fmt.Sprintf("%s — %d%%", d.Phase, *d.Progress)
		}
		return d.Phase
	case "FindingRecorded":
		return fmt.Sprintf("%s: %s (%s:%d)", d.Finding.Severity, d.Finding.Title, d.Finding.File, d.Finding.StartLine)
	case "ScanClaimed":
		return "claimed by " + d.WorkerID
	case "ScanCompleted":
		s := fmt.Sprintf("%d findings: %d critical, %d high, %d medium, %d low, %d info", d.Counts.Total(),
			d.Counts.Critical, d.Counts.High, d.Counts.Medium, d.Counts.Low, d.Counts.Info)
		if d.Partial {
			s += " (partial)"
		}
		return s
	}
	return d.Reason
}

func logLines(events []queries.Event) []logLine {
	out := make([]logLine, len(events))
	for i, e := range events {
		out[i] = logLine{Version: e.Version, Type: e.Type, RecordedAt: e.RecordedAt, Actor: e.Actor, Summary: summary(e.Type, e.Data)}
	}
	return out
}

// findingGroup is the findings of one rule on the page (group-by-rule).
type findingGroup struct {
	RuleID   string
	Findings []queries.Finding
}

type scanView struct {
	Scan       queries.Scan
	Repository queries.Repository
	CanEdit    bool
	Filter     queries.FindingFilter
	Sel        map[string][]string
	GroupRule  bool
	Findings   queries.Page[queries.Finding]
	Groups     []findingGroup
	Log        []logLine
	LastEvent  int64
	LogMore    string
	Diff       *ScanDiff
	SARIF      bool
	Q          url.Values
	Self       string
	Limit      int
}

func (s *Server) scan(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx, c, id := r.Context(), u.caller(), chi.URLParam(r, "id")
	sc, err := s.q.Scan(ctx, c, id)
	if err != nil {
		return err
	}
	repo, err := s.q.Repository(ctx, c, sc.RepositoryID)
	if err != nil {
		return err
	}
	role, err := s.role(ctx, u, sc.ProjectID)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := queries.FindingFilter{Severity: multi(q, "severity"), Triage: multi(q, "triage"), Diff: multi(q, "diff"),
		Rule: multi(q, "rule"), File: multi(q, "file")}
	o, err := listOptions(r, "cursor")
	if err != nil {
		return err
	}
	v := scanView{Scan: sc, Repository: repo, CanEdit: role.AtLeast(domain.RoleEditor), Filter: f, GroupRule: q.Get("group") == "rule",
		Sel:   map[string][]string{"severity": split(f.Severity), "triage": split(f.Triage), "diff": split(f.Diff)},
		SARIF: s.d.SARIF != nil, Q: q, Self: r.URL.RequestURI(), Limit: o.Limit}
	if v.Findings, err = s.q.ListFindings(ctx, c, id, f, o); err != nil {
		return err
	}
	if v.GroupRule {
		at := map[string]int{}
		for _, fd := range v.Findings.Items {
			i, ok := at[fd.RuleID]
			if !ok {
				i = len(v.Groups)
				at[fd.RuleID] = i
				v.Groups = append(v.Groups, findingGroup{RuleID: fd.RuleID})
			}
			v.Groups[i].Findings = append(v.Groups[i].Findings, fd)
		}
	}
	events, err := s.q.ListScanEvents(ctx, c, id, queries.ListOptions{Limit: EventLogPage, Cursor: q.Get("log")})
	if err != nil {
		return err
	}
	v.Log = logLines(events.Items)
	if n := len(events.Items); n > 0 {
		v.LastEvent = events.Items[n-1].Version
		// The store may be ahead of the read model: a log that ends the
		// scan says how it ended.
		if st, ok := terminalState[events.Items[n-1].Type]; ok && events.NextCursor == "" && !sc.Status.Terminal() {
			v.Scan.Status = st
		}
	}
	if events.NextCursor != "" {
		v.LogMore = query("/scans/"+url.PathEscape(id), q, "log", events.NextCursor) + "#log"
	}
	if sc.Status == domain.ScanStateCompleted {
		d, err := s.diff(r, u, id)
		if err != nil {
			return err
		}
		v.Diff = &d
	}
	// A finished scan needs no live feed; nor does a page whose log's
	// tail is not on it (the feed would replay every later event).
	if v.Scan.Status.Terminal() || events.NextCursor != "" {
		s.render(w, r, http.StatusOK, "scan", view{Title: "Scan " + shortID(id), Nav: "projects", User: u, Data: v})
		return nil
	}
	return s.live(w, r, u, http.StatusOK, "scan", view{Title: "Scan " + shortID(id), Nav: "projects", Data: v}, id)
}

// diff returns a completed scan's diff: from the DiffReader when there is
// one, else from the findings' diff labels (without the fixed issues).
func (s *Server) diff(r *http.Request, u *user, scanID string) (ScanDiff, error) {
	if s.d.Diffs != nil {
		dv, err := s.d.Diffs.Diff(r.Context(), scanID, s.now())
		switch {
		case err == nil:
			return diffOf(dv), nil
		case !errors.Is(err, domain.ErrConflict):
			return ScanDiff{}, err
		}
	}
	var d ScanDiff
	for _, k := range []string{"new", "reopened"} {
		page, err := s.q.ListFindings(r.Context(), u.caller(), scanID, queries.FindingFilter{Diff: k}, queries.ListOptions{Limit: DiffPreview})
		if err != nil {
			return ScanDiff{}, err
		}
		if k == "new" {
			d.New = page.Items
		} else {
			d.Reopened = page.Items
		}
	}
	return d, nil
}

// diffOf converts a classification's diff view.
func diffOf(dv classify.DiffView) ScanDiff {
	conv := func(fs []classify.Finding) []queries.Finding {
		out := make([]queries.Finding, len(fs))
		for i, f := range fs {
			out[i] = queries.Finding{ID: f.ID, ScanID: f.ScanID, IssueID: f.IssueID, Fingerprint: f.Fingerprint, RuleID: f.RuleID,
				Title: f.Title, Severity: f.Severity, CWE: f.CWE, Engine: f.Engine, File: f.File, StartLine: f.StartLine,
				EndLine: f.EndLine, Snippet: f.Snippet, Message: f.Message, Remediation: f.Remediation, Confidence: f.Confidence,
				Diff: f.Diff, Triage: f.Triage}
		}
		return out
	}
	return ScanDiff{BaseScanID: dv.BaseScanID, New: conv(dv.New), Reopened: conv(dv.Reopened), Fixed: conv(dv.Fixed),
		Unchanged: dv.Unchanged, Complete: true}
}

// chainView is the hash-chain verification of a stream.
type chainView struct {
	Events   int64
	Valid    bool
	BrokenAt int64
}

type replayView struct {
	Scan       queries.Scan
	Repository queries.Repository
	Version    int64
	Max        int64
	Prev, Next int64
	AsOf       string
	Log        []logLine
	Earlier    int
	Chain      chainView
}

// replay shows a scan as it was at ?version=N (default: its last
// version), folded from its stream with the domain's own fold, with the
// stream's hash-chain verification.
func (s *Server) replay(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx, c, id := r.Context(), u.caller(), chi.URLParam(r, "id")
	sc, err := s.q.Scan(ctx, c, id)
	if err != nil {
		return err
	}
	repo, err := s.q.Repository(ctx, c, sc.RepositoryID)
	if err != nil {
		return err
	}
	var version int64
	if raw := r.URL.Query().Get("version"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 1 {
			return &domain.InvalidArgumentError{Field: "version", Reason: "must be a positive integer"}
		}
		version = n
	}
	stream := eventstore.NewStreamID(commands.CategoryScan, id)
	var (
		recs  []eventstore.RecordedEvent
		chain eventstore.Chain
	)
	for from := int64(1); ; {
		page, err := s.d.Events.ReadStream(ctx, stream, from, commands.LoadPageSize)
		if err != nil {
			return fmt.Errorf("replay %s: %w", stream, err)
		}
		for _, e := range page {
			chain.Next(e)
			recs = append(recs, e)
		}
		if len(page) < commands.LoadPageSize {
			break
		}
		from = page[len(page)-1].Version + 1
	}
	if len(recs) == 0 {
		return fmt.Errorf("replay %s: %w", stream, domain.ErrNotFound)
	}
	last := recs[len(recs)-1].Version
	if version == 0 {
		version = last
	}
	if version > last {
		return &domain.InvalidArgumentError{Field: "version", Reason: fmt.Sprintf("the scan's stream ends at version %d", last)}
	}
	upto := recs[:version]
	evs, err := commands.DecodeEvents(s.codec, upto)
	if err != nil {
		return fmt.Errorf("replay %s: %w", stream, err)
	}
	folded, err := domain.FoldScan(evs)
	if err != nil {
		return fmt.Errorf("replay %s: %w", stream, err)
	}
	v := replayView{Scan: scanOf(folded), Repository: repo, Version: version, Max: last,
		AsOf:  upto[len(upto)-1].RecordedAt.UTC().Format(time.RFC3339Nano),
		Chain: chainView{Events: int64(len(recs)), Valid: chain.Broken() == 0, BrokenAt: chain.Broken()}}
	if version > 1 {
		v.Prev = version - 1
	}
	if version < last {
		v.Next = version + 1
	}
	window := upto
	if len(window) > ReplayWindow {
		v.Earlier = len(window) - ReplayWindow
		window = window[len(window)-ReplayWindow:]
	}
	for _, e := range window {
		v.Log = append(v.Log, logLine{Version: e.Version, Type: e.Type, RecordedAt: e.RecordedAt.UTC().Format(time.RFC3339Nano),
			Actor: e.Metadata.Actor, Summary: summary(e.Type, e.Data)})
	}
	s.render(w, r, http.StatusOK, "replay", view{Title: "Replay of scan " + shortID(id), Nav: "projects", User: u, Data: v})
	return nil
}

// scanOf is a folded domain scan in the query side's shape (as the API's
// replay shows it): a completed scan reads progress 100; only a failed,
// cancelled or timed-out scan carries an error.
func scanOf(sc *domain.Scan) queries.Scan {
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	out := queries.Scan{ID: sc.ID, ProjectID: sc.ProjectID, RepositoryID: sc.RepositoryID, SnapshotID: sc.SnapshotID,
		Partial: sc.Partial, Status: sc.State, Phase: sc.Phase, Progress: sc.Progress, Engines: sc.Engines, Counts: sc.Counts,
		LLMUsage:    queries.LLMUsage{InputTokens: sc.LLMUsage.InputTokens, OutputTokens: sc.LLMUsage.OutputTokens, CostUSD: sc.LLMUsage.CostUSD},
		RequestedAt: stamp(sc.RequestedAt), StartedAt: stamp(sc.StartedAt), FinishedAt: stamp(sc.FinishedAt)}
	switch sc.State {
	case domain.ScanStateCompleted:
		out.Progress = 100
	case domain.ScanStateFailed, domain.ScanStateCancelled, domain.ScanStateTimedOut:
		out.Error = sc.Reason
	}
	return out
}
