package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// MaxFindingsPerBatch is the most findings one RecordFindings may carry:
// they are appended in one call, which the store caps.
const MaxFindingsPerBatch = eventstore.MaxAppendEvents

// RecordFindings records a batch of findings of the current attempt in one
// append: all of them or none.
type RecordFindings struct {
	ScanID   string
	Fence    uint64
	Findings []domain.Finding // each with an empty ID gets a fresh ULID
}

type recordFindingsHandler struct{ d *deps }

// Handle decides domain.Scan.RecordFinding for each finding in order,
// against the scan as the earlier findings of the batch leave it (so a
// duplicate within the batch is refused too), and appends every
// FindingRecorded in one call. It returns an *domain.InvalidArgumentError
// for "findings" (empty, or more than MaxFindingsPerBatch) or
// "findings[i].<field>", domain.ErrNotFound for an unknown scan,
// domain.ErrConflict unless running or for a finding ID or fingerprint
// already recorded, and a *domain.FenceError.
func (h recordFindingsHandler) Handle(ctx context.Context, cmd RecordFindings) (ScanResult, error) {
	switch n := len(cmd.Findings); {
	case n == 0:
		return ScanResult{}, &domain.InvalidArgumentError{Field: "findings", Reason: "at least one finding is required"}
	case n > MaxFindingsPerBatch:
		return ScanResult{}, &domain.InvalidArgumentError{Field: "findings", Reason: fmt.Sprintf("%d findings, more than %d in one batch", n, MaxFindingsPerBatch)}
	}
	s, version, err := h.d.Scans.Load(ctx, cmd.ScanID)
	if err != nil {
		return ScanResult{}, fmt.Errorf("record findings of scan %s: %w", cmd.ScanID, err)
	}
	now := h.d.now()
	events := make([]domain.Event, 0, len(cmd.Findings))
	for i, f := range cmd.Findings {
		f.ID = h.d.idOr(f.ID)
		decided, err := s.RecordFinding(cmd.Fence, f, now)
		if err != nil {
			return ScanResult{}, fmt.Errorf("record findings of scan %s: finding %d: %w", cmd.ScanID, i, inField(fmt.Sprintf("findings[%d]", i), err))
		}
		for _, e := range decided {
			if err := s.Apply(e); err != nil {
				return ScanResult{}, fmt.Errorf("record findings of scan %s: %w", cmd.ScanID, err)
			}
		}
		events = append(events, decided...)
	}
	res, err := h.d.Scans.Append(ctx, cmd.ScanID, version, events)
	if err != nil {
		return ScanResult{}, fmt.Errorf("record findings of scan %s: %w", cmd.ScanID, err)
	}
	return ScanResult{Result: res, Scan: s}, nil
}

// inField moves an *domain.InvalidArgumentError under prefix ("findings[3]"
// + "." + its field); other errors are returned as they are.
func inField(prefix string, err error) error {
	var ia *domain.InvalidArgumentError
	if errors.As(err, &ia) {
		return &domain.InvalidArgumentError{Field: prefix + "." + ia.Field, Reason: ia.Reason}
	}
	return err
}
