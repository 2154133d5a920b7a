package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// RecordLLMUsage records LLM usage reported by the LLM proxy (which holds
// no fence). When the new total exhausts the scan's budget for the first
// time, ScanBudgetExceeded is appended with it, in the same call.
type RecordLLMUsage struct {
	ScanID string
	Model  string
	Usage  domain.LLMUsage
}

type recordLLMUsageHandler struct{ d *deps }

// Handle decides domain.Scan.RecordLLMUsage; the result's Scan tells
// whether the budget is now exceeded. It returns an
// *domain.InvalidArgumentError for "model" or "usage.…",
// domain.ErrNotFound for an unknown scan, and domain.ErrConflict unless
// claimed or running.
func (h recordLLMUsageHandler) Handle(ctx context.Context, cmd RecordLLMUsage) (ScanResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "record LLM usage of scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) {
			return s.RecordLLMUsage(cmd.Model, cmd.Usage, now)
		})
	return ScanResult{Result: res, Scan: s}, err
}
