package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// RequestGitSnapshot asks for a git capture of a git repository; the
// worker captures it and records SnapshotCaptured or SnapshotFailed.
type RequestGitSnapshot struct {
	RepositoryID string
	// SnapshotID is the pending snapshot's ID; empty: a fresh ULID.
	SnapshotID string
	// Ref is the ref to capture; empty: the source's ref, or the remote's
	// default branch.
	Ref string
}

type requestGitSnapshotHandler struct{ d *deps }

// Handle checks that the repository's project is active and decides
// domain.Repository.RequestSnapshot. It returns an
// *domain.InvalidArgumentError for "repository_id", "snapshot_id", "ref" or
// "source.kind" (an archive repository), domain.ErrNotFound for an unknown
// or removed repository, and domain.ErrConflict for an archived project or
// a duplicate snapshot ID.
func (h requestGitSnapshotHandler) Handle(ctx context.Context, cmd RequestGitSnapshot) (SnapshotResult, error) {
	snapshotID := h.d.idOr(cmd.SnapshotID)
	r, res, err := update(ctx, h.d, h.d.Repositories, "request snapshot of repository", cmd.RepositoryID,
		func(r *domain.Repository, now time.Time) ([]domain.Event, error) {
			events, err := r.RequestSnapshot(snapshotID, cmd.Ref, now)
			if err != nil {
				return nil, err
			}
			if _, err := h.d.activeProject(ctx, r.ProjectID); err != nil {
				return nil, err
			}
			return events, nil
		})
	if err != nil {
		return SnapshotResult{}, err
	}
	s, _ := r.Snapshot(snapshotID)
	return SnapshotResult{Result: res, RepositoryID: r.ID, Snapshot: s}, nil
}
