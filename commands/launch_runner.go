package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// LaunchRunner records the runner job that executes the current attempt.
type LaunchRunner struct {
	ScanID   string
	Fence    uint64
	Launcher string // inprocess, process, ecs
	JobID    string // a PID, goroutine label or ECS task ARN
}

type launchRunnerHandler struct{ d *deps }

// Handle decides domain.Scan.LaunchRunner. It returns an
// *domain.InvalidArgumentError for "launcher" or "job_id",
// domain.ErrNotFound for an unknown scan, domain.ErrConflict unless claimed
// or running or when the attempt's runner is already recorded, and a
// *domain.FenceError.
func (h launchRunnerHandler) Handle(ctx context.Context, cmd LaunchRunner) (ScanResult, error) {
	s, res, err := update(ctx, h.d, h.d.Scans, "record runner of scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) {
			return s.LaunchRunner(cmd.Fence, cmd.Launcher, cmd.JobID, now)
		})
	return ScanResult{Result: res, Scan: s}, err
}
