package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/queries"
)

// scanOf is a domain scan as the API shows it: the one conversion that
// audit replay (a scan folded up to a version) and late read models use,
// so that both have GET /scans/{id}'s shape. As the scans read model does,
// a completed scan reads progress 100 and only a failed, cancelled or
// timed-out scan carries an error.
func scanOf(sc *domain.Scan) queries.Scan {
	out := queries.Scan{ID: sc.ID, ProjectID: sc.ProjectID, RepositoryID: sc.RepositoryID, SnapshotID: sc.SnapshotID,
		Partial: sc.Partial, Status: sc.State, Phase: sc.Phase, Progress: sc.Progress, Engines: sc.Engines, Counts: sc.Counts,
		LLMUsage:    queries.LLMUsage{InputTokens: sc.LLMUsage.InputTokens, OutputTokens: sc.LLMUsage.OutputTokens, CostUSD: sc.LLMUsage.CostUSD},
		RequestedAt: stamp(sc.RequestedAt), StartedAt: stamp(sc.StartedAt), FinishedAt: stamp(sc.FinishedAt)}
	if out.Engines == nil {
		out.Engines = []string{}
	}
	switch sc.State {
	case domain.ScanStateCompleted:
		out.Progress = 100
	case domain.ScanStateFailed, domain.ScanStateCancelled, domain.ScanStateTimedOut:
		out.Error = sc.Reason
	}
	return out
}

// eventOf is a stored event as the API shows it (the scan events list,
// the activity feed, SSE data).
func eventOf(e eventstore.RecordedEvent) queries.Event {
	data := json.RawMessage(e.Data)
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return queries.Event{StreamID: string(e.StreamID), Version: e.Version, Type: e.Type,
		RecordedAt: e.RecordedAt.UTC().Format(timeLayout), Actor: e.Metadata.Actor, Data: data}
}

type requestScanRequest struct {
	SnapshotID string   `json:"snapshot_id"`
	Engines    []string `json:"engines"`
}

func (s *Server) requestScan(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "repository_id")
	if err := s.authorizeRepository(r, p, id, domain.RoleEditor); err != nil {
		return err
	}
	var req requestScanRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	res, err := s.cmd.RequestScan.Handle(commandContext(r, p), commands.RequestScan{RepositoryID: id, SnapshotID: req.SnapshotID, Engines: req.Engines})
	if err != nil {
		return err
	}
	return s.answerScan(w, r, p, http.StatusAccepted, res)
}

func (s *Server) answerScan(w http.ResponseWriter, r *http.Request, p *Principal, status int, res commands.ScanResult) error {
	s.consistent(r, res.Result)
	out, err := s.q.Scan(r.Context(), p.caller(), res.Scan.ID)
	if errors.Is(err, domain.ErrNotFound) {
		out, err = scanOf(res.Scan), nil
	}
	return answer(w, status, out, err)
}

func (s *Server) listScans(w http.ResponseWriter, r *http.Request, p *Principal) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	page, err := s.q.ListScans(r.Context(), p.caller(), chi.URLParam(r, "repository_id"), o)
	return answer(w, http.StatusOK, page, hideNotFound(err, "repository"))
}

func (s *Server) getScan(w http.ResponseWriter, r *http.Request, p *Principal) error {
	out, err := s.q.Scan(r.Context(), p.caller(), chi.URLParam(r, "scan_id"))
	return answer(w, http.StatusOK, out, hideNotFound(err, "scan"))
}

// authorizeScan checks p's role in the project of a scan the caller can
// see.
func (s *Server) authorizeScan(r *http.Request, p *Principal, id string, min domain.Role) error {
	sc, err := s.q.Scan(r.Context(), p.caller(), id)
	if err != nil {
		return hideNotFound(err, "scan")
	}
	return s.authorize(r.Context(), p, sc.ProjectID, "scan", min)
}

func (s *Server) cancelScan(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "scan_id")
	if err := s.authorizeScan(r, p, id, domain.RoleEditor); err != nil {
		return err
	}
	res, err := s.cmd.RequestCancel.Handle(commandContext(r, p), commands.RequestCancel{ScanID: id})
	if err != nil {
		return hideNotFound(err, "scan")
	}
	return s.answerScan(w, r, p, http.StatusAccepted, res)
}

func (s *Server) listFindings(w http.ResponseWriter, r *http.Request, p *Principal) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := queries.FindingFilter{Severity: q.Get("severity"), Triage: q.Get("triage"), Diff: q.Get("diff"), Rule: q.Get("rule"), File: q.Get("file")}
	page, err := s.q.ListFindings(r.Context(), p.caller(), chi.URLParam(r, "scan_id"), f, o)
	return answer(w, http.StatusOK, page, hideNotFound(err, "scan"))
}

// scanEvents serves GET /scans/{id}/events: an event stream when asked
// for one, else the JSON list.
func (s *Server) scanEvents(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "scan_id")
	if isSSE(r) {
		return s.serveScanFeed(w, r, p, id)
	}
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	page, err := s.q.ListScanEvents(r.Context(), p.caller(), id, o)
	return answer(w, http.StatusOK, page, hideNotFound(err, "scan"))
}

