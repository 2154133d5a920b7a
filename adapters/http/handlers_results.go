package httpapi

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/queries"
)

// SARIFMediaType is the media type of SARIF documents, served by GET
// /scans/{id}/sarif and accepted (with application/json) by POST.
const SARIFMediaType = "application/sarif+json"

// diffResponse is GET /scans/{id}/diff of API.md.
type diffResponse struct {
	BaseScanID string            `json:"base_scan_id"`
	New        []queries.Finding `json:"new"`
	Reopened   []queries.Finding `json:"reopened"`
	Fixed      []queries.Finding `json:"fixed"`
	Unchanged  int               `json:"unchanged"`
}

// findingOf is a classified finding in the shape of GET
// /scans/{id}/findings' items.
func findingOf(f classify.Finding) queries.Finding {
	return queries.Finding{ID: f.ID, ScanID: f.ScanID, IssueID: f.IssueID, Fingerprint: f.Fingerprint, RuleID: f.RuleID,
		Title: f.Title, Severity: f.Severity, CWE: f.CWE, Engine: f.Engine, File: f.File, StartLine: f.StartLine,
		EndLine: f.EndLine, Snippet: f.Snippet, Message: f.Message, Remediation: f.Remediation, Confidence: f.Confidence,
		Diff: f.Diff, Triage: f.Triage}
}

func findingsOf(fs []classify.Finding) []queries.Finding {
	out := make([]queries.Finding, len(fs))
	for i, f := range fs {
		out[i] = findingOf(f)
	}
	return out
}

// scanDiff serves GET /scans/{id}/diff (viewer): the classifier's decision
// for the scan, read from the event store. A scan that is not classified
// yet — still running, ended without completing, or completed moments ago
// with the classifier behind — is a 409 saying which.
func (s *Server) scanDiff(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "scan_id")
	sc, err := s.q.Scan(r.Context(), p.caller(), id)
	if err != nil {
		return hideNotFound(err, "scan")
	}
	v, err := s.cls.Diff(r.Context(), id, s.now())
	switch {
	case errors.Is(err, classify.ErrNotClassified):
		return notClassified(id, sc.Status)
	case err != nil:
		return hideNotFound(err, "scan")
	}
	writeJSON(w, http.StatusOK, diffResponse{BaseScanID: v.BaseScanID, New: findingsOf(v.New), Reopened: findingsOf(v.Reopened),
		Fixed: findingsOf(v.Fixed), Unchanged: v.Unchanged})
	return nil
}

// notClassified is the 409 of a diff asked too early (or of a scan that
// will never have one).
func notClassified(scanID string, status domain.ScanState) error {
	var msg string
	switch status {
	case domain.ScanStateCompleted:
		msg = fmt.Sprintf("scan %s completed but is not classified yet; its diff follows shortly, retry", scanID)
	case domain.ScanStateFailed, domain.ScanStateCancelled, domain.ScanStateTimedOut:
		msg = fmt.Sprintf("scan %s is %s: only a completed scan has a diff", scanID, status)
	default:
		msg = fmt.Sprintf("scan %s is %s: its diff exists once it has completed and been classified", scanID, status)
	}
	return errorf(domain.ErrConflict, msg)
}

// scanSARIF serves GET /scans/{id}/sarif (viewer): the scan's findings, in
// recording order, as SARIF 2.1.0 with the builtin rules' descriptions and,
// once the scan is classified, each result's baselineState. A scan in any
// state exports what it recorded so far.
func (s *Server) scanSARIF(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "scan_id")
	if _, err := s.q.Scan(r.Context(), p.caller(), id); err != nil {
		return hideNotFound(err, "scan")
	}
	sc, found, err := s.cls.Findings(r.Context(), id)
	if err != nil {
		return hideNotFound(err, "scan")
	}
	fs := make([]sarif.Finding, len(found))
	for i, f := range found {
		fs[i] = sarif.Finding{Finding: f.Finding, Diff: f.Diff}
	}
	doc, err := sarif.Export(sc, fs, s.rules, sarif.ExportOptions{ToolVersion: s.cfg.Version})
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", SARIFMediaType)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(doc, '\n'))
	return nil
}

// uploadSARIF serves POST /scans/{id}/sarif (editor): a SARIF 2.1.0
// document (application/sarif+json or application/json) of at most
// MaxSARIFBytes becomes the findings of a scan requested with exactly the
// engine sarif-upload, and the scan completes: 202 with the scan. A scan
// of other engines, or one no longer requested, is a 409.
func (s *Server) uploadSARIF(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "scan_id")
	if err := s.authorizeScan(r, p, id, domain.RoleEditor); err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != SARIFMediaType && mt != "application/json" {
		return errorf(ErrUnsupportedMediaType, "the body must be a SARIF document: "+SARIFMediaType+" or application/json")
	}
	if r.ContentLength > MaxSARIFBytes {
		return errorf(ErrPayloadTooLarge, fmt.Sprintf("the SARIF document is larger than %d bytes", MaxSARIFBytes))
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.UploadTimeout))
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	res, err := s.sarifs.ImportUpload(commandContext(r, p), id, r.Body, MaxSARIFBytes)
	if err != nil {
		return hideNotFound(err, "scan")
	}
	s.consistent(r, commands.Result{Stream: eventstore.NewStreamID(commands.CategoryScan, id), Position: res.Position})
	out, err := s.q.Scan(r.Context(), p.caller(), id)
	return answer(w, http.StatusAccepted, out, hideNotFound(err, "scan"))
}
