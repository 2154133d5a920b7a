package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// RemoveRepository removes a repository for users; its history stays.
type RemoveRepository struct {
	RepositoryID string
}

type removeRepositoryHandler struct{ d *deps }

// Handle decides domain.Repository.Remove. It returns domain.ErrNotFound
// for an unknown or already removed repository.
func (h removeRepositoryHandler) Handle(ctx context.Context, cmd RemoveRepository) (RepositoryResult, error) {
	r, res, err := update(ctx, h.d, h.d.Repositories, "remove repository", cmd.RepositoryID,
		func(r *domain.Repository, now time.Time) ([]domain.Event, error) { return r.Remove(now) })
	return RepositoryResult{Result: res, Repository: r}, err
}
