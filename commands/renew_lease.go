package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// RenewLease extends the current claim of a scan by Options.LeaseDuration
// from now. The runner (or the worker for it) renews with its fence.
type RenewLease struct {
	ScanID string
	Fence  uint64
}

type renewLeaseHandler struct{ d *deps }

// Handle decides domain.Scan.RenewLease. It returns domain.ErrNotFound for
// an unknown scan, domain.ErrConflict unless the scan is claimed or running,
// and a *domain.FenceError (domain.ErrStaleFence) for a stale fence: the
// runner lost its claim and must stop.
func (h renewLeaseHandler) Handle(ctx context.Context, cmd RenewLease) (LeaseResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "renew lease of scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) {
			return s.RenewLease(cmd.Fence, now.Add(h.d.lease), now)
		})
	if err != nil {
		return LeaseResult{}, err
	}
	return LeaseResult{ScanResult: ScanResult{Result: res, Scan: s}, Fence: s.Fence, LeaseUntil: s.LeaseUntil}, nil
}
