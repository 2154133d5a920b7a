package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/vega-sec/vega/domain"
)

// RequestScan requests a scan of a repository's snapshot on behalf of the
// request's actor.
type RequestScan struct {
	RepositoryID string
	// ScanID is the new scan's ID; empty: a fresh ULID.
	ScanID string
	// SnapshotID is the snapshot to scan; empty: the latest captured one.
	SnapshotID string
	// Engines to run; nil: the threat profile's engines.
	Engines []string
}

type requestScanHandler struct{ d *deps }

// Handle loads the repository and its project, decides domain.NewScan with
// the repository's current threat profile and starts the scan stream. It
// returns an *domain.InvalidArgumentError naming "repository_id", "id",
// "snapshot_id" or "engines"; domain.ErrNotFound for an unknown or removed
// repository or snapshot; domain.ErrConflict for an archived project, a
// snapshot that is not captured, a repository without a captured snapshot,
// or a taken scan ID.
func (h requestScanHandler) Handle(ctx context.Context, cmd RequestScan) (ScanResult, error) {
	req := domain.ScanRequest{ID: h.d.idOr(cmd.ScanID), SnapshotID: cmd.SnapshotID, Engines: cmd.Engines,
		RequestedBy: RequestFromContext(ctx).Actor}
	r, _, err := h.d.Repositories.Load(ctx, cmd.RepositoryID)
	if err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			// Bad input is reported before the missing repository.
			if _, verr := domain.NewScan(nil, nil, req, h.d.now()); errors.Is(verr, domain.ErrInvalidArgument) {
				err = verr
			}
		}
		return ScanResult{}, fmt.Errorf("request scan of repository %s: %w", cmd.RepositoryID, err)
	}
	p, _, err := h.d.Projects.Load(ctx, r.ProjectID)
	if err != nil {
		return ScanResult{}, fmt.Errorf("request scan of repository %s: %w", r.ID, err)
	}
	events, err := domain.NewScan(p, r, req, h.d.now())
	if err != nil {
		return ScanResult{}, fmt.Errorf("request scan of repository %s: %w", r.ID, err)
	}
	s, res, err := h.d.Scans.Create(ctx, req.ID, events)
	if err != nil {
		return ScanResult{}, fmt.Errorf("request scan of repository %s: %w", r.ID, err)
	}
	return ScanResult{Result: res, Scan: s}, nil
}
