package httpapi

import (
	"context"
	"io"
	"time"

	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/projections"
	"github.com/vega-sec/vega/queries"
)

// Authenticator looks bearer tokens up by hash and says who is who in a
// project.
type Authenticator interface {
	// Authenticate returns the token with the given hash, or
	// domain.ErrNotFound.
	Authenticate(ctx context.Context, hash string) (queries.TokenAuth, error)
	// RoleOf returns principal's role in the project, or domain.ErrNotFound
	// when it is not a member (or the project does not exist).
	RoleOf(ctx context.Context, principal, projectID string) (domain.Role, error)
}

// Scoper resolves the project of an object, whoever asks, so that a write
// can be authorized (404 for strangers, 403 for a weak role) before it is
// attempted.
type Scoper interface {
	ProjectOfRepository(ctx context.Context, id string) (string, error)
	ProjectOfScan(ctx context.Context, id string) (string, error)
	ProjectOfIssue(ctx context.Context, id string) (string, error)
}

// ProjectReads are the reads of projects, members and tokens.
type ProjectReads interface {
	ListProjects(ctx context.Context, c queries.Caller, o queries.ListOptions) (queries.Page[queries.Project], error)
	Project(ctx context.Context, c queries.Caller, id string) (queries.Project, error)
	ListMembers(ctx context.Context, c queries.Caller, projectID string, o queries.ListOptions) (queries.Page[queries.Member], error)
	ListTokens(ctx context.Context, c queries.Caller, o queries.ListOptions) (queries.Page[queries.Token], error)
}

// RepositoryReads are the reads of repositories, snapshots and threat
// profiles.
type RepositoryReads interface {
	ListRepositories(ctx context.Context, c queries.Caller, projectID string, o queries.ListOptions) (queries.Page[queries.Repository], error)
	Repository(ctx context.Context, c queries.Caller, id string) (queries.Repository, error)
	ListSnapshots(ctx context.Context, c queries.Caller, repositoryID string, o queries.ListOptions) (queries.Page[queries.Snapshot], error)
	Snapshot(ctx context.Context, c queries.Caller, id string) (queries.Snapshot, error)
	ThreatProfile(ctx context.Context, c queries.Caller, repositoryID string) (queries.ThreatProfile, error)
}

// ScanReads are the reads of scans, findings, events, the activity feed
// and the dashboard.
type ScanReads interface {
	ListScans(ctx context.Context, c queries.Caller, repositoryID string, o queries.ListOptions) (queries.Page[queries.Scan], error)
	Scan(ctx context.Context, c queries.Caller, id string) (queries.Scan, error)
	ListFindings(ctx context.Context, c queries.Caller, scanID string, f queries.FindingFilter, o queries.ListOptions) (queries.Page[queries.Finding], error)
	ListScanEvents(ctx context.Context, c queries.Caller, scanID string, o queries.ListOptions) (queries.Page[queries.Event], error)
	ListActivity(ctx context.Context, c queries.Caller, o queries.ListOptions) (queries.Page[queries.Event], error)
	Dashboard(ctx context.Context, c queries.Caller) (queries.Dashboard, error)
}

// IssueReads are the reads of issues.
type IssueReads interface {
	ListIssues(ctx context.Context, c queries.Caller, repositoryID string, f queries.IssueFilter, o queries.ListOptions) (queries.Page[queries.Issue], error)
	Issue(ctx context.Context, c queries.Caller, id string) (queries.Issue, error)
}

// Queries is everything the API reads through the query side;
// *queries.Service is one.
type Queries interface {
	Authenticator
	Scoper
	ProjectReads
	RepositoryReads
	ScanReads
	IssueReads
}

var _ Queries = (*queries.Service)(nil)

// Events is what the API reads of the event store directly: a stream
// (audit replay and verification, SSE replay of a scan), the global order
// (SSE replay of the activity feed) and its head.
type Events interface {
	eventstore.StreamReader
	eventstore.AllReader
	Head(ctx context.Context) (eventstore.Position, error)
}

// Consistency is how the API waits for the read models after a command;
// *projections.Runner is one.
type Consistency interface {
	// WaitFor blocks until the read models reached pos or ctx ends.
	WaitFor(ctx context.Context, pos eventstore.Position) error
}

// ProjectionStatus reports the projections' progress for /readyz;
// *projections.Runner is one.
type ProjectionStatus interface {
	Status(ctx context.Context) ([]projections.Status, error)
}

var (
	_ Consistency      = (*projections.Runner)(nil)
	_ ProjectionStatus = (*projections.Runner)(nil)
)

// SnapshotUploader captures an uploaded archive as a snapshot of an
// archive repository; *snapshot.Service is one. Upload streams body (never
// holding it in memory), refusing more than maxBytes, and returns
// *snapshot.TooLargeError (413), *snapshot.UnsupportedMediaTypeError (415),
// *snapshot.InvalidArchiveError (400, field "archive"), an
// *domain.InvalidArgumentError for "source.kind" (a git repository: 400),
// domain.ErrNotFound and domain.ErrConflict (an archived project).
type SnapshotUploader interface {
	Upload(ctx context.Context, repositoryID, contentType string, body io.Reader, maxBytes int64) (commands.SnapshotResult, error)
}

// Classifications reads what the classifier decided of a scan, from the
// event store (no read model lags behind it); *classify.Reader is one.
// Diff returns an error matching classify.ErrNotClassified and
// domain.ErrConflict for a scan that is not classified (not completed yet,
// or the classifier lags); Findings returns the scan as its stream folds
// and its findings with their diffs ("" before classification). Both
// return domain.ErrNotFound for an unknown scan.
type Classifications interface {
	Diff(ctx context.Context, scanID string, now time.Time) (classify.DiffView, error)
	Findings(ctx context.Context, scanID string) (*domain.Scan, []classify.Finding, error)
}

// SARIFUploader makes an uploaded SARIF document the findings of a scan
// requested with the engine sarif-upload, and completes the scan;
// *sarif.Uploader is one. It returns *sarif.InvalidError (400),
// *sarif.TooLargeError (413), domain.ErrNotFound, and errors matching
// domain.ErrConflict (409) for a scan of other engines or not requested.
type SARIFUploader interface {
	ImportUpload(ctx context.Context, scanID string, body io.Reader, maxBytes int64) (sarif.UploadResult, error)
}

// RuleSource gives the builtin engine's rules, which SARIF exports
// describe in their driver's rules array; *builtin.Engine is one.
type RuleSource interface {
	Rules() []builtin.Rule
}

var (
	_ SnapshotUploader = (*snapshot.Service)(nil)
	_ Classifications  = (*classify.Reader)(nil)
	_ SARIFUploader    = (*sarif.Uploader)(nil)
	_ RuleSource       = (*builtin.Engine)(nil)
)

// CheckFunc reports whether a dependency answers (nil) or not.
type CheckFunc func(ctx context.Context) error

// Feed delivers every event of the store, in global order, from the moment
// Run starts, until ctx ends (Run then returns nil) or the feed fails. The
// Hub runs one Feed per API process and restarts it after a failure.
type Feed interface {
	Run(ctx context.Context, deliver func(eventstore.RecordedEvent)) error
}
