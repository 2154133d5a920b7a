package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// RequeueScan returns a scan whose lease expired to requested, for another
// worker, within Options.MaxScanAttempts claims.
type RequeueScan struct {
	ScanID string
	Reason string // optional; default "lease expired"
}

type requeueScanHandler struct{ d *deps }

// Handle decides domain.Scan.Requeue with Options.MaxScanAttempts. It
// returns domain.ErrNotFound for an unknown scan, a *domain.TransitionError
// unless claimed or running, and domain.ErrConflict while the lease holds,
// when attempts are used up, or when a cancel was requested.
func (h requeueScanHandler) Handle(ctx context.Context, cmd RequeueScan) (ScanResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "requeue scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) {
			return s.Requeue(h.d.maxAttempts, cmd.Reason, now)
		})
	return ScanResult{Result: res, Scan: s}, err
}
