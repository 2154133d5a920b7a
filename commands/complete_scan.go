package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// CompleteScan records that the runner finished: running to completed.
type CompleteScan struct {
	ScanID  string
	Fence   uint64
	Partial bool   // the scan did not cover everything its profile asked for
	Reason  string // why it is partial
}

type completeScanHandler struct{ d *deps }

// Handle decides domain.Scan.Complete (a scan whose budget was exceeded
// completes as partial whatever Partial says). It returns
// domain.ErrNotFound for an unknown scan, a *domain.TransitionError unless
// running, and a *domain.FenceError.
func (h completeScanHandler) Handle(ctx context.Context, cmd CompleteScan) (ScanResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "complete scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) {
			return s.Complete(cmd.Fence, cmd.Partial, cmd.Reason, now)
		})
	return ScanResult{Result: res, Scan: s}, err
}
