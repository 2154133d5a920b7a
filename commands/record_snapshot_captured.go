package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// RecordSnapshotCaptured records a captured snapshot: an uploaded archive
// (whose content is already stored under SnapshotID), or the end of a
// pending git capture.
type RecordSnapshotCaptured struct {
	RepositoryID string
	// SnapshotID is the snapshot's ID: the pending one for a git capture; for
	// an archive upload, the ID its blob was stored under (empty: a fresh
	// ULID, for callers that store the blob afterwards).
	SnapshotID string
	Capture    domain.Capture
}

type recordSnapshotCapturedHandler struct{ d *deps }

// Handle decides domain.Repository.CaptureSnapshot; a new (uploaded)
// snapshot also needs the project to be active, while a pending git capture
// may end on an archived project. It returns an *domain.InvalidArgumentError
// for "repository_id", "snapshot_id", "source.kind" or a Capture field
// ("digest", "size_bytes", "file_count", "commit"), domain.ErrNotFound for
// an unknown or removed repository, and domain.ErrConflict for a snapshot
// that is not pending or an archived project.
func (h recordSnapshotCapturedHandler) Handle(ctx context.Context, cmd RecordSnapshotCaptured) (SnapshotResult, error) {
	snapshotID := h.d.idOr(cmd.SnapshotID)
	r, res, err := update(ctx, h.d, h.d.Repositories, "record snapshot of repository", cmd.RepositoryID,
		func(r *domain.Repository, now time.Time) ([]domain.Event, error) {
			_, pending := r.Snapshot(snapshotID)
			events, err := r.CaptureSnapshot(snapshotID, cmd.Capture, now)
			if err != nil {
				return nil, err
			}
			if !pending {
				if _, err := h.d.activeProject(ctx, r.ProjectID); err != nil {
					return nil, err
				}
			}
			return events, nil
		})
	if err != nil {
		return SnapshotResult{}, err
	}
	s, _ := r.Snapshot(snapshotID)
	return SnapshotResult{Result: res, RepositoryID: r.ID, Snapshot: s}, nil
}
