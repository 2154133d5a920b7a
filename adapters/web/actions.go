package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, u *user) error {
	res, err := s.cmd.CreateProject.Handle(commandContext(r, u), commands.CreateProject{
		Name: r.PostFormValue("name"), Description: r.PostFormValue("description")})
	if err != nil {
		return err
	}
	s.consistent(r, res.Result)
	s.redirect(w, r, "/projects/"+url.PathEscape(res.Project.ID), "Project created.")
	return nil
}

// authorizeProject checks that u may act with min in a project it can see.
func (s *Server) authorizeProject(r *http.Request, u *user, id string, min domain.Role) error {
	if _, err := s.q.Project(r.Context(), u.caller(), id); err != nil {
		return err
	}
	return s.authorize(r.Context(), u, id, min)
}

func (s *Server) grantMember(w http.ResponseWriter, r *http.Request, u *user) error {
	id := chi.URLParam(r, "id")
	if err := s.authorizeProject(r, u, id, domain.RoleOwner); err != nil {
		return err
	}
	role, err := domain.ParseRole(r.PostFormValue("role"))
	if err != nil {
		return err
	}
	principal := strings.TrimSpace(r.PostFormValue("principal"))
	res, err := s.cmd.GrantMember.Handle(commandContext(r, u), commands.GrantMember{ProjectID: id, Principal: principal, Role: role})
	if err != nil {
		return err
	}
	s.consistent(r, res.Result)
	s.redirect(w, r, "/projects/"+url.PathEscape(id), principal+" is now "+string(role)+".")
	return nil
}

// revokeMember removes a member: owners remove anyone, members themselves.
func (s *Server) revokeMember(w http.ResponseWriter, r *http.Request, u *user) error {
	id, who := chi.URLParam(r, "id"), r.PostFormValue("principal")
	min := domain.RoleOwner
	if who == u.ID {
		min = domain.RoleViewer
	}
	if err := s.authorizeProject(r, u, id, min); err != nil {
		return err
	}
	res, err := s.cmd.RevokeMember.Handle(commandContext(r, u), commands.RevokeMember{ProjectID: id, Principal: who})
	if err != nil {
		return err
	}
	s.consistent(r, res.Result)
	if who == u.ID && !u.Admin {
		s.redirect(w, r, "/", "You left the project.")
		return nil
	}
	s.redirect(w, r, "/projects/"+url.PathEscape(id), who+" was removed.")
	return nil
}

func (s *Server) addRepository(w http.ResponseWriter, r *http.Request, u *user) error {
	id := chi.URLParam(r, "id")
	if err := s.authorizeProject(r, u, id, domain.RoleEditor); err != nil {
		return err
	}
	src := domain.Source{Kind: domain.SourceKind(r.PostFormValue("kind"))}
	if src.Kind == domain.SourceGit {
		src.URL, src.Ref = strings.TrimSpace(r.PostFormValue("url")), strings.TrimSpace(r.PostFormValue("ref"))
	}
	res, err := s.cmd.AddRepository.Handle(commandContext(r, u), commands.AddRepository{ProjectID: id, Name: r.PostFormValue("name"), Source: src})
	if err != nil {
		return err
	}
	s.consistent(r, res.Result)
	s.redirect(w, r, "/repositories/"+url.PathEscape(res.Repository.ID), "Repository added.")
	return nil
}

// authorizeRepository checks that u may act with min on a repository it
// can see, and returns it.
func (s *Server) authorizeRepository(r *http.Request, u *user, id string, min domain.Role) (queries.Repository, error) {
	repo, err := s.q.Repository(r.Context(), u.caller(), id)
	if err != nil {
		return queries.Repository{}, err
	}
	pid, err := s.q.ProjectOfRepository(r.Context(), id)
	if err != nil {
		return queries.Repository{}, err
	}
	return repo, s.authorize(r.Context(), u, pid, min)
}

// archiveTypes maps upload file names to the media types the snapshot
// service reads, for browsers that send application/octet-stream.
func archiveType(part *multipart.Part) string {
	ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
	name := strings.ToLower(part.FileName())
	switch {
	case strings.HasSuffix(name, ".zip"):
		return "application/zip"
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		return "application/gzip"
	}
	return ct
}

