package commands

import (
	"context"
	"fmt"

	"github.com/vega-sec/vega/domain"
)

// CreateProject creates a project owned by the request's actor.
type CreateProject struct {
	// ProjectID is the new project's ID; empty: a fresh ULID.
	ProjectID   string
	Name        string
	Description string
}

type createProjectHandler struct{ d *deps }

// Handle decides domain.NewProject and starts the project stream. It
// returns an *domain.InvalidArgumentError naming "id", "name" or
// "description", and domain.ErrConflict when the ID is taken.
func (h createProjectHandler) Handle(ctx context.Context, cmd CreateProject) (ProjectResult, error) {
	id := h.d.idOr(cmd.ProjectID)
	events, err := domain.NewProject(id, cmd.Name, cmd.Description, RequestFromContext(ctx).Actor, h.d.now())
	if err != nil {
		return ProjectResult{}, fmt.Errorf("create project: %w", err)
	}
	p, res, err := h.d.Projects.Create(ctx, id, events)
	if err != nil {
		return ProjectResult{}, fmt.Errorf("create project: %w", err)
	}
	return ProjectResult{Result: res, Project: p}, nil
}
