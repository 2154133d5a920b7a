package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// StartScan records that the runner began: claimed to running.
type StartScan struct {
	ScanID string
	Fence  uint64
}

type startScanHandler struct{ d *deps }

// Handle decides domain.Scan.Start. It returns domain.ErrNotFound for an
// unknown scan, a *domain.TransitionError unless claimed, and a
// *domain.FenceError.
func (h startScanHandler) Handle(ctx context.Context, cmd StartScan) (ScanResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "start scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) { return s.Start(cmd.Fence, now) })
	return ScanResult{Result: res, Scan: s}, err
}