// uploadSnapshot streams an uploaded archive (the form's "archive" file
// part) to the snapshot service.
func (s *Server) uploadSnapshot(w http.ResponseWriter, r *http.Request, u *user, mr *multipart.Reader) error {
	id := chi.URLParam(r, "id")
	if _, err := s.authorizeRepository(r, u, id, domain.RoleEditor); err != nil {
		return err
	}
	if s.d.Uploads == nil {
		return fmt.Errorf("snapshot uploads: %w", domain.ErrNotFound)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return &domain.InvalidArgumentError{Field: "archive", Reason: "choose a .tar.gz or .zip file to upload"}
		}
		if err != nil {
			return &domain.InvalidArgumentError{Field: "archive", Reason: "the upload was cut short"}
		}
		if part.FormName() != "archive" {
			continue
		}
		if part.FileName() == "" {
			return &domain.InvalidArgumentError{Field: "archive", Reason: "choose a .tar.gz or .zip file to upload"}
		}
		res, err := s.d.Uploads.Upload(commandContext(r, u), id, archiveType(part), part, s.cfg.MaxUploadBytes)
		if err != nil {
			return err
		}
		s.consistent(r, res.Result)
		s.redirect(w, r, "/repositories/"+url.PathEscape(id),
			fmt.Sprintf("Snapshot captured: %d files (%s).", res.Snapshot.FileCount, path.Base(part.FileName())))
		return nil
	}
}

func (s *Server) captureGit(w http.ResponseWriter, r *http.Request, u *user) error {
	id := chi.URLParam(r, "id")
	if _, err := s.authorizeRepository(r, u, id, domain.RoleEditor); err != nil {
		return err
	}
	res, err := s.cmd.RequestGitSnapshot.Handle(commandContext(r, u), commands.RequestGitSnapshot{RepositoryID: id,
		Ref: strings.TrimSpace(r.PostFormValue("ref"))})
	if err != nil {
		return err
	}
	s.consistent(r, res.Result)
	s.redirect(w, r, "/repositories/"+url.PathEscape(id), "Git capture requested.")
	return nil
}

