package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// GrantMember gives a principal a role in a project, or changes its role.
type GrantMember struct {
	ProjectID string
	Principal string
	Role      domain.Role
}

type grantMemberHandler struct{ d *deps }

// Handle decides domain.Project.Grant. It returns an
// *domain.InvalidArgumentError for "project_id", "principal" or "role",
// domain.ErrNotFound for an unknown project, and domain.ErrConflict when the
// principal already has that role or is the last owner being demoted.
func (h grantMemberHandler) Handle(ctx context.Context, cmd GrantMember) (ProjectResult, error) {
	p, res, err := update(ctx, h.d, h.d.Projects, "grant member of project", cmd.ProjectID,
		func(p *domain.Project, now time.Time) ([]domain.Event, error) {
			return p.Grant(cmd.Principal, cmd.Role, now)
		})
	return ProjectResult{Result: res, Project: p}, err
}
