package httpapi

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

// projectOf is the project of a domain project as the API shows it, for
// when the read model is not there yet (a read-your-own-writes wait that
// timed out).
func projectOf(p *domain.Project) queries.Project {
	return queries.Project{ID: p.ID, Name: p.Name, Description: p.Description, CreatedAt: stamp(p.CreatedAt), Archived: p.Archived}
}

type createProjectRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, p *Principal) error {
	var req createProjectRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	res, err := s.cmd.CreateProject.Handle(commandContext(r, p), commands.CreateProject{Name: req.Name, Description: req.Description})
	if err != nil {
		return err
	}
	return s.answerProject(w, r, p, http.StatusCreated, res)
}

// answerProject waits for the read models and answers with the project as
// the query side shows it (or as the command left it, when the read model
// is late).
func (s *Server) answerProject(w http.ResponseWriter, r *http.Request, p *Principal, status int, res commands.ProjectResult) error {
	s.consistent(r, res.Result)
	out, err := s.q.Project(r.Context(), p.caller(), res.Project.ID)
	if errors.Is(err, domain.ErrNotFound) {
		out, err = projectOf(res.Project), nil
	}
	return answer(w, status, out, err)
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request, p *Principal) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	page, err := s.q.ListProjects(r.Context(), p.caller(), o)
	return answer(w, http.StatusOK, page, err)
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request, p *Principal) error {
	out, err := s.q.Project(r.Context(), p.caller(), chi.URLParam(r, "project_id"))
	return answer(w, http.StatusOK, out, hideNotFound(err, "project"))
}

func (s *Server) archiveProject(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "project_id")
	if err := s.authorize(r.Context(), p, id, "project", domain.RoleOwner); err != nil {
		return err
	}
	res, err := s.cmd.ArchiveProject.Handle(commandContext(r, p), commands.ArchiveProject{ProjectID: id})
	if err != nil {
		return hideNotFound(err, "project")
	}
	return s.answerProject(w, r, p, http.StatusOK, res)
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, p *Principal) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	page, err := s.q.ListMembers(r.Context(), p.caller(), chi.URLParam(r, "project_id"), o)
	return answer(w, http.StatusOK, page, hideNotFound(err, "project"))
}

type grantMemberRequest struct {
	Principal string `json:"principal"`
	Role      string `json:"role"`
}

func (s *Server) grantMember(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "project_id")
	if err := s.authorize(r.Context(), p, id, "project", domain.RoleOwner); err != nil {
		return err
	}
	var req grantMemberRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	role, err := domain.ParseRole(req.Role)
	if err != nil {
		return err
	}
	res, err := s.cmd.GrantMember.Handle(commandContext(r, p), commands.GrantMember{ProjectID: id, Principal: req.Principal, Role: role})
	if err != nil {
		return hideNotFound(err, "project")
	}
	s.consistent(r, res.Result)
	m := res.Project.Members[req.Principal]
	writeJSON(w, http.StatusOK, queries.Member{ProjectID: id, Principal: m.Principal, Role: m.Role, GrantedAt: stamp(m.GrantedAt)})
	return nil
}

// revokeMember removes a member: owners (and admins) may remove anyone,
// and any member may leave (remove itself).
func (s *Server) revokeMember(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, who := chi.URLParam(r, "project_id"), chi.URLParam(r, "principal")
	min := domain.RoleOwner
	if who == p.ID {
		min = domain.RoleViewer
	}
	if err := s.authorize(r.Context(), p, id, "project", min); err != nil {
		return err
	}
	res, err := s.cmd.RevokeMember.Handle(commandContext(r, p), commands.RevokeMember{ProjectID: id, Principal: who})
	if err != nil {
		return hideNotFound(err, "member")
	}
	s.consistent(r, res.Result)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Repositories, snapshots and threat profiles.

// repositoryOf is a domain repository as the API shows it (see projectOf).
func repositoryOf(rp *domain.Repository) queries.Repository {
	out := queries.Repository{ID: rp.ID, ProjectID: rp.ProjectID, Name: rp.Name, Source: rp.Source, CreatedAt: stamp(rp.CreatedAt)}
	if snap, ok := rp.LatestCaptured(); ok {
		out.LatestSnapshotID = snap.ID
	}
	return out
}

type addRepositoryRequest struct {
	Name   string        `json:"name"`
	Source domain.Source `json:"source"`
}

func (s *Server) addRepository(w http.ResponseWriter, r *http.Request, p *Principal) error {
	pid := chi.URLParam(r, "project_id")
	if err := s.authorize(r.Context(), p, pid, "project", domain.RoleEditor); err != nil {
		return err
	}
	var req addRepositoryRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	res, err := s.cmd.AddRepository.Handle(commandContext(r, p), commands.AddRepository{ProjectID: pid, Name: req.Name, Source: req.Source})
	if err != nil {
		return hideNotFound(err, "project")
	}
	s.consistent(r, res.Result)
	out, err := s.q.Repository(r.Context(), p.caller(), res.Repository.ID)
	if errors.Is(err, domain.ErrNotFound) {
		out, err = repositoryOf(res.Repository), nil
	}
	return answer(w, http.StatusCreated, out, err)
}

func (s *Server) listRepositories(w http.ResponseWriter, r *http.Request, p *Principal) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	pid := chi.URLParam(r, "project_id")
	if _, err := s.q.Project(r.Context(), p.caller(), pid); err != nil {
		return hideNotFound(err, "project")
	}
	page, err := s.q.ListRepositories(r.Context(), p.caller(), pid, o)
	return answer(w, http.StatusOK, page, hideNotFound(err, "project"))
}

