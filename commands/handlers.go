package commands

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vega-sec/vega/domain"
)

// Defaults of Options.
const (
	// DefaultMaxScanAttempts is the number of claims a scan may have, the
	// first included, before the reaper fails it instead of requeueing it.
	DefaultMaxScanAttempts = 3
	// DefaultLeaseDuration is how long a claim or a renewal holds a scan.
	// A runner renews well within it (a third of it is a good period).
	DefaultLeaseDuration = 2 * time.Minute
)

// Options configures New. The zero value is valid: every field has a
// default.
type Options struct {
	// Clock returns the current time (default time.Now); events record it
	// in UTC.
	Clock func() time.Time
	// IDs returns a fresh ULID string for new aggregates, events and
	// commands (default ulid.Make). It must be safe for concurrent use.
	IDs func() string
	// Logger receives one line per command (see WithLogging); nil discards.
	Logger *slog.Logger
	// Metrics registers the command metrics (see NewMetrics); nil: none.
	Metrics prometheus.Registerer
	// SourcePolicy relaxes git URL validation (AllowHTTP for tests and
	// local use).
	SourcePolicy domain.SourcePolicy
	// MaxScanAttempts is the number of claims a scan may have before the
	// reaper fails it (0: DefaultMaxScanAttempts).
	MaxScanAttempts int
	// LeaseDuration is how long a claim or renewal holds a scan (0:
	// DefaultLeaseDuration).
	LeaseDuration time.Duration
}

