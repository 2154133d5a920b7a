package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// ArchiveProject archives a project: it stays readable but takes no new
// repositories, snapshots, profiles or scans.
type ArchiveProject struct {
	ProjectID string
}

type archiveProjectHandler struct{ d *deps }

// Handle decides domain.Project.Archive; archiving an archived project
// appends nothing. It returns domain.ErrNotFound for an unknown project.
func (h archiveProjectHandler) Handle(ctx context.Context, cmd ArchiveProject) (ProjectResult, error) {
	p, res, err := update(ctx, h.d, h.d.Projects, "archive project", cmd.ProjectID,
		func(p *domain.Project, now time.Time) ([]domain.Event, error) { return p.Archive(now) })
	return ProjectResult{Result: res, Project: p}, err
}
