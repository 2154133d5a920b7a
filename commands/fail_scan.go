package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// FailScan ends a scan as failed, by its runner (current Fence) or the
// control plane (domain.NoFence).
type FailScan struct {
	ScanID string
	Fence  uint64
	Reason string // kept up to domain.MaxReasonLength runes; no secrets
}

type failScanHandler struct{ d *deps }

// Handle decides domain.Scan.Fail. It returns domain.ErrNotFound for an
// unknown scan, a *domain.TransitionError unless requested, claimed or
// running, and a *domain.FenceError for a stale runner.
func (h failScanHandler) Handle(ctx context.Context, cmd FailScan) (ScanResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "fail scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) { return s.Fail(cmd.Fence, cmd.Reason, now) })
	return ScanResult{Result: res, Scan: s}, err
}
