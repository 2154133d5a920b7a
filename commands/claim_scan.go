package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// ClaimScan claims a requested scan for a worker, for Options.LeaseDuration.
// Claims race through the scan stream's expected version: of two workers,
// one wins and the other gets a conflict.
type ClaimScan struct {
	ScanID   string
	WorkerID string
}

type claimScanHandler struct{ d *deps }

// Handle decides domain.Scan.Claim. The result carries the new fencing
// token (the attempt number) and the lease's end. It returns an
// *domain.InvalidArgumentError for "scan_id" or "worker_id",
// domain.ErrNotFound for an unknown scan, and a *domain.TransitionError
// (domain.ErrConflict) unless the scan is requested.
func (h claimScanHandler) Handle(ctx context.Context, cmd ClaimScan) (LeaseResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "claim scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) {
			return s.Claim(cmd.WorkerID, now.Add(h.d.lease), now)
		})
	if err != nil {
		return LeaseResult{}, err
	}
	return LeaseResult{ScanResult: ScanResult{Result: res, Scan: s}, Fence: s.Fence, LeaseUntil: s.LeaseUntil}, nil
}
