package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// ExceedBudget records that the scan's LLM budget is exhausted on Limit
// ("max_tokens", "max_cost_usd" or "max_requests"), for when the proxy
// refuses a call that would pass it.
type ExceedBudget struct {
	ScanID string
	Limit  string
}

type exceedBudgetHandler struct{ d *deps }

// Handle decides domain.Scan.ExceedBudget; an already exceeded budget
// appends nothing. It returns an *domain.InvalidArgumentError for "limit",
// domain.ErrNotFound for an unknown scan, and domain.ErrConflict unless
// claimed or running.
func (h exceedBudgetHandler) Handle(ctx context.Context, cmd ExceedBudget) (ScanResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "record exceeded budget of scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) { return s.ExceedBudget(cmd.Limit, now) })
	return ScanResult{Result: res, Scan: s}, err
}
