package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// ProgressScan records the runner's phase and overall progress (0–100).
type ProgressScan struct {
	ScanID   string
	Fence    uint64
	Phase    string
	Progress int
}

type progressScanHandler struct{ d *deps }

// Handle decides domain.Scan.ReportProgress. It returns an
// *domain.InvalidArgumentError for "phase" or "progress",
// domain.ErrNotFound for an unknown scan, domain.ErrConflict unless
// running, and a *domain.FenceError.
func (h progressScanHandler) Handle(ctx context.Context, cmd ProgressScan) (ScanResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "record progress of scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) {
			return s.ReportProgress(cmd.Fence, cmd.Phase, cmd.Progress, now)
		})
	return ScanResult{Result: res, Scan: s}, err
}
