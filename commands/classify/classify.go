package classify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// CategoryIssueIndex is the stream category of a repository's issue index:
// issueindex-<repository id>. It is part of stored stream IDs, so it never
// changes.
const CategoryIssueIndex = "issueindex"

// Actor is the principal the classifier's events are written on behalf of
// when the context names none.
const Actor = "system:classifier"

// DefaultConcurrency is how many issue streams one classification writes at
// once.
const DefaultConcurrency = 8

// ErrNotClassified reports that a completed scan has not been classified
// yet (the classifier lags). Errors carrying it also match
// domain.ErrConflict.
var ErrNotClassified = errors.New("scan not classified yet")

// Options configures New. The zero value is valid.
type Options struct {
	// Clock returns the current time (default time.Now); events record it
	// in UTC.
	Clock func() time.Time
	// IDs returns fresh ULIDs for event IDs (default ulid.Make); safe for
	// concurrent use.
	IDs func() string
	// Logger receives one line per classification; nil discards. Lines
	// name scans, issues and counts, never snippets.
	Logger *slog.Logger
	// Concurrency is how many issue streams one classification writes at
	// once (0: DefaultConcurrency).
	Concurrency int
}

// Result says what a classification did.
type Result struct {
	ScanID       string
	RepositoryID string
	BaseScanID   string
	Stale        bool
	// New, Reopened and Unchanged count the scan's findings by diff;
	// Fixed counts the issues it fixed.
	New, Reopened, Unchanged, Fixed int
	// Skipped is true when the scan ended without completing (failed,
	// cancelled, timed out): such a scan classifies and fixes nothing.
	Skipped bool
	// Position is the global position of the ScanClassified append; zero
	// when this call wrote it not (already classified, or skipped).
	Position eventstore.Position
}

// Classifier classifies completed scans. It is safe for concurrent use,
// within a process and across processes: classifications of one repository
// serialise on its index stream.
type Classifier struct {
	scans   *commands.Repository[*domain.Scan]
	issues  *commands.Repository[*domain.Issue]
	index   *commands.Repository[*domain.IssueIndex]
	clock   func() time.Time
	log     *slog.Logger
	workers int
	run     commands.Handler[string, Result]
}

