package classify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// Finding is a scan's finding as the API shows it: the recorded finding
// with its scan, its issue, its diff and (where a view says so) its
// issue's triage.
type Finding struct {
	domain.Finding
	ScanID  string `json:"scan_id"`
	IssueID string `json:"issue_id"`
	Diff    string `json:"diff"`             // new, unchanged or reopened
	Triage  string `json:"triage,omitempty"` // the issue's effective triage
}

// DiffView is the API's scan diff: the findings the scan opened and
// reopened issues for, the fixed issues' last findings, and how many
// findings were unchanged, against BaseScanID ("" for a first scan).
type DiffView struct {
	BaseScanID string    `json:"base_scan_id"`
	Stale      bool      `json:"stale"`
	New        []Finding `json:"new"`
	Reopened   []Finding `json:"reopened"`
	Fixed      []Finding `json:"fixed"`
	Unchanged  int       `json:"unchanged"`
}

// Reader computes views of classified scans from their events: no read
// model is involved. It is safe for concurrent use.
type Reader struct {
	store   eventstore.StreamReader
	codec   *eventstore.Registry
	workers int
}

// NewReader returns a Reader over store.
func NewReader(store eventstore.StreamReader) (*Reader, error) {
	if store == nil {
		return nil, errors.New("new classification reader: store is required")
	}
	codec, err := commands.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("new classification reader: %w", err)
	}
	return &Reader{store: store, codec: codec, workers: DefaultConcurrency}, nil
}

// Scan returns the scan scanID as its stream folds, classification
// included. It returns an *domain.InvalidArgumentError for a malformed ID
// and domain.ErrNotFound for an unknown scan.
func (r *Reader) Scan(ctx context.Context, scanID string) (*domain.Scan, error) {
	return load(ctx, r, commands.CategoryScan, "scan_id", scanID, domain.FoldScan)
}

func (r *Reader) issue(ctx context.Context, id string) (*domain.Issue, error) {
	return load(ctx, r, commands.CategoryIssue, "issue_id", id, domain.FoldIssue)
}

// load folds the stream <category>-<id>.
func load[A any](ctx context.Context, r *Reader, category, field, id string, fold func([]domain.Event) (A, error)) (A, error) {
	var zero A
	if err := domain.ValidateID(field, id); err != nil {
		return zero, err
	}
	stream := eventstore.NewStreamID(category, id)
	var recs []eventstore.RecordedEvent
	for from := int64(1); ; {
		page, err := r.store.ReadStream(ctx, stream, from, commands.LoadPageSize)
		if err != nil {
			return zero, fmt.Errorf("load %s: %w", stream, err)
		}
		recs = append(recs, page...)
		from += int64(len(page))
		if len(page) < commands.LoadPageSize {
			break
		}
	}
	if len(recs) == 0 {
		return zero, fmt.Errorf("%s %s: %w", category, id, domain.ErrNotFound)
	}
	events, err := commands.DecodeEvents(r.codec, recs)
	if err != nil {
		return zero, fmt.Errorf("load %s: %w", stream, err)
	}
	agg, err := fold(events)
	if err != nil {
		return zero, fmt.Errorf("load %s: %w", stream, err)
	}
	return agg, nil
}

// Findings returns the scan and its findings, in recording order, each
// with its issue ID and diff (Triage is left empty: it needs one issue
// read per finding). Findings of a scan not classified yet, or one that
// did not complete, have an empty IssueID and Diff. It returns an
// *domain.InvalidArgumentError for a malformed ID and domain.ErrNotFound
// for an unknown scan.
func (r *Reader) Findings(ctx context.Context, scanID string) (*domain.Scan, []Finding, error) {
	s, err := r.Scan(ctx, scanID)
	if err != nil {
		return nil, nil, err
	}
	return s, classified(s), nil
}

func classified(s *domain.Scan) []Finding {
	out := make([]Finding, len(s.Findings))
	diff := func(string) string { return "" }
	if s.Classified() {
		diff = s.Classification.Diffs()
	}
	for i, f := range s.Findings {
		out[i] = Finding{Finding: f, ScanID: s.ID, Diff: diff(f.ID)}
		if out[i].Diff != "" {
			out[i].IssueID = domain.IssueID(s.RepositoryID, f.Fingerprint)
		}
	}
	return out
}

// Diff returns the scan diff of API.md (GET /scans/{id}/diff) for scan
// scanID, with each listed finding's triage as it reads at now (an
// accepted_risk past its expiry reads open). Cost: one read of the scan's
// stream, one issue read per new, reopened or fixed entry, and one read of
// each scan that last saw a fixed issue. It returns an
// *domain.InvalidArgumentError for a malformed ID, domain.ErrNotFound for
// an unknown scan, and an error matching ErrNotClassified and
// domain.ErrConflict for a scan that is not classified (not completed, or
// the classifier lags).
func (r *Reader) Diff(ctx context.Context, scanID string, now time.Time) (DiffView, error) {
	s, err := r.Scan(ctx, scanID)
	if err != nil {
		return DiffView{}, err
	}
	if !s.Classified() {
		return DiffView{}, fmt.Errorf("diff of scan %s (%s): %w (%w)", s.ID, s.State, ErrNotClassified, domain.ErrConflict)
	}
	c := s.Classification
	v := DiffView{BaseScanID: c.BaseScanID, Stale: c.Stale, New: []Finding{}, Reopened: []Finding{}, Fixed: []Finding{}}
	for _, f := range classified(s) {
		switch f.Diff {
		case domain.DiffNew:
			v.New = append(v.New, f)
		case domain.DiffReopened:
			v.Reopened = append(v.Reopened, f)
		default:
			v.Unchanged++
		}
	}
	issues := make(map[string]*domain.Issue, len(v.New)+len(v.Reopened)+len(c.Fixed))
	var ids []string
	for _, l := range [][]Finding{v.New, v.Reopened} {
		for _, f := range l {
			ids = append(ids, f.IssueID)
		}
	}
	ids = append(ids, c.Fixed...)
	var mu sync.Mutex
	err = each(ctx, r.workers, len(ids), func(ctx context.Context, i int) error {
		iss, err := r.issue(ctx, ids[i])
		if err != nil {
			return fmt.Errorf("diff of scan %s: %w", s.ID, err)
		}
		mu.Lock()
		issues[ids[i]] = iss
		mu.Unlock()
		return nil
	})
	if err != nil {
		return DiffView{}, err
	}
	for _, l := range [][]Finding{v.New, v.Reopened} {
		for i := range l {
			l[i].Triage = string(issues[l[i].IssueID].EffectiveTriage(now))
		}
	}
	scans := map[string]*domain.Scan{s.ID: s}
	for _, id := range c.Fixed {
		iss := issues[id]
		last, ok := scans[iss.LastSeenScanID]
		if !ok {
			if last, err = r.Scan(ctx, iss.LastSeenScanID); err != nil {
				return DiffView{}, fmt.Errorf("diff of scan %s: last sighting of issue %s: %w", s.ID, id, err)
			}
			scans[last.ID] = last
		}
		f, ok := last.Finding(iss.LastFindingID)
		if !ok {
			return DiffView{}, fmt.Errorf("diff of scan %s: issue %s: finding %s of scan %s: %w", s.ID, id, iss.LastFindingID, last.ID, domain.ErrNotFound)
		}
		diff := ""
		if last.Classified() {
			diff = last.Classification.Diffs()(f.ID)
		}
		v.Fixed = append(v.Fixed, Finding{Finding: f, ScanID: last.ID, IssueID: id, Diff: diff, Triage: string(iss.EffectiveTriage(now))})
	}
	return v, nil
}
