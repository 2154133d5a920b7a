package commands

import (
	"context"
	"time"

	"github.com/vega-sec/vega/domain"
)

// ReapScan is the worker reaper's command for a scan whose runner may be
// lost: when its lease expired, it is cancelled (a cancel was requested),
// requeued (claims left under Options.MaxScanAttempts) or failed.
type ReapScan struct {
	ScanID string
}

// ReapAction says what ReapScan did.
type ReapAction string

// Reap actions.
const (
	ReapNone      ReapAction = "none" // the lease holds, or the scan is not claimed or running
	ReapRequeued  ReapAction = "requeued"
	ReapCancelled ReapAction = "cancelled"
	ReapFailed    ReapAction = "failed"
)

// ReapResult is the result of ReapScan.
type ReapResult struct {
	ScanResult
	Action ReapAction
}

type reapScanHandler struct{ d *deps }

// Handle decides domain.Scan.Reap with Options.MaxScanAttempts. It returns
// domain.ErrNotFound for an unknown scan; a scan with a live lease, or not
// claimed or running, is left alone (ReapNone, nothing appended).
func (h reapScanHandler) Handle(ctx context.Context, cmd ReapScan) (ReapResult, error) {
	action := ReapNone
	s, res, err := update(ctx, h.d, h.d.Scans, "reap scan", cmd.ScanID,
		func(s *domain.Scan, now time.Time) ([]domain.Event, error) {
			events, err := s.Reap(h.d.maxAttempts, now)
			for _, e := range events {
				switch e.(type) {
				case domain.ScanRequeued:
					action = ReapRequeued
				case domain.ScanCancelled:
					action = ReapCancelled
				case domain.ScanFailed:
					action = ReapFailed
				}
			}
			return events, err
		})
	if err != nil {
		return ReapResult{}, err
	}
	return ReapResult{ScanResult: ScanResult{Result: res, Scan: s}, Action: action}, nil
}