// Validate reports an option with a value out of range.
func (o Options) Validate() error {
	switch {
	case o.MaxScanAttempts < 0:
		return fmt.Errorf("commands options: max scan attempts %d is negative", o.MaxScanAttempts)
	case o.LeaseDuration < 0:
		return fmt.Errorf("commands options: lease duration %v is negative", o.LeaseDuration)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.IDs == nil {
		o.IDs = func() string { return ulid.Make().String() }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxScanAttempts == 0 {
		o.MaxScanAttempts = DefaultMaxScanAttempts
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	return o
}

// Streams holds one Repository per aggregate, for readers that fold
// aggregates the way the command side does (audit replay, process
// managers).
type Streams struct {
	Projects     *Repository[*domain.Project]
	Repositories *Repository[*domain.Repository]
	Scans        *Repository[*domain.Scan]
	Issues       *Repository[*domain.Issue]
	Access       *Repository[*domain.Access]
}

// Handlers holds one Handler per command. Every handler is wrapped in the
// same decorators (see New). Handlers are safe for concurrent use.
type Handlers struct {
	// Projects and members.
	CreateProject  Handler[CreateProject, ProjectResult]
	RenameProject  Handler[RenameProject, ProjectResult]
	ArchiveProject Handler[ArchiveProject, ProjectResult]
	GrantMember    Handler[GrantMember, ProjectResult]
	RevokeMember   Handler[RevokeMember, ProjectResult]

	// Repositories, snapshots and threat profiles.
	AddRepository          Handler[AddRepository, RepositoryResult]
	RemoveRepository       Handler[RemoveRepository, RepositoryResult]
	RequestGitSnapshot     Handler[RequestGitSnapshot, SnapshotResult]
	RecordSnapshotCaptured Handler[RecordSnapshotCaptured, SnapshotResult]
	RecordSnapshotFailed   Handler[RecordSnapshotFailed, SnapshotResult]
	DefineThreatProfile    Handler[DefineThreatProfile, ThreatProfileResult]

	// Scans.
	RequestScan    Handler[RequestScan, ScanResult]
	ClaimScan      Handler[ClaimScan, LeaseResult]
	RenewLease     Handler[RenewLease, LeaseResult]
	LaunchRunner   Handler[LaunchRunner, ScanResult]
	StartScan      Handler[StartScan, ScanResult]
	ProgressScan   Handler[ProgressScan, ScanResult]
	RecordFindings Handler[RecordFindings, ScanResult]
	RecordLLMUsage Handler[RecordLLMUsage, ScanResult]
	ExceedBudget   Handler[ExceedBudget, ScanResult]
	RequestCancel  Handler[RequestCancel, ScanResult]
	CancelScan     Handler[CancelScan, ScanResult]
	CompleteScan   Handler[CompleteScan, ScanResult]
	FailScan       Handler[FailScan, ScanResult]
	TimeOutScan    Handler[TimeOutScan, ScanResult]
	RequeueScan    Handler[RequeueScan, ScanResult]
	ReapScan       Handler[ReapScan, ReapResult]

	// Issues.
	TriageIssue Handler[TriageIssue, IssueResult]

	// Access tokens.
	IssueToken  Handler[IssueToken, IssueTokenResult]
	RevokeToken Handler[RevokeToken, TokenResult]

	// Streams gives the repositories the handlers use.
	Streams Streams
}

// deps is what every command handler shares.
type deps struct {
	clock       func() time.Time
	ids         func() string
	policy      domain.SourcePolicy
	maxAttempts int
	lease       time.Duration
	Streams
}

// now returns the current time in UTC, as events record it.
func (d *deps) now() time.Time { return d.clock().UTC() }

// idOr returns id, or a fresh ULID when id is empty.
func (d *deps) idOr(id string) string {
	if id == "" {
		return d.ids()
	}
	return id
}

// New returns the command handlers over store, each wrapped, outermost
// first, in: identity (a command ID that fills the context Request's empty
// correlation and causation IDs), WithLogging (one log line, a counter and
// a histogram per command), the actor check (a command without an actor is
// an *domain.InvalidArgumentError for "actor"), and WithRetry (a fresh run
// on eventstore.ErrConcurrency). It fails for invalid Options or when the
// metrics cannot be registered.
func New(store Store, opts Options) (*Handlers, error) {
	if store == nil {
		return nil, fmt.Errorf("new command handlers: store is required")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	codec, err := NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("new command handlers: %w", err)
	}
	m, err := NewMetrics(opts.Metrics)
	if err != nil {
		return nil, fmt.Errorf("new command handlers: %w", err)
	}
	d := &deps{
		clock: opts.Clock, ids: opts.IDs, policy: opts.SourcePolicy, maxAttempts: opts.MaxScanAttempts, lease: opts.LeaseDuration,
		Streams: Streams{
			Projects:     NewRepository(store, codec, opts.IDs, CategoryProject, "project_id", domain.FoldProject),
			Repositories: NewRepository(store, codec, opts.IDs, CategoryRepository, "repository_id", domain.FoldRepository),
			Scans:        NewRepository(store, codec, opts.IDs, CategoryScan, "scan_id", domain.FoldScan),
			Issues:       NewRepository(store, codec, opts.IDs, CategoryIssue, "issue_id", domain.FoldIssue),
			Access:       NewRepository(store, codec, opts.IDs, CategoryAccess, "principal", domain.FoldAccess),
		},
	}
	log := opts.Logger
	return &Handlers{
		CreateProject:  decorate("CreateProject", Handler[CreateProject, ProjectResult](createProjectHandler{d}), d.ids, log, m),
		RenameProject:  decorate("RenameProject", Handler[RenameProject, ProjectResult](renameProjectHandler{d}), d.ids, log, m),
		ArchiveProject: decorate("ArchiveProject", Handler[ArchiveProject, ProjectResult](archiveProjectHandler{d}), d.ids, log, m),
		GrantMember:    decorate("GrantMember", Handler[GrantMember, ProjectResult](grantMemberHandler{d}), d.ids, log, m),
		RevokeMember:   decorate("RevokeMember", Handler[RevokeMember, ProjectResult](revokeMemberHandler{d}), d.ids, log, m),

		AddRepository:          decorate("AddRepository", Handler[AddRepository, RepositoryResult](addRepositoryHandler{d}), d.ids, log, m),
		RemoveRepository:       decorate("RemoveRepository", Handler[RemoveRepository, RepositoryResult](removeRepositoryHandler{d}), d.ids, log, m),
		RequestGitSnapshot:     decorate("RequestGitSnapshot", Handler[RequestGitSnapshot, SnapshotResult](requestGitSnapshotHandler{d}), d.ids, log, m),
		RecordSnapshotCaptured: decorate("RecordSnapshotCaptured", Handler[RecordSnapshotCaptured, SnapshotResult](recordSnapshotCapturedHandler{d}), d.ids, log, m),
		RecordSnapshotFailed:   decorate("RecordSnapshotFailed", Handler[RecordSnapshotFailed, SnapshotResult](recordSnapshotFailedHandler{d}), d.ids, log, m),
		DefineThreatProfile:    decorate("DefineThreatProfile", Handler[DefineThreatProfile, ThreatProfileResult](defineThreatProfileHandler{d}), d.ids, log, m),

		RequestScan:    decorate("RequestScan", Handler[RequestScan, ScanResult](requestScanHandler{d}), d.ids, log, m),
		ClaimScan:      decorate("ClaimScan", Handler[ClaimScan, LeaseResult](claimScanHandler{d}), d.ids, log, m),
		RenewLease:     decorate("RenewLease", Handler[RenewLease, LeaseResult](renewLeaseHandler{d}), d.ids, log, m),
		LaunchRunner:   decorate("LaunchRunner", Handler[LaunchRunner, ScanResult](launchRunnerHandler{d}), d.ids, log, m),
		StartScan:      decorate("StartScan", Handler[StartScan, ScanResult](startScanHandler{d}), d.ids, log, m),
		ProgressScan:   decorate("ProgressScan", Handler[ProgressScan, ScanResult](progressScanHandler{d}), d.ids, log, m),
		RecordFindings: decorate("RecordFindings", Handler[RecordFindings, ScanResult](recordFindingsHandler{d}), d.ids, log, m),
		RecordLLMUsage: decorate("RecordLLMUsage", Handler[RecordLLMUsage, ScanResult](recordLLMUsageHandler{d}), d.ids, log, m),
		ExceedBudget:   decorate("ExceedBudget", Handler[ExceedBudget, ScanResult](exceedBudgetHandler{d}), d.ids, log, m),
		RequestCancel:  decorate("RequestCancel", Handler[RequestCancel, ScanResult](requestCancelHandler{d}), d.ids, log, m),
		CancelScan:     decorate("CancelScan", Handler[CancelScan, ScanResult](cancelScanHandler{d}), d.ids, log, m),
		CompleteScan:   decorate("CompleteScan", Handler[CompleteScan, ScanResult](completeScanHandler{d}), d.ids, log, m),
		FailScan:       decorate("FailScan", Handler[FailScan, ScanResult](failScanHandler{d}), d.ids, log, m),
		TimeOutScan:    decorate("TimeOutScan", Handler[TimeOutScan, ScanResult](timeOutScanHandler{d}), d.ids, log, m),
		RequeueScan:    decorate("RequeueScan", Handler[RequeueScan, ScanResult](requeueScanHandler{d}), d.ids, log, m),
		ReapScan:       decorate("ReapScan", Handler[ReapScan, ReapResult](reapScanHandler{d}), d.ids, log, m),

		TriageIssue: decorate("TriageIssue", Handler[TriageIssue, IssueResult](triageIssueHandler{d}), d.ids, log, m),

		IssueToken:  decorate("IssueToken", Handler[IssueToken, IssueTokenResult](issueTokenHandler{d}), d.ids, log, m),
		RevokeToken: decorate("RevokeToken", Handler[RevokeToken, TokenResult](revokeTokenHandler{d}), d.ids, log, m),

		Streams: d.Streams,
	}, nil
}

// update is the shape of most commands: load the aggregate id from repo,
// let decide turn it into events at now, and save them at the loaded
// version. Errors are wrapped with verb and id; their kinds are kept.
func update[A Aggregate](ctx context.Context, d *deps, repo *Repository[A], verb, id string,
	decide func(agg A, now time.Time) ([]domain.Event, error)) (A, Result, error) {
	var zero A
	agg, version, err := repo.Load(ctx, id)
	if err != nil {
		return zero, Result{}, fmt.Errorf("%s: %w", verb, err) // Load's error names the aggregate
	}
	events, err := decide(agg, d.now())
	if err != nil {
		return zero, Result{}, fmt.Errorf("%s %s: %w", verb, id, err)
	}
	res, err := repo.Save(ctx, id, agg, version, events)
	if err != nil {
		return zero, Result{}, fmt.Errorf("%s %s: %w", verb, id, err)
	}
	return agg, res, nil
}

// Result types shared by several commands.

// ProjectResult is the result of the project and member commands: what was
// written and the project as it is after the command.
type ProjectResult struct {
	Result
	Project *domain.Project
}

// RepositoryResult is the result of AddRepository and RemoveRepository.
type RepositoryResult struct {
	Result
	Repository *domain.Repository
}

// SnapshotResult is the result of the snapshot commands: the snapshot as
// it is after the command.
type SnapshotResult struct {
	Result
	RepositoryID string
	Snapshot     domain.Snapshot
}

// ThreatProfileResult is the result of DefineThreatProfile: the profile as
// normalized and numbered.
type ThreatProfileResult struct {
	Result
	RepositoryID string
	Profile      domain.ThreatProfile
}

// ScanResult is the result of the scan commands: the scan as it is after
// the command (State, Fence, Counts, LLMUsage, BudgetExceeded, …).
type ScanResult struct {
	Result
	Scan *domain.Scan
}

// LeaseResult is the result of ClaimScan and RenewLease: the fencing token
// the runner must present on every later write, and the lease's end.
type LeaseResult struct {
	ScanResult
	Fence      uint64
	LeaseUntil time.Time
}

// IssueResult is the result of TriageIssue.
type IssueResult struct {
	Result
	Issue *domain.Issue
}

// TokenResult is the result of RevokeToken: the token without its secret.
type TokenResult struct {
	Result
	Token domain.Token
}

// activeProject loads the project id and returns nil when it exists and is
// not archived: an archived project takes no new snapshots, profiles or
// scans (domain.Project.EnsureActive). It only reads the project: a
// concurrent archive may land after the check, as with any read of another
// aggregate.
func (d *deps) activeProject(ctx context.Context, id string) (*domain.Project, error) {
	p, _, err := d.Projects.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := p.EnsureActive(); err != nil {
		return nil, err
	}
	return p, nil
}
