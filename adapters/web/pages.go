package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

// Limits of the cross-repository lists (/scans, /issues), which fan out
// over the caller's repositories until the query side offers them whole.
const (
	// MaxFanoutRepositories is the most repositories a cross-repository
	// list reads.
	MaxFanoutRepositories = 200
	// FanoutPerRepository is the most rows it shows per repository, each
	// group linking to the repository's own full list.
	FanoutPerRepository = 20
)

// loginView is the data of the sign-in page.
type loginView struct {
	Next, Error string
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	if _, err := s.userOf(r); err == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login", view{Title: "Sign in", Data: loginView{Next: localPath(r.URL.Query().Get("next"), "")}})
}

// login turns a pasted API token into a session cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		s.fail(w, r, nil, fmt.Errorf("cross-origin sign-in: %w", errForbidden))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	next := localPath(r.PostFormValue("next"), "/")
	if tok == "" {
		s.render(w, r, http.StatusBadRequest, "login", view{Title: "Sign in", Data: loginView{Next: next, Error: "Paste an API token."}})
		return
	}
	hash := domain.HashToken(tok)
	if _, _, err := s.principalOf(r.Context(), hash); err != nil {
		if !errors.Is(err, errNoSession) {
			s.fail(w, r, nil, err)
			return
		}
		s.render(w, r, http.StatusUnauthorized, "login", view{Title: "Sign in",
			Data: loginView{Next: next, Error: "That token is not valid, or it was revoked or has expired."}})
		return
	}
	_, val, err := s.sess.issue(hash, s.now())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: val, Path: "/", MaxAge: int(s.cfg.SessionTTL.Seconds()),
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, u *user) error {
	s.sess.signOut(u.sess, s.now())
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// listOptions reads a list's cursor parameter and the page size ?limit=.
func listOptions(r *http.Request, cursorParam string) (queries.ListOptions, error) {
	o := queries.ListOptions{Limit: DefaultPageSize, Cursor: r.URL.Query().Get(cursorParam)}
	if raw := r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > queries.MaxLimit {
			return o, &domain.InvalidArgumentError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d", queries.MaxLimit)}
		}
		o.Limit = n
	}
	return o, nil
}