// lines splits a textarea into its non-empty trimmed lines (or
// comma-separated values).
func lines(v string) []string {
	var out []string
	for _, l := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == ',' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (s *Server) defineProfile(w http.ResponseWriter, r *http.Request, u *user) error {
	id := chi.URLParam(r, "id")
	if _, err := s.authorizeRepository(r, u, id, domain.RoleEditor); err != nil {
		return err
	}
	_ = r.ParseForm()
	tp := domain.ThreatProfile{Name: r.PostFormValue("name"), Description: r.PostFormValue("description"),
		MinSeverity: domain.Severity(r.PostFormValue("min_severity")), Include: lines(r.PostFormValue("include")),
		Exclude: lines(r.PostFormValue("exclude")), Engines: lines(r.PostFormValue("engines"))}
	for _, c := range r.PostForm["categories"] {
		tp.Categories = append(tp.Categories, domain.Category(c))
	}
	if raw := strings.TrimSpace(r.PostFormValue("llm_budget")); raw != "" {
		if err := json.Unmarshal([]byte(raw), &tp.LLMBudget); err != nil {
			return &domain.InvalidArgumentError{Field: "llm_budget", Reason: "must be a JSON object such as {\"max_tokens\": 100000}"}
		}
	}
	res, err := s.cmd.DefineThreatProfile.Handle(commandContext(r, u), commands.DefineThreatProfile{RepositoryID: id, Profile: tp})
	if err != nil {
		return err
	}
	s.consistent(r, res.Result)
	s.redirect(w, r, "/repositories/"+url.PathEscape(id)+"#profile", fmt.Sprintf("Threat profile version %d saved.", res.Profile.Version))
	return nil
}

func (s *Server) requestScan(w http.ResponseWriter, r *http.Request, u *user) error {
	id := chi.URLParam(r, "id")
	if _, err := s.authorizeRepository(r, u, id, domain.RoleEditor); err != nil {
		return err
	}
	res, err := s.cmd.RequestScan.Handle(commandContext(r, u), commands.RequestScan{RepositoryID: id,
		SnapshotID: strings.TrimSpace(r.PostFormValue("snapshot_id")), Engines: lines(r.PostFormValue("engines"))})
	if err != nil {
		return err
	}
	s.consistent(r, res.Result)
	s.redirect(w, r, "/scans/"+url.PathEscape(res.Scan.ID), "Scan requested.")
	return nil
}

func (s *Server) cancelScan(w http.ResponseWriter, r *http.Request, u *user) error {
	id := chi.URLParam(r, "id")
	sc, err := s.q.Scan(r.Context(), u.caller(), id)
	if err != nil {
		return err
	}
	if err := s.authorize(r.Context(), u, sc.ProjectID, domain.RoleEditor); err != nil {
		return err
	}
	res, err := s.cmd.RequestCancel.Handle(commandContext(r, u), commands.RequestCancel{ScanID: id})
	if err != nil {
		return err
	}
	s.consistent(r, res.Result)
	s.redirect(w, r, "/scans/"+url.PathEscape(id), "Cancellation requested.")
	return nil
}

// triageInput reads a triage form: status, note and, for accepted_risk,
// expires_at (a date, read as the end of that day UTC, or an RFC 3339
// time).
func triageInput(r *http.Request) (domain.Triage, string, time.Time, error) {
	st, err := domain.ParseTriage(r.PostFormValue("status"))
	if err != nil {
		return "", "", time.Time{}, err
	}
	var exp time.Time
	if raw := strings.TrimSpace(r.PostFormValue("expires_at")); raw != "" && st == domain.TriageAcceptedRisk {
		if t, err := time.Parse("2006-01-02", raw); err == nil {
			exp = t.Add(24*time.Hour - time.Second)
		} else if t, err := time.Parse(time.RFC3339, raw); err == nil {
			exp = t
		} else {
			return "", "", time.Time{}, &domain.InvalidArgumentError{Field: "expires_at", Reason: "must be a date (YYYY-MM-DD)"}
		}
	}
	return st, r.PostFormValue("note"), exp, nil
}

func (s *Server) triage(w http.ResponseWriter, r *http.Request, u *user) error {
	id := chi.URLParam(r, "id")
	if _, err := s.q.Issue(r.Context(), u.caller(), id); err != nil {
		return err
	}
	pid, err := s.q.ProjectOfIssue(r.Context(), id)
	if err != nil {
		return err
	}
	if err := s.authorize(r.Context(), u, pid, domain.RoleEditor); err != nil {
		return err
	}
	st, note, exp, err := triageInput(r)
	if err != nil {
		return err
	}
	res, err := s.cmd.TriageIssue.Handle(commandContext(r, u), commands.TriageIssue{IssueID: id, Status: st, Note: note, ExpiresAt: exp})
	if err != nil {
		return err
	}
	s.consistent(r, res.Result)
	s.redirect(w, r, "/issues/"+url.PathEscape(id), "Triage saved: "+strings.ReplaceAll(string(st), "_", " ")+".")
	return nil
}

// bulkTriage triages, in one action, the selected issues of a findings or
// issues list (target=selected, the "issue" fields) or every issue
// matching the list's filter across all its pages (target=filter). The
// list is a scan's findings (scope=scan) or a repository's issues
// (scope=repository), named by scope_id; the filter fields are the list's.
func (s *Server) bulkTriage(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx, c := r.Context(), u.caller()
	_ = r.ParseForm()
	scope, scopeID := r.PostFormValue("scope"), r.PostFormValue("scope_id")
	var projectID string
	switch scope {
	case "scan":
		sc, err := s.q.Scan(ctx, c, scopeID)
		if err != nil {
			return err
		}
		projectID = sc.ProjectID
	case "repository":
		repo, err := s.q.Repository(ctx, c, scopeID)
		if err != nil {
			return err
		}
		projectID = repo.ProjectID
	default:
		return &domain.InvalidArgumentError{Field: "scope", Reason: "must be scan or repository"}
	}
	if err := s.authorize(ctx, u, projectID, domain.RoleEditor); err != nil {
		return err
	}
	st, note, exp, err := triageInput(r)
	if err != nil {
		return err
	}
	var ids []string
	seen := map[string]bool{}
	addID := func(id string) error {
		if id == "" || seen[id] {
			return nil
		}
		if len(ids) == MaxBulkTriage {
			return &domain.InvalidArgumentError{Field: "target",
				Reason: fmt.Sprintf("more than %d issues match: narrow the filter", MaxBulkTriage)}
		}
		seen[id] = true
		ids = append(ids, id)
		return nil
	}
	switch r.PostFormValue("target") {
	case "selected":
		for _, id := range r.PostForm["issue"] {
			// Every selected issue must be one the caller may see (the
			// same scoping as the API: not in another project, not in a
			// removed repository) and of the list's project: a tampered
			// form reaches nothing else.
			if _, err := s.q.Issue(ctx, u.caller(), id); err != nil {
				return fmt.Errorf("issue %s: %w", id, domain.ErrNotFound)
			}
			pid, err := s.q.ProjectOfIssue(ctx, id)
			if err != nil || pid != projectID {
				return fmt.Errorf("issue %s: %w", id, domain.ErrNotFound)
			}
			if err := addID(id); err != nil {
				return err
			}
		}
	case "filter":
		if err := s.matching(r, u, scope, scopeID, addID); err != nil {
			return err
		}
	default:
		return &domain.InvalidArgumentError{Field: "target", Reason: "must be selected or filter"}
	}
	if len(ids) == 0 {
		return &domain.InvalidArgumentError{Field: "issue", Reason: "select at least one row that has an issue"}
	}
	var last commands.Result
	for _, id := range ids {
		res, err := s.cmd.TriageIssue.Handle(commandContext(r, u), commands.TriageIssue{IssueID: id, Status: st, Note: note, ExpiresAt: exp})
		if err != nil {
			return err
		}
		if last.Position.Less(res.Position) {
			last = res.Result
		}
	}
	s.consistent(r, last)
	noun := "issues"
	if len(ids) == 1 {
		noun = "issue"
	}
	s.redirect(w, r, localPath(r.PostFormValue("return"), "/"),
		fmt.Sprintf("Triaged %d %s as %s.", len(ids), noun, strings.ReplaceAll(string(st), "_", " ")))
	return nil
}

// matching calls add with the issue ID of every row of the list matching
// the form's filter, over all pages.
func (s *Server) matching(r *http.Request, u *user, scope, scopeID string, add func(string) error) error {
	f := r.PostForm
	o := queries.ListOptions{Limit: queries.MaxLimit}
	for {
		var next string
		if scope == "scan" {
			page, err := s.q.ListFindings(r.Context(), u.caller(), scopeID, queries.FindingFilter{Severity: multi(f, "severity"),
				Triage: multi(f, "triage"), Diff: multi(f, "diff"), Rule: multi(f, "rule"), File: multi(f, "file")}, o)
			if err != nil {
				return err
			}
			for _, fd := range page.Items {
				if err := add(fd.IssueID); err != nil {
					return err
				}
			}
			next = page.NextCursor
		} else {
			page, err := s.q.ListIssues(r.Context(), u.caller(), scopeID, queries.IssueFilter{Severity: multi(f, "severity"),
				Triage: multi(f, "triage"), State: multi(f, "state")}, o)
			if err != nil {
				return err
			}
			for _, is := range page.Items {
				if err := add(is.ID); err != nil {
					return err
				}
			}
			next = page.NextCursor
		}
		if next == "" {
			return nil
		}
		o.Cursor = next
	}
}

// streamToken mints a fresh stream token for a page's live module (its
// EventSource reconnects with it after the old one expired). Body: form
// field scan_id ("" for the activity feed). Answer: JSON {token, url}.
func (s *Server) streamToken(w http.ResponseWriter, r *http.Request, u *user) error {
	if s.d.StreamTokens == nil {
		return fmt.Errorf("stream tokens: %w", domain.ErrNotFound)
	}
	scanID := r.PostFormValue("scan_id")
	feed := s.cfg.APIPrefix + "/events"
	if scanID != "" {
		if _, err := s.q.Scan(r.Context(), u.caller(), scanID); err != nil {
			return err
		}
		feed = s.cfg.APIPrefix + "/scans/" + url.PathEscape(scanID) + "/events"
	}
	tok, exp, err := s.d.StreamTokens.Mint(u.caller(), scanID, s.now())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]string{"token": tok, "url": feed, "expires_at": exp.UTC().Format(time.RFC3339)})
}
