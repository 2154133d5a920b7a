package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// RevokeMember removes a principal from a project.
type RevokeMember struct {
	ProjectID string
	Principal string
}

type revokeMemberHandler struct{ d *deps }

// Handle decides domain.Project.Revoke. It returns domain.ErrNotFound for an
// unknown project or a principal that is not a member, and
// domain.ErrConflict for the last owner.
func (h revokeMemberHandler) Handle(ctx context.Context, cmd RevokeMember) (ProjectResult, error) {
	p, res, err := update(ctx, h.d, h.d.Projects, "revoke member of project", cmd.ProjectID,
		func(p *domain.Project, now time.Time) ([]domain.Event, error) { return p.Revoke(cmd.Principal, now) })
	return ProjectResult{Result: res, Project: p}, err
}