// multi joins a parameter's values (repeated, or comma-separated) into the
// comma-separated filter the query side takes.
func multi(q url.Values, name string) string {
	var out []string
	for _, v := range q[name] {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" && !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	return strings.Join(out, ",")
}

// split is multi as a list, for checkbox states.
func split(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// tile is one overview tile.
type tile struct {
	Label    string
	Count    int
	Href     string
	Severity string
}

type overviewView struct {
	Dashboard queries.Dashboard
	Tiles     []tile
	ScanTiles []tile
	Trend     trend
	Projects  []queries.Project
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request, u *user) error {
	d, err := s.q.Dashboard(r.Context(), u.caller())
	if err != nil {
		return err
	}
	projects, err := s.q.ListProjects(r.Context(), u.caller(), queries.ListOptions{Limit: DefaultPageSize})
	if err != nil {
		return err
	}
	v := overviewView{Dashboard: d, Trend: trendOf(d.RecentScans), Projects: projects.Items}
	for _, sv := range domain.Severities() {
		v.Tiles = append(v.Tiles, tile{Label: string(sv), Count: d.OpenIssues[string(sv)], Severity: string(sv),
			Href: "/issues?" + url.Values{"severity": {string(sv)}, "state": {"open"}, "triage": {"open,under_review"}}.Encode()})
	}
	for _, st := range []domain.ScanState{domain.ScanStateRunning, domain.ScanStateFailed} {
		v.ScanTiles = append(v.ScanTiles, tile{Label: string(st), Count: d.Scans[string(st)], Href: "/scans?status=" + string(st)})
	}
	return s.live(w, r, u, http.StatusOK, "overview", view{Title: "Overview", Nav: "overview", Data: v}, "")
}

// live renders a page that follows an SSE feed: the activity feed (scanID
// "") or a scan's, with a fresh stream token when a minter is configured.
func (s *Server) live(w http.ResponseWriter, r *http.Request, u *user, status int, name string, v view, scanID string) error {
	v.User = u
	if s.d.StreamTokens != nil {
		tok, _, err := s.d.StreamTokens.Mint(u.caller(), scanID, s.now())
		if err != nil {
			return err
		}
		v.StreamToken = tok
		if scanID == "" {
			v.Live = s.cfg.APIPrefix + "/events"
		} else {
			v.Live = s.cfg.APIPrefix + "/scans/" + url.PathEscape(scanID) + "/events"
		}
	}
	s.render(w, r, status, name, v)
	return nil
}

type projectsView struct {
	Projects queries.Page[queries.Project]
	Q        url.Values
}

func (s *Server) projects(w http.ResponseWriter, r *http.Request, u *user) error {
	o, err := listOptions(r, "cursor")
	if err != nil {
		return err
	}
	p, err := s.q.ListProjects(r.Context(), u.caller(), o)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "projects", view{Title: "Projects", Nav: "projects", User: u, Data: projectsView{Projects: p, Q: r.URL.Query()}})
	return nil
}

type projectView struct {
	Project      queries.Project
	Role         domain.Role
	CanEdit      bool
	IsOwner      bool
	Members      queries.Page[queries.Member]
	Repositories queries.Page[queries.Repository]
	Q            url.Values
}

func (s *Server) project(w http.ResponseWriter, r *http.Request, u *user) error {
	id := chi.URLParam(r, "id")
	p, err := s.q.Project(r.Context(), u.caller(), id)
	if err != nil {
		return err
	}
	role, err := s.role(r.Context(), u, id)
	if err != nil {
		return err
	}
	mo, err := listOptions(r, "members")
	if err != nil {
		return err
	}
	members, err := s.q.ListMembers(r.Context(), u.caller(), id, mo)
	if err != nil {
		return err
	}
	ro, err := listOptions(r, "repositories")
	if err != nil {
		return err
	}
	repos, err := s.q.ListRepositories(r.Context(), u.caller(), id, ro)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "project", view{Title: p.Name, Nav: "projects", User: u, Data: projectView{Project: p, Role: role,
		CanEdit: role.AtLeast(domain.RoleEditor), IsOwner: role.AtLeast(domain.RoleOwner), Members: members, Repositories: repos, Q: r.URL.Query()}})
	return nil
}

type repositoryView struct {
	Repository queries.Repository
	Project    queries.Project
	Role       domain.Role
	CanEdit    bool
	CanUpload  bool
	Snapshots  queries.Page[queries.Snapshot]
	Profile    queries.ThreatProfile
	Scans      queries.Page[queries.Scan]
	Issues     queries.Page[queries.Issue]
	Filter     queries.IssueFilter
	Q          url.Values
	Self       string
}

func (s *Server) repository(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx, c, id := r.Context(), u.caller(), chi.URLParam(r, "id")
	repo, err := s.q.Repository(ctx, c, id)
	if err != nil {
		return err
	}
	p, err := s.q.Project(ctx, c, repo.ProjectID)
	if err != nil {
		return err
	}
	role, err := s.role(ctx, u, repo.ProjectID)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	v := repositoryView{Repository: repo, Project: p, Role: role, CanEdit: role.AtLeast(domain.RoleEditor), Q: q, Self: r.URL.RequestURI(),
		Filter: queries.IssueFilter{Severity: multi(q, "severity"), Triage: multi(q, "triage"), State: multi(q, "state")}}
	v.CanUpload = v.CanEdit && s.d.Uploads != nil && repo.Source.Kind == domain.SourceArchive
	so, err := listOptions(r, "snapshots")
	if err != nil {
		return err
	}
	so.Limit = 10
	if v.Snapshots, err = s.q.ListSnapshots(ctx, c, id, so); err != nil {
		return err
	}
	if v.Profile, err = s.q.ThreatProfile(ctx, c, id); err != nil {
		return err
	}
	sco, err := listOptions(r, "scans")
	if err != nil {
		return err
	}
	sco.Limit = 10
	if v.Scans, err = s.q.ListScans(ctx, c, id, sco); err != nil {
		return err
	}
	io, err := listOptions(r, "issues")
	if err != nil {
		return err
	}
	if v.Issues, err = s.q.ListIssues(ctx, c, id, v.Filter, io); err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "repository", view{Title: repo.Name, Nav: "projects", User: u, Data: v})
	return nil
}