// New returns a Classifier over store. It fails for a nil store or a
// negative concurrency.
func New(store commands.Store, opts Options) (*Classifier, error) {
	if store == nil {
		return nil, errors.New("new classifier: store is required")
	}
	if opts.Concurrency < 0 {
		return nil, fmt.Errorf("new classifier: concurrency %d is negative", opts.Concurrency)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.IDs == nil {
		opts.IDs = func() string { return ulid.Make().String() }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	codec, err := commands.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("new classifier: %w", err)
	}
	c := &Classifier{
		scans:   commands.NewRepository(store, codec, opts.IDs, commands.CategoryScan, "scan_id", domain.FoldScan),
		issues:  commands.NewRepository(store, codec, opts.IDs, commands.CategoryIssue, "issue_id", domain.FoldIssue),
		index:   commands.NewRepository(store, codec, opts.IDs, CategoryIssueIndex, "repository_id", domain.FoldIssueIndex),
		clock:   opts.Clock,
		log:     opts.Logger,
		workers: opts.Concurrency,
	}
	c.run = commands.WithRetry(commands.HandlerFunc[string, Result](c.classify))
	return c, nil
}

func (c *Classifier) now() time.Time { return c.clock().UTC() }

// withActor gives ctx the classifier's actor unless it names one.
func withActor(ctx context.Context) context.Context {
	if commands.RequestFromContext(ctx).Actor == "" {
		return commands.WithRequest(ctx, commands.Request{Actor: Actor})
	}
	return ctx
}

// Classify classifies the findings of scan scanID against its repository's
// issues (see the package documentation). It is idempotent: a scan already
// classified changes nothing and gets its recorded outcome back. A scan
// that ended without completing is skipped (Result.Skipped). It returns an
// *domain.InvalidArgumentError for a malformed ID, domain.ErrNotFound for
// an unknown scan, domain.ErrConflict for a scan that has not finished,
// and an error matching eventstore.ErrConcurrency when racing
// classifications of the repository kept it from its index for
// commands.MaxAttempts runs.
func (c *Classifier) Classify(ctx context.Context, scanID string) (Result, error) {
	return c.run.Handle(withActor(ctx), scanID)
}

// Handle is the event handler of the classifier: it classifies the scan of
// a ScanCompleted event, on behalf of Actor, with the event's correlation
// ID and the event as the cause. Other events are ignored.
func (c *Classifier) Handle(ctx context.Context, e eventstore.RecordedEvent) error {
	if e.Type != (domain.ScanCompleted{}).EventName() || e.StreamID.Category() != commands.CategoryScan {
		return nil
	}
	ctx = commands.WithRequest(ctx, commands.RequestFromEvent(Actor, e))
	res, err := c.Classify(ctx, e.StreamID.ID())
	if err != nil {
		return fmt.Errorf("classify %s: %w", e.StreamID, err)
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "scan classified", slog.String("scan_id", res.ScanID),
		slog.String("base_scan_id", res.BaseScanID), slog.Bool("stale", res.Stale), slog.Int("new", res.New),
		slog.Int("reopened", res.Reopened), slog.Int("unchanged", res.Unchanged), slog.Int("fixed", res.Fixed))
	return nil
}

// classify is one run of Classify; WithRetry starts it over on a
// concurrency conflict.
func (c *Classifier) classify(ctx context.Context, scanID string) (Result, error) {
	s, _, err := c.scans.Load(ctx, scanID)
	if err != nil {
		return Result{}, fmt.Errorf("classify scan: %w", err)
	}
	switch {
	case s.State.Terminal() && s.State != domain.ScanStateCompleted:
		return Result{ScanID: s.ID, RepositoryID: s.RepositoryID, Skipped: true}, nil
	case s.State != domain.ScanStateCompleted:
		return Result{}, fmt.Errorf("classify scan %s: it is %s, not finished: %w", s.ID, s.State, domain.ErrConflict)
	case s.Classified():
		return result(s, eventstore.Position{}), nil
	}
	x, version, err := c.loadIndex(ctx, s.RepositoryID)
	if err != nil {
		return Result{}, err
	}
	if t := x.Tail; t != nil && t.ScanID != s.ID {
		// A decision appended but not applied (its classifier stopped or
		// is still at work): apply it first, so decisions reach the
		// issues in index order.
		if err := c.finishTail(ctx, *t); err != nil {
			return Result{}, err
		}
	}
	if !x.Decided(s.ID) {
		events, err := x.Decide(s, c.now())
		if err != nil {
			return Result{}, fmt.Errorf("classify scan %s: %w", s.ID, err)
		}
		if _, err := c.index.Save(ctx, s.RepositoryID, x, int64(version), events); err != nil {
			return Result{}, fmt.Errorf("classify scan %s: %w", s.ID, err)
		}
	}
	if x.Tail == nil || x.Tail.ScanID != s.ID {
		// Decided earlier but not the tail: every classifier applies the
		// tail before it appends a decision, so the scan was classified
		// after we loaded it.
		if s, _, err = c.scans.Load(ctx, scanID); err == nil && s.Classified() {
			return result(s, eventstore.Position{}), nil
		}
		return Result{}, fmt.Errorf("classify scan %s: its decision is not the last of index %s and the scan is not classified: %w",
			s.ID, s.RepositoryID, domain.ErrInvalidHistory)
	}
	return c.apply(ctx, s, *x.Tail)
}

// loadIndex loads the index of repository id; a repository without one
// gets an empty index at version 0.
func (c *Classifier) loadIndex(ctx context.Context, id string) (*domain.IssueIndex, int, error) {
	x, version, err := c.index.Load(ctx, id)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return new(domain.IssueIndex), 0, nil
	case err != nil:
		return nil, 0, fmt.Errorf("classify: %w", err)
	}
	return x, int(version), nil
}

