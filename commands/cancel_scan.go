package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// CancelScan ends a scan as cancelled: by its runner (current Fence)
// obeying a cancel request, or by the control plane (domain.NoFence).
type CancelScan struct {
	ScanID string
	Fence  uint64
	Reason string // optional; defaults to the pending request's
}

type cancelScanHandler struct{ d *deps }

// Handle decides domain.Scan.Cancel. It returns domain.ErrNotFound for an
// unknown scan, a *domain.TransitionError unless requested, claimed or
// running, and a *domain.FenceError for a stale runner.
func (h cancelScanHandler) Handle(ctx context.Context, cmd CancelScan) (ScanResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "cancel scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) {
			return s.Cancel(cmd.Fence, cmd.Reason, now)
		})
	return ScanResult{Result: res, Scan: s}, err
}