// repoScans is one repository's rows of a cross-repository list.
type repoScans struct {
	Repository queries.Repository
	Project    queries.Project
	Scans      []queries.Scan
	Issues     []queries.Issue
	More       bool
	Href       string
}

type scansView struct {
	Status    string
	Groups    []repoScans
	Truncated bool
}

// eachRepository calls fn for the caller's repositories, up to
// MaxFanoutRepositories; it reports whether it stopped early.
func (s *Server) eachRepository(r *http.Request, u *user, fn func(p queries.Project, repo queries.Repository) error) (bool, error) {
	n := 0
	po := queries.ListOptions{Limit: queries.MaxLimit}
	for {
		projects, err := s.q.ListProjects(r.Context(), u.caller(), po)
		if err != nil {
			return false, err
		}
		for _, p := range projects.Items {
			ro := queries.ListOptions{Limit: queries.MaxLimit}
			for {
				repos, err := s.q.ListRepositories(r.Context(), u.caller(), p.ID, ro)
				if err != nil {
					return false, err
				}
				for _, repo := range repos.Items {
					if repo.Removed {
						continue
					}
					if n++; n > MaxFanoutRepositories {
						return true, nil
					}
					if err := fn(p, repo); err != nil {
						return false, err
					}
				}
				if repos.NextCursor == "" {
					break
				}
				ro.Cursor = repos.NextCursor
			}
		}
		if projects.NextCursor == "" {
			return false, nil
		}
		po.Cursor = projects.NextCursor
	}
}

// scans lists the caller's scans of one status (the overview's tiles),
// newest first per repository.
func (s *Server) scans(w http.ResponseWriter, r *http.Request, u *user) error {
	status := r.URL.Query().Get("status")
	if status != "" && !domain.ScanState(status).Valid() {
		return &domain.InvalidArgumentError{Field: "status", Reason: fmt.Sprintf("%q is not a scan status", status)}
	}
	v := scansView{Status: status}
	var err error
	v.Truncated, err = s.eachRepository(r, u, func(p queries.Project, repo queries.Repository) error {
		g := repoScans{Repository: repo, Project: p, Href: "/repositories/" + url.PathEscape(repo.ID)}
		o := queries.ListOptions{Limit: queries.MaxLimit}
		for {
			page, err := s.q.ListScans(r.Context(), u.caller(), repo.ID, o)
			if err != nil {
				return err
			}
			for _, sc := range page.Items {
				if status == "" || string(sc.Status) == status {
					if len(g.Scans) == FanoutPerRepository {
						g.More = true
						break
					}
					g.Scans = append(g.Scans, sc)
				}
			}
			if g.More || page.NextCursor == "" {
				break
			}
			o.Cursor = page.NextCursor
		}
		if len(g.Scans) > 0 {
			v.Groups = append(v.Groups, g)
		}
		return nil
	})
	if err != nil {
		return err
	}
	title := "Scans"
	if status != "" {
		title = "Scans: " + strings.ReplaceAll(status, "_", " ")
	}
	s.render(w, r, http.StatusOK, "scans", view{Title: title, Nav: "overview", User: u, Data: v})
	return nil
}

type issuesView struct {
	Filter    queries.IssueFilter
	Groups    []repoScans
	Truncated bool
	Q         url.Values
}

