package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// TimeOutScan ends a scan that ran past its deadline, by its runner
// (current Fence) or the control plane (domain.NoFence).
type TimeOutScan struct {
	ScanID string
	Fence  uint64
	Reason string // optional
}

type timeOutScanHandler struct{ d *deps }

// Handle decides domain.Scan.TimeOut. It returns domain.ErrNotFound for an
// unknown scan, a *domain.TransitionError unless claimed or running, and a
// *domain.FenceError for a stale runner.
func (h timeOutScanHandler) Handle(ctx context.Context, cmd TimeOutScan) (ScanResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "time out scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) {
			return s.TimeOut(cmd.Fence, cmd.Reason, now)
		})
	return ScanResult{Result: res, Scan: s}, err
}
