package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// RenameProject gives a project a new name.
type RenameProject struct {
	ProjectID string
	Name      string
}

type renameProjectHandler struct{ d *deps }

// Handle decides domain.Project.Rename. The same name appends nothing. It
// returns an *domain.InvalidArgumentError for "project_id" or "name",
// domain.ErrNotFound for an unknown project, and domain.ErrConflict for an
// archived one.
func (h renameProjectHandler) Handle(ctx context.Context, cmd RenameProject) (ProjectResult, error) {
	p, res, err := update(ctx, h.d, h.d.Projects, "rename project", cmd.ProjectID,
		func(p *domain.Project, now time.Time) ([]domain.Event, error) { return p.Rename(cmd.Name, now) })
	return ProjectResult{Result: res, Project: p}, err
}
