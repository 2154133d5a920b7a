package sarif

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// UploadWorkerID is the worker that claims a scan whose findings come from
// an uploaded SARIF document.
const UploadWorkerID = "api-upload"

// renewEvery is how many RecordFindings batches an upload records between
// lease renewals.
const renewEvery = 10

// Uploader records an uploaded SARIF document as the findings of a scan
// requested with exactly the engine domain.EngineSARIFUpload. It is safe
// for concurrent use; two uploads to one scan race on its claim and one of
// them gets a conflict.
type Uploader struct {
	h   *commands.Handlers
	im  *Importer
	log *slog.Logger
}

// NewUploader returns an Uploader that writes through h and parses with im,
// whose engine must be domain.EngineSARIFUpload. log nil discards.
func NewUploader(h *commands.Handlers, im *Importer, log *slog.Logger) (*Uploader, error) {
	switch {
	case h == nil:
		return nil, errors.New("new sarif uploader: handlers are required")
	case im == nil:
		return nil, errors.New("new sarif uploader: importer is required")
	case im.engine != domain.EngineSARIFUpload:
		return nil, fmt.Errorf("new sarif uploader: importer engine is %q, want %q", im.engine, domain.EngineSARIFUpload)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Uploader{h: h, im: im, log: log}, nil
}

// UploadResult says what an upload recorded.
type UploadResult struct {
	ScanID   string
	Findings int
	// Position is the global position of the scan's ScanCompleted, for
	// read-your-own-writes.
	Position eventstore.Position
}

// ImportUpload reads a SARIF 2.1.0 document of at most maxBytes (and at
// most the importer's MaxBytes) from body and makes its results the
// findings of scan scanID: it claims the scan as UploadWorkerID, starts
// it, records the findings in batches of commands.MaxFindingsPerBatch
// with engine sarif-upload, and completes it. The document is parsed and
// every finding validated before anything is written, so bad input
// changes nothing. The caller's context carries the request identity (the
// uploading principal is the actor of every event).
//
// Errors, for the HTTP layer: a *TooLargeError (ErrTooLarge, 413) for a
// body or document over a limit; an *InvalidError (ErrInvalid and
// domain.ErrInvalidArgument, 400) naming the reason; domain.ErrNotFound
// for an unknown scan; an error matching domain.ErrConflict (409) when the
// scan was not requested with exactly [sarif-upload] or is no longer
// requested (claimed by another upload, or finished). A failure after the
// claim leaves the scan claimed; the worker's reaper requeues it when the
// lease expires, and it then takes a new upload.
func (u *Uploader) ImportUpload(ctx context.Context, scanID string, body io.Reader, maxBytes int64) (UploadResult, error) {
	s, _, err := u.h.Streams.Scans.Load(ctx, scanID)
	if err != nil {
		return UploadResult{}, fmt.Errorf("upload sarif: %w", err)
	}
	if !slices.Equal(s.Engines, []string{domain.EngineSARIFUpload}) {
		return UploadResult{}, fmt.Errorf("upload sarif to scan %s: it was requested with engines %v, not [%s]: %w",
			s.ID, s.Engines, domain.EngineSARIFUpload, domain.ErrConflict)
	}
	if s.State != domain.ScanStateRequested {
		return UploadResult{}, fmt.Errorf("upload sarif to scan %s: it is %s; only a requested scan takes an upload: %w",
			s.ID, s.State, domain.ErrConflict)
	}
	limit := u.im.limits.MaxBytes
	if maxBytes > 0 && maxBytes < limit {
		limit = maxBytes
	}
	doc, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return UploadResult{}, fmt.Errorf("upload sarif to scan %s: read body: %w", s.ID, err)
	}
	if int64(len(doc)) > limit {
		return UploadResult{}, &TooLargeError{Limit: "bytes", Max: limit}
	}
	found, err := u.im.Import(doc, "")
	if err != nil {
		return UploadResult{}, err
	}
	findings := make([]domain.Finding, len(found))
	for i, f := range found {
		findings[i] = toDomain(f, ulid.Make().String())
		if err := findings[i].Validate(); err != nil {
			return UploadResult{}, invalidf("finding %d (rule %.60q): %s", i, f.RuleID, err.Error())
		}
	}

	claim, err := u.h.ClaimScan.Handle(ctx, commands.ClaimScan{ScanID: s.ID, WorkerID: UploadWorkerID})
	if err != nil {
		return UploadResult{}, fmt.Errorf("upload sarif to scan %s: %w", s.ID, err)
	}
	fence := claim.Fence
	if _, err := u.h.StartScan.Handle(ctx, commands.StartScan{ScanID: s.ID, Fence: fence}); err != nil {
		return UploadResult{}, fmt.Errorf("upload sarif to scan %s: %w", s.ID, err)
	}
	for b, start := 0, 0; start < len(findings); b, start = b+1, start+commands.MaxFindingsPerBatch {
		if b > 0 && b%renewEvery == 0 {
			if _, err := u.h.RenewLease.Handle(ctx, commands.RenewLease{ScanID: s.ID, Fence: fence}); err != nil {
				return UploadResult{}, fmt.Errorf("upload sarif to scan %s: %w", s.ID, err)
			}
		}
		batch := findings[start:min(len(findings), start+commands.MaxFindingsPerBatch)]
		if _, err := u.h.RecordFindings.Handle(ctx, commands.RecordFindings{ScanID: s.ID, Fence: fence, Findings: batch}); err != nil {
			return UploadResult{}, fmt.Errorf("upload sarif to scan %s: %w", s.ID, err)
		}
	}
	done, err := u.h.CompleteScan.Handle(ctx, commands.CompleteScan{ScanID: s.ID, Fence: fence})
	if err != nil {
		return UploadResult{}, fmt.Errorf("upload sarif to scan %s: %w", s.ID, err)
	}
	u.log.LogAttrs(ctx, slog.LevelInfo, "sarif uploaded", slog.String("scan_id", s.ID), slog.Int("findings", len(findings)))
	return UploadResult{ScanID: s.ID, Findings: len(findings), Position: done.Position}, nil
}

// toDomain turns an engine finding into a domain finding with the given
// ID. Match is left behind.
func toDomain(f engine.Finding, id string) domain.Finding {
	return domain.Finding{ID: id, Fingerprint: f.Fingerprint, RuleID: f.RuleID, Title: f.Title,
		Severity: domain.Severity(f.Severity), CWE: f.CWE, Engine: f.Engine, File: f.File, StartLine: f.StartLine,
		EndLine: f.EndLine, Snippet: f.Snippet, Message: f.Message, Remediation: f.Remediation, Confidence: f.Confidence}
}