// finishTail applies decision d, of another scan, unless that scan is
// already classified.
func (c *Classifier) finishTail(ctx context.Context, d domain.IndexDecision) error {
	s, _, err := c.scans.Load(ctx, d.ScanID)
	if err != nil {
		return fmt.Errorf("finish classification of scan %s: %w", d.ScanID, err)
	}
	if s.Classified() {
		return nil
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "finishing an unapplied classification", slog.String("scan_id", s.ID))
	if _, err := c.apply(ctx, s, d); err != nil {
		return fmt.Errorf("finish classification of scan %s: %w", d.ScanID, err)
	}
	return nil
}

// apply writes decision d of the completed scan s to the issues, then
// records the outcome on the scan stream.
func (c *Classifier) apply(ctx context.Context, s *domain.Scan, d domain.IndexDecision) (Result, error) {
	diffs := make([]string, len(s.Findings))
	err := each(ctx, c.workers, len(s.Findings), func(ctx context.Context, i int) error {
		diff, err := c.sight(ctx, s, s.Findings[i], d.Stale)
		diffs[i] = diff
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("classify scan %s: %w", s.ID, err)
	}
	fixed := make([]bool, len(d.Fixed))
	err = each(ctx, c.workers, len(d.Fixed), func(ctx context.Context, i int) error {
		ok, err := c.fix(ctx, s, domain.IssueID(s.RepositoryID, d.Fixed[i]))
		fixed[i] = ok
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("classify scan %s: %w", s.ID, err)
	}
	cls := domain.Classification{BaseScanID: d.BaseScanID, Stale: d.Stale}
	for i, f := range s.Findings {
		switch diffs[i] {
		case domain.DiffNew:
			cls.New = append(cls.New, f.ID)
		case domain.DiffReopened:
			cls.Reopened = append(cls.Reopened, f.ID)
		}
	}
	for i, fp := range d.Fixed {
		if fixed[i] {
			cls.Fixed = append(cls.Fixed, domain.IssueID(s.RepositoryID, fp))
		}
	}
	return c.record(ctx, s.ID, cls)
}

// record appends the outcome to the scan stream, unless a concurrent
// helper already did.
func (c *Classifier) record(ctx context.Context, scanID string, cls domain.Classification) (Result, error) {
	for attempt := 1; ; attempt++ {
		s, version, err := c.scans.Load(ctx, scanID)
		if err != nil {
			return Result{}, fmt.Errorf("record classification: %w", err)
		}
		events, err := s.Classify(cls, c.now())
		if err != nil {
			return Result{}, fmt.Errorf("record classification of scan %s: %w", scanID, err)
		}
		res, err := c.scans.Save(ctx, scanID, s, version, events)
		if errors.Is(err, eventstore.ErrConcurrency) && attempt < commands.MaxAttempts {
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("record classification of scan %s: %w", scanID, err)
		}
		return result(s, res.Position), nil
	}
}

func result(s *domain.Scan, pos eventstore.Position) Result {
	c := s.Classification
	r := Result{ScanID: s.ID, RepositoryID: s.RepositoryID, BaseScanID: c.BaseScanID, Stale: c.Stale,
		New: len(c.New), Reopened: len(c.Reopened), Fixed: len(c.Fixed), Position: pos}
	r.Unchanged = len(s.Findings) - r.New - r.Reopened
	return r
}

// sight records that the completed scan s found f: it opens f's issue when
// there is none, and otherwise — unless the scan is stale — records a
// sighting of an open issue or reopens a fixed one. It returns f's diff as
// the issue's history shows it, so a repeated call reports what the first
// one did.
func (c *Classifier) sight(ctx context.Context, s *domain.Scan, f domain.Finding, stale bool) (string, error) {
	id := domain.IssueID(s.RepositoryID, f.Fingerprint)
	for attempt := 1; ; attempt++ {
		diff, err := c.sightOnce(ctx, s, f, id, stale)
		if err == nil || attempt == commands.MaxAttempts ||
			!errors.Is(err, eventstore.ErrConcurrency) && !errors.Is(err, errExists) {
			return diff, err
		}
	}
}

// errExists reports that an issue stream appeared between a load and a
// create: another classifier opened it.
var errExists = errors.New("issue exists")

func (c *Classifier) sightOnce(ctx context.Context, s *domain.Scan, f domain.Finding, id string, stale bool) (string, error) {
	now := c.now()
	iss, version, err := c.issues.Load(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		events, err := domain.OpenIssue(id, s, f.ID, now)
		if err != nil {
			return "", fmt.Errorf("open issue %s: %w", id, err)
		}
		_, _, err = c.issues.Create(ctx, id, events)
		if errors.Is(err, domain.ErrConflict) {
			return "", fmt.Errorf("open issue %s: %w", id, errExists)
		}
		if err != nil {
			return "", fmt.Errorf("open issue %s: %w", id, err)
		}
		return domain.DiffNew, nil
	}
	if err != nil {
		return "", fmt.Errorf("sight issue: %w", err)
	}
	switch {
	case iss.FirstSeenScanID == s.ID:
		return domain.DiffNew, nil
	case reopenedBy(iss, s.ID):
		return domain.DiffReopened, nil
	case stale:
		return domain.DiffUnchanged, nil
	case iss.State == domain.IssueStateFixed:
		events, err := iss.Reopen(s, f.ID, now)
		if err != nil {
			return "", fmt.Errorf("reopen issue %s: %w", id, err)
		}
		if _, err := c.issues.Save(ctx, id, iss, version, events); err != nil {
			return "", fmt.Errorf("reopen issue %s: %w", id, err)
		}
		return domain.DiffReopened, nil
	}
	events, err := iss.Seen(s, f.ID, now)
	if err != nil {
		return "", fmt.Errorf("see issue %s: %w", id, err)
	}
	if _, err := c.issues.Save(ctx, id, iss, version, events); err != nil {
		return "", fmt.Errorf("see issue %s: %w", id, err)
	}
	return domain.DiffUnchanged, nil
}

// reopenedBy reports whether scan scanID reopened the issue.
func reopenedBy(iss *domain.Issue, scanID string) bool {
	for _, h := range iss.History[1:] {
		if h.ScanID == scanID && h.State == domain.IssueStateOpen {
			return true
		}
	}
	return false
}

// fix fixes issue id by scan s when the issue still allows it, and reports
// whether s is the scan that fixed it.
func (c *Classifier) fix(ctx context.Context, s *domain.Scan, id string) (bool, error) {
	for attempt := 1; ; attempt++ {
		iss, version, err := c.issues.Load(ctx, id)
		if errors.Is(err, domain.ErrNotFound) {
			c.log.LogAttrs(ctx, slog.LevelWarn, "index names an issue that does not exist", slog.String("issue_id", id))
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("fix issue: %w", err)
		}
		if iss.State == domain.IssueStateFixed {
			return iss.FixedByScanID == s.ID, nil
		}
		events, err := iss.Fix(s, c.now())
		if errors.Is(err, domain.ErrConflict) {
			// The index and the issue disagree (the issue changed outside
			// classification): the issue's own rule wins.
			c.log.LogAttrs(ctx, slog.LevelWarn, "issue not fixed", slog.String("issue_id", id), slog.String("scan_id", s.ID),
				slog.String("reason", err.Error()))
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("fix issue %s: %w", id, err)
		}
		_, err = c.issues.Save(ctx, id, iss, version, events)
		if errors.Is(err, eventstore.ErrConcurrency) && attempt < commands.MaxAttempts {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("fix issue %s: %w", id, err)
		}
		return true, nil
	}
}

// each runs fn for 0 ≤ i < n on at most workers goroutines and returns the
// first error; after an error the remaining items are not started.
func each(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		once sync.Once
		ferr error
		next = make(chan int)
	)
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { ferr = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ferr == nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return ferr
}
