package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// DefineThreatProfile records a whole new threat-profile version of a
// repository. Omitted fields take the defaults (domain.ThreatProfile.Normalize);
// Profile.Version is ignored.
type DefineThreatProfile struct {
	RepositoryID string
	Profile      domain.ThreatProfile
}

type defineThreatProfileHandler struct{ d *deps }

// Handle checks that the project is active and decides
// domain.Repository.DefineThreatProfile. It returns an
// *domain.InvalidArgumentError naming the profile field, domain.ErrNotFound
// for an unknown or removed repository, and domain.ErrConflict for an
// archived project.
func (h defineThreatProfileHandler) Handle(ctx context.Context, cmd DefineThreatProfile) (ThreatProfileResult, error) {
	r, res, err := update(ctx, h.d, h.d.Repositories, "define threat profile of repository", cmd.RepositoryID,
		func(r *domain.Repository, now time.Time) ([]domain.Event, error) {
			events, err := r.DefineThreatProfile(cmd.Profile, now)
			if err != nil {
				return nil, err
			}
			if _, err := h.d.activeProject(ctx, r.ProjectID); err != nil {
				return nil, err
			}
			return events, nil
		})
	if err != nil {
		return ThreatProfileResult{}, err
	}
	return ThreatProfileResult{Result: res, RepositoryID: r.ID, Profile: r.ThreatProfile()}, nil
}