func (s *Server) getRepository(w http.ResponseWriter, r *http.Request, p *Principal) error {
	out, err := s.q.Repository(r.Context(), p.caller(), chi.URLParam(r, "repository_id"))
	return answer(w, http.StatusOK, out, hideNotFound(err, "repository"))
}

// authorizeRepository checks p's role in the project of a repository the
// caller can see; removed repositories are admins' only.
func (s *Server) authorizeRepository(r *http.Request, p *Principal, id string, min domain.Role) error {
	if _, err := s.q.Repository(r.Context(), p.caller(), id); err != nil {
		return hideNotFound(err, "repository")
	}
	pid, err := s.q.ProjectOfRepository(r.Context(), id)
	if err != nil {
		return hideNotFound(err, "repository")
	}
	return s.authorize(r.Context(), p, pid, "repository", min)
}

func (s *Server) removeRepository(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "repository_id")
	if err := s.authorizeRepository(r, p, id, domain.RoleEditor); err != nil {
		return err
	}
	res, err := s.cmd.RemoveRepository.Handle(commandContext(r, p), commands.RemoveRepository{RepositoryID: id})
	if err != nil {
		return hideNotFound(err, "repository")
	}
	s.consistent(r, res.Result)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request, p *Principal) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	page, err := s.q.ListSnapshots(r.Context(), p.caller(), chi.URLParam(r, "repository_id"), o)
	return answer(w, http.StatusOK, page, hideNotFound(err, "repository"))
}

func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request, p *Principal) error {
	out, err := s.q.Snapshot(r.Context(), p.caller(), chi.URLParam(r, "snapshot_id"))
	return answer(w, http.StatusOK, out, hideNotFound(err, "snapshot"))
}

// threatProfileRequest is the body of PUT threat-profile: a whole profile
// without its version, which the server numbers.
type threatProfileRequest struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Categories  []domain.Category `json:"categories"`
	MinSeverity domain.Severity   `json:"min_severity"`
	Include     []string          `json:"include"`
	Exclude     []string          `json:"exclude"`
	Engines     []string          `json:"engines"`
	LLMBudget   domain.LLMBudget  `json:"llm_budget"`
}

func (s *Server) defineThreatProfile(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "repository_id")
	if err := s.authorizeRepository(r, p, id, domain.RoleEditor); err != nil {
		return err
	}
	var req threatProfileRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	res, err := s.cmd.DefineThreatProfile.Handle(commandContext(r, p), commands.DefineThreatProfile{RepositoryID: id,
		Profile: domain.ThreatProfile{Name: req.Name, Description: req.Description, Categories: req.Categories,
			MinSeverity: req.MinSeverity, Include: req.Include, Exclude: req.Exclude, Engines: req.Engines, LLMBudget: req.LLMBudget}})
	if err != nil {
		return hideNotFound(err, "repository")
	}
	s.consistent(r, res.Result)
	out, err := s.q.ThreatProfile(r.Context(), p.caller(), id)
	if err == nil && out.Version < res.Profile.Version {
		out = res.Profile // the read model is late: answer what was defined
	}
	return answer(w, http.StatusOK, out, hideNotFound(err, "repository"))
}

func (s *Server) getThreatProfile(w http.ResponseWriter, r *http.Request, p *Principal) error {
	out, err := s.q.ThreatProfile(r.Context(), p.caller(), chi.URLParam(r, "repository_id"))
	return answer(w, http.StatusOK, out, hideNotFound(err, "repository"))
}