// activityEvents serves GET /events: an event stream when asked for one,
// else the JSON list. Each JSON item carries its stream_id; next_cursor and
// the SSE ids are the same opaque global cursors.
func (s *Server) activityEvents(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if isSSE(r) {
		return s.serveActivityFeed(w, r, p)
	}
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	page, err := s.q.ListActivity(r.Context(), p.caller(), o)
	return answer(w, http.StatusOK, page, err)
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, p *Principal) error {
	d, err := s.q.Dashboard(r.Context(), p.caller())
	return answer(w, http.StatusOK, d, err)
}

type asOf struct {
	Version    int64  `json:"version"`
	RecordedAt string `json:"recorded_at"`
}

type replayResponse struct {
	AsOf   asOf            `json:"as_of"`
	Scan   queries.Scan    `json:"scan"`
	Events []queries.Event `json:"events"`
}

// replayScan folds the scan's stream up to ?version=N or ?at=<RFC 3339>
// (default: all of it) with the domain's own fold, the one that command
// handling uses, and answers the scan as it was then with the events that
// made it so.
func (s *Server) replayScan(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "scan_id")
	q := r.URL.Query()
	var (
		until   int64 = -1
		at      time.Time
		byTime  bool
		qv, qat = q.Get("version"), q.Get("at")
	)
	switch {
	case qv != "" && qat != "":
		return invalid("version", "give version or at, not both")
	case qv != "":
		n, err := strconv.ParseInt(qv, 10, 64)
		if err != nil || n < 1 {
			return invalid("version", "must be a positive integer")
		}
		until = n
	case qat != "":
		t, err := time.Parse(time.RFC3339Nano, qat)
		if err != nil {
			return invalid("at", "must be an RFC 3339 time")
		}
		at, byTime = t, true
	}
	if _, err := s.q.Scan(r.Context(), p.caller(), id); err != nil {
		return hideNotFound(err, "scan")
	}
	stream := eventstore.NewStreamID(commands.CategoryScan, id)
	var recs []eventstore.RecordedEvent
	for from := int64(1); ; {
		page, err := s.events.ReadStream(r.Context(), stream, from, commands.LoadPageSize)
		if err != nil {
			return err
		}
		stop := false
		for _, e := range page {
			if until > 0 && e.Version > until || byTime && e.RecordedAt.After(at) {
				stop = true
				break
			}
			recs = append(recs, e)
		}
		if stop || len(page) < commands.LoadPageSize {
			break
		}
		from = page[len(page)-1].Version + 1
	}
	switch {
	case len(recs) == 0 && byTime:
		return errorf(domain.ErrNotFound, "the scan did not exist at "+at.UTC().Format(time.RFC3339))
	case len(recs) == 0:
		return notFound("scan")
	case until > 0 && recs[len(recs)-1].Version < until:
		return invalid("version", "the scan's stream ends at version "+strconv.FormatInt(recs[len(recs)-1].Version, 10))
	}
	evs, err := commands.DecodeEvents(s.codec, recs)
	if err != nil {
		return err
	}
	sc, err := domain.FoldScan(evs)
	if err != nil {
		return err
	}
	out := replayResponse{Scan: scanOf(sc), Events: make([]queries.Event, len(recs))}
	for i, e := range recs {
		out.Events[i] = eventOf(e)
	}
	last := recs[len(recs)-1]
	out.AsOf = asOf{Version: last.Version, RecordedAt: last.RecordedAt.UTC().Format(timeLayout)}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type verifyResponse struct {
	Stream   string `json:"stream"`
	Events   int64  `json:"events"`
	Valid    bool   `json:"valid"`
	BrokenAt *int64 `json:"broken_at"`
}

// verifyAudit checks the hash chain of a stream the caller may see:
// project, repository, scan and issue streams to members of their project,
// access streams to admins only.
func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request, p *Principal) error {
	raw := r.URL.Query().Get("stream")
	stream := eventstore.StreamID(raw)
	if err := stream.Validate(); err != nil {
		return invalid("stream", "must be a stream ID such as scan-<id>")
	}
	if err := s.authorizeStream(r, p, stream); err != nil {
		return err
	}
	var (
		chain eventstore.Chain
		count int64
	)
	for from := int64(1); ; {
		page, err := s.events.ReadStream(r.Context(), stream, from, commands.LoadPageSize)
		if err != nil {
			return err
		}
		for _, e := range page {
			count++
			chain.Next(e)
		}
		if len(page) < commands.LoadPageSize {
			break
		}
		from = page[len(page)-1].Version + 1
	}
	if count == 0 {
		return notFound("stream")
	}
	out := verifyResponse{Stream: raw, Events: count, Valid: chain.Broken() == 0}
	if b := chain.Broken(); b != 0 {
		out.BrokenAt = &b
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// authorizeStream checks that p may read a stream: admins any; others
// (viewer or better) the streams of their projects. Anything else is a 404.
func (s *Server) authorizeStream(r *http.Request, p *Principal, stream eventstore.StreamID) error {
	if p.Admin {
		return nil
	}
	if !inActivity(stream) {
		return notFound("stream")
	}
	pid, err := s.projectOfStream(r.Context(), stream)
	if err != nil {
		return hideNotFound(err, "stream")
	}
	return s.authorize(r.Context(), p, pid, "stream", domain.RoleViewer)
}
