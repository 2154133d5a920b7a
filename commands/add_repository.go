package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/vega-sec/vega/domain"
)

// AddRepository adds a repository to a project.
type AddRepository struct {
	ProjectID string
	// RepositoryID is the new repository's ID; empty: a fresh ULID.
	RepositoryID string
	Name         string
	Source       domain.Source
}

type addRepositoryHandler struct{ d *deps }

// Handle loads the project, decides domain.NewRepository under the
// configured SourcePolicy and starts the repository stream. It returns an
// *domain.InvalidArgumentError naming "project_id", "id", "name" or
// "source.…", domain.ErrNotFound for an unknown project, and
// domain.ErrConflict for an archived project or a taken ID.
func (h addRepositoryHandler) Handle(ctx context.Context, cmd AddRepository) (RepositoryResult, error) {
	id := h.d.idOr(cmd.RepositoryID)
	// An unknown project is reported by the domain after the input checks,
	// so that bad input is a 400 whatever the project.
	p, _, err := h.d.Projects.Load(ctx, cmd.ProjectID)
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return RepositoryResult{}, fmt.Errorf("add repository: %w", err)
	}
	events, err := domain.NewRepository(p, id, cmd.Name, cmd.Source, h.d.policy, h.d.now())
	if err != nil {
		return RepositoryResult{}, fmt.Errorf("add repository to project %s: %w", cmd.ProjectID, err)
	}
	r, res, err := h.d.Repositories.Create(ctx, id, events)
	if err != nil {
		return RepositoryResult{}, fmt.Errorf("add repository to project %s: %w", cmd.ProjectID, err)
	}
	return RepositoryResult{Result: res, Repository: r}, nil
}
