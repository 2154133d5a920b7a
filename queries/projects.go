package queries

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vega-sec/vega/domain"
)

const projectColumns = `SELECT id, name, description, created_at, archived FROM projects`

func scanProject(rows interface{ Scan(...any) error }) (Project, []any, error) {
	var (
		p  Project
		at int64
	)
	if err := rows.Scan(&p.ID, &p.Name, &p.Description, &at, &p.Archived); err != nil {
		return Project{}, nil, err
	}
	p.CreatedAt = stampOf(at)
	return p, []any{p.ID}, nil
}

// ListProjects lists the projects the caller can see (archived ones
// included), by ID.
func (s *Service) ListProjects(ctx context.Context, c Caller, o ListOptions) (Page[Project], error) {
	cond, args := visible(c, "id")
	return page(ctx, s, o, listSpec{kind: "projects", cols: []keyCol{{expr: "id"}}, text: []bool{true},
		selekt: projectColumns, where: []string{cond}, args: args},
		func(r *sql.Rows) (Project, []any, error) { return scanProject(r) })
}

// Project returns a project the caller can see, or domain.ErrNotFound.
func (s *Service) Project(ctx context.Context, c Caller, id string) (Project, error) {
	cond, args := visible(c, "id")
	p, _, err := scanProject(s.queryRow(ctx, projectColumns+` WHERE id = ? AND `+cond, append([]any{id}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return Project{}, notFound("project %s", id)
	}
	if err != nil {
		return Project{}, fmt.Errorf("get project %s: %w", id, err)
	}
	return p, nil
}

// ListMembers lists the members of a project the caller can see, by
// principal; domain.ErrNotFound otherwise.
func (s *Service) ListMembers(ctx context.Context, c Caller, projectID string, o ListOptions) (Page[Member], error) {
	if _, err := s.Project(ctx, c, projectID); err != nil {
		return Page[Member]{}, err
	}
	return page(ctx, s, o, listSpec{kind: "members", cols: []keyCol{{expr: "principal"}}, text: []bool{true},
		selekt: `SELECT project_id, principal, role, granted_at FROM project_members`,
		where:  []string{"project_id = ?"}, args: []any{projectID}},
		func(r *sql.Rows) (Member, []any, error) {
			var (
				m  Member
				at int64
			)
			if err := r.Scan(&m.ProjectID, &m.Principal, &m.Role, &at); err != nil {
				return Member{}, nil, err
			}
			m.GrantedAt = stampOf(at)
			return m, []any{m.Principal}, nil
		})
}

const repositoryColumns = `SELECT id, project_id, name, source_kind, source_url, source_ref, created_at, latest_snapshot_id, removed FROM repositories`

func scanRepository(row interface{ Scan(...any) error }) (Repository, []any, error) {
	var (
		r  Repository
		at int64
	)
	if err := row.Scan(&r.ID, &r.ProjectID, &r.Name, &r.Source.Kind, &r.Source.URL, &r.Source.Ref, &at, &r.LatestSnapshotID, &r.Removed); err != nil {
		return Repository{}, nil, err
	}
	r.CreatedAt = stampOf(at)
	return r, []any{r.ID}, nil
}

// ListRepositories lists the repositories of a project the caller can see,
// by ID; removed ones only for admins. domain.ErrNotFound for a project the
// caller cannot see.
func (s *Service) ListRepositories(ctx context.Context, c Caller, projectID string, o ListOptions) (Page[Repository], error) {
	if _, err := s.Project(ctx, c, projectID); err != nil {
		return Page[Repository]{}, err
	}
	where, args := []string{"project_id = ?"}, []any{projectID}
	if !c.Admin {
		where, args = append(where, "removed = ?"), append(args, false)
	}
	return page(ctx, s, o, listSpec{kind: "repositories", cols: []keyCol{{expr: "id"}}, text: []bool{true},
		selekt: repositoryColumns, where: where, args: args},
		func(r *sql.Rows) (Repository, []any, error) { return scanRepository(r) })
}

// Repository returns a repository the caller can see, or
// domain.ErrNotFound.
func (s *Service) Repository(ctx context.Context, c Caller, id string) (Repository, error) {
	if _, err := s.scope(ctx, c, "repository", repositoryScope, id); err != nil {
		return Repository{}, err
	}
	r, _, err := scanRepository(s.queryRow(ctx, repositoryColumns+` WHERE id = ?`, id))
	if err != nil {
		return Repository{}, fmt.Errorf("get repository %s: %w", id, err)
	}
	return r, nil
}

const snapshotColumns = `SELECT id, repository_id, ord, status, ref, digest, size_bytes, file_count, commit_sha, captured_at, error FROM snapshots`

func scanSnapshot(row interface{ Scan(...any) error }) (Snapshot, []any, error) {
	var (
		sn  Snapshot
		ord int64
		at  sql.NullInt64
	)
	if err := row.Scan(&sn.ID, &sn.RepositoryID, &ord, &sn.Status, &sn.Ref, &sn.Digest, &sn.SizeBytes, &sn.FileCount, &sn.Commit, &at, &sn.Error); err != nil {
		return Snapshot{}, nil, err
	}
	sn.CapturedAt = stamp(at)
	return sn, []any{ord}, nil
}

// ListSnapshots lists a repository's snapshots, newest first;
// domain.ErrNotFound for a repository the caller cannot see.
func (s *Service) ListSnapshots(ctx context.Context, c Caller, repositoryID string, o ListOptions) (Page[Snapshot], error) {
	if _, err := s.scope(ctx, c, "repository", repositoryScope, repositoryID); err != nil {
		return Page[Snapshot]{}, err
	}
	return page(ctx, s, o, listSpec{kind: "snapshots", cols: []keyCol{{expr: "ord", desc: true}}, text: []bool{false},
		selekt: snapshotColumns, where: []string{"repository_id = ?"}, args: []any{repositoryID}},
		func(r *sql.Rows) (Snapshot, []any, error) { return scanSnapshot(r) })
}

// Snapshot returns a snapshot the caller can see, or domain.ErrNotFound.
func (s *Service) Snapshot(ctx context.Context, c Caller, id string) (Snapshot, error) {
	if _, err := s.scope(ctx, c, "snapshot", snapshotScope, id); err != nil {
		return Snapshot{}, err
	}
	sn, _, err := scanSnapshot(s.queryRow(ctx, snapshotColumns+` WHERE id = ?`, id))
	if err != nil {
		return Snapshot{}, fmt.Errorf("get snapshot %s: %w", id, err)
	}
	return sn, nil
}

// ThreatProfile returns a repository's current threat profile, or
// domain.DefaultThreatProfile (version 0) before any was defined;
// domain.ErrNotFound for a repository the caller cannot see.
func (s *Service) ThreatProfile(ctx context.Context, c Caller, repositoryID string) (ThreatProfile, error) {
	if _, err := s.scope(ctx, c, "repository", repositoryScope, repositoryID); err != nil {
		return ThreatProfile{}, err
	}
	var raw string
	err := s.queryRow(ctx, `SELECT profile FROM threat_profiles WHERE repository_id = ? ORDER BY version DESC LIMIT 1`, repositoryID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.DefaultThreatProfile(), nil
	}
	if err != nil {
		return ThreatProfile{}, fmt.Errorf("threat profile of %s: %w", repositoryID, err)
	}
	var tp ThreatProfile
	if err := json.Unmarshal([]byte(raw), &tp); err != nil {
		return ThreatProfile{}, fmt.Errorf("threat profile of %s: %w", repositoryID, err)
	}
	return tp, nil
}