// issues lists the caller's issues matching a filter across repositories
// (the overview's severity tiles), grouped by repository.
func (s *Server) issues(w http.ResponseWriter, r *http.Request, u *user) error {
	q := r.URL.Query()
	f := queries.IssueFilter{Severity: multi(q, "severity"), Triage: multi(q, "triage"), State: multi(q, "state")}
	v := issuesView{Filter: f, Q: q}
	var err error
	v.Truncated, err = s.eachRepository(r, u, func(p queries.Project, repo queries.Repository) error {
		page, err := s.q.ListIssues(r.Context(), u.caller(), repo.ID, f, queries.ListOptions{Limit: FanoutPerRepository})
		if err != nil {
			return err
		}
		if len(page.Items) > 0 {
			v.Groups = append(v.Groups, repoScans{Repository: repo, Project: p, Issues: page.Items, More: page.NextCursor != "",
				Href: query("/repositories/"+url.PathEscape(repo.ID), url.Values{"severity": {f.Severity}, "triage": {f.Triage}, "state": {f.State}}) + "#issues"})
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "issues", view{Title: "Issues", Nav: "overview", User: u, Data: v})
	return nil
}

type issueView struct {
	Issue      queries.Issue
	Repository queries.Repository
	Role       domain.Role
	CanEdit    bool
}

func (s *Server) issue(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx, c := r.Context(), u.caller()
	is, err := s.q.Issue(ctx, c, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	repo, err := s.q.Repository(ctx, c, is.RepositoryID)
	if err != nil {
		return err
	}
	role, err := s.role(ctx, u, repo.ProjectID)
	if err != nil {
		return err
	}
	finding, err := s.issueFinding(r, u, is)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "issue", view{Title: is.Title, Nav: "projects", User: u,
		Data: struct {
			issueView
			Finding *queries.Finding
		}{issueView{Issue: is, Repository: repo, Role: role, CanEdit: role.AtLeast(domain.RoleEditor)}, finding}})
	return nil
}

// issueFinding returns the issue's finding in its last scan (for its
// snippet, CWE and message), or nil when it is not found there.
func (s *Server) issueFinding(r *http.Request, u *user, is queries.Issue) (*queries.Finding, error) {
	if is.LastSeenScanID == "" {
		return nil, nil
	}
	f := queries.FindingFilter{Rule: is.RuleID, File: is.File}
	if strings.Contains(is.RuleID, ",") || strings.Contains(is.File, ",") {
		f = queries.FindingFilter{} // a comma would split the filter value
	}
	o := queries.ListOptions{Limit: queries.MaxLimit}
	for range 20 { // bounded: the filter makes this one page in practice
		page, err := s.q.ListFindings(r.Context(), u.caller(), is.LastSeenScanID, f, o)
		if errors.Is(err, domain.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		for _, fd := range page.Items {
			if fd.Fingerprint == is.Fingerprint {
				return &fd, nil
			}
		}
		if page.NextCursor == "" {
			break
		}
		o.Cursor = page.NextCursor
	}
	return nil, nil
}

// sarif downloads a scan's SARIF export.
func (s *Server) sarif(w http.ResponseWriter, r *http.Request, u *user) error {
	id := chi.URLParam(r, "id")
	if _, err := s.q.Scan(r.Context(), u.caller(), id); err != nil {
		return err
	}
	if s.d.SARIF == nil {
		return fmt.Errorf("sarif export: %w", domain.ErrNotFound)
	}
	var buf bytes.Buffer
	if err := s.d.SARIF.ScanSARIF(r.Context(), u.caller(), id, &buf); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/sarif+json")
	w.Header().Set("Content-Disposition", `attachment; filename="scan-`+strings.Map(safeFileRune, id)+`.sarif"`)
	_, _ = w.Write(buf.Bytes())
	return nil
}

func safeFileRune(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
		return r
	}
	return '_'
}
