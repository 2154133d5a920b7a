package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

// issueOf is a domain issue as the API shows it (see projectOf), triage
// read at now.
func issueOf(i *domain.Issue, now time.Time) queries.Issue {
	out := queries.Issue{ID: i.ID, RepositoryID: i.RepositoryID, Fingerprint: i.Fingerprint, RuleID: i.RuleID, Title: i.Title,
		Severity: i.Severity, File: i.File, Triage: i.EffectiveTriage(now), FirstSeenScanID: i.FirstSeenScanID,
		LastSeenScanID: i.LastSeenScanID, State: i.State, History: make([]queries.HistoryEntry, len(i.History))}
	if i.TriageStatus == domain.TriageAcceptedRisk {
		out.ExpiresAt = stamp(i.TriageExpiresAt)
	}
	for k, h := range i.History {
		out.History[k] = queries.HistoryEntry{At: stamp(h.At), Actor: h.Actor, State: string(h.State), Triage: string(h.Triage),
			Note: h.Note, ScanID: h.ScanID, ExpiresAt: stamp(h.ExpiresAt)}
	}
	return out
}

func (s *Server) listIssues(w http.ResponseWriter, r *http.Request, p *Principal) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := queries.IssueFilter{Triage: q.Get("triage"), Severity: q.Get("severity"), State: q.Get("state")}
	page, err := s.q.ListIssues(r.Context(), p.caller(), chi.URLParam(r, "repository_id"), f, o)
	return answer(w, http.StatusOK, page, hideNotFound(err, "repository"))
}

func (s *Server) getIssue(w http.ResponseWriter, r *http.Request, p *Principal) error {
	out, err := s.q.Issue(r.Context(), p.caller(), chi.URLParam(r, "issue_id"))
	return answer(w, http.StatusOK, out, hideNotFound(err, "issue"))
}

// triageRequest is the body of POST /issues/{id}/triage. ExpiresAt is a
// string so that a malformed time is a 400 naming expires_at.
type triageRequest struct {
	Status    string `json:"status"`
	Note      string `json:"note"`
	ExpiresAt string `json:"expires_at"`
}

// triageIssue serves POST /issues/{id}/triage (editor): 200 with the issue
// and its history. expires_at is required with accepted_risk (and must be
// in the future) and refused with any other status: 400 naming it.
func (s *Server) triageIssue(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "issue_id")
	if err := s.authorizeIssue(r, p, id, domain.RoleEditor); err != nil {
		return err
	}
	var req triageRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	var expires time.Time
	if req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, req.ExpiresAt)
		if err != nil {
			return invalid("expires_at", "must be an RFC 3339 time")
		}
		expires = t
	}
	res, err := s.cmd.TriageIssue.Handle(commandContext(r, p), commands.TriageIssue{IssueID: id, Status: domain.Triage(req.Status),
		Note: req.Note, ExpiresAt: expires})
	if err != nil {
		return hideNotFound(err, "issue")
	}
	if !s.consistent(r, res.Result) {
		// The read model is late: answer what was decided.
		writeJSON(w, http.StatusOK, issueOf(res.Issue, s.now()))
		return nil
	}
	out, err := s.q.Issue(r.Context(), p.caller(), id)
	return answer(w, http.StatusOK, out, hideNotFound(err, "issue"))
}

// authorizeIssue checks p's role in the project of an issue the caller
// can see (issues of removed repositories are admins' only).
func (s *Server) authorizeIssue(r *http.Request, p *Principal, id string, min domain.Role) error {
	if _, err := s.q.Issue(r.Context(), p.caller(), id); err != nil {
		return hideNotFound(err, "issue")
	}
	pid, err := s.q.ProjectOfIssue(r.Context(), id)
	if err != nil {
		return hideNotFound(err, "issue")
	}
	return s.authorize(r.Context(), p, pid, "issue", min)
}
