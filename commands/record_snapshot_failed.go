package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// RecordSnapshotFailed records that a pending git capture failed.
type RecordSnapshotFailed struct {
	RepositoryID string
	SnapshotID   string
	// Reason says why; it is kept up to domain.MaxReasonLength runes and
	// must not contain secrets.
	Reason string
}

type recordSnapshotFailedHandler struct{ d *deps }

// Handle decides domain.Repository.FailSnapshot (allowed on a removed
// repository, so in-flight captures end). It returns domain.ErrNotFound for
// an unknown repository or snapshot and domain.ErrConflict for a snapshot
// that is not pending.
func (h recordSnapshotFailedHandler) Handle(ctx context.Context, cmd RecordSnapshotFailed) (SnapshotResult, error) {
	r, res, err := update(ctx, h.d, h.d.Repositories, "record failed snapshot of repository", cmd.RepositoryID,
		func(r *domain.Repository, now time.Time) ([]domain.Event, error) {
			return r.FailSnapshot(cmd.SnapshotID, cmd.Reason, now)
		})
	if err != nil {
		return SnapshotResult{}, err
	}
	s, _ := r.Snapshot(cmd.SnapshotID)
	return SnapshotResult{Result: res, RepositoryID: r.ID, Snapshot: s}, nil
}
