package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// RequestCancel is a person's request, on behalf of the request's actor, to
// cancel a scan. A requested scan is cancelled at once; a claimed or running
// one is asked to stop (its runner, or the reaper, records the cancellation).
type RequestCancel struct {
	ScanID string
	Reason string // optional
}

type requestCancelHandler struct{ d *deps }

// Handle decides domain.Scan.RequestCancel; a second request while one is
// pending appends nothing. The result's Scan.State is cancelled when the
// cancellation took effect at once. It returns an
// *domain.InvalidArgumentError for "reason", domain.ErrNotFound for an
// unknown scan, and a *domain.TransitionError (domain.ErrConflict) for a
// finished scan.
func (h requestCancelHandler) Handle(ctx context.Context, cmd RequestCancel) (ScanResult, error) {
	actor := RequestFromContext(ctx).Actor
	s, res, err := update(ctx, h.d, h.d.Scans, "request cancellation of scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) {
			return s.RequestCancel(actor, cmd.Reason, now)
		})
	return ScanResult{Result: res, Scan: s}, err
}
