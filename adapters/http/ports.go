package httpapi

import (
	"context"

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

// Queries is everything the API reads through the query side;
// *queries.Service is one.
type Queries interface {
	Authenticator
	Scoper
	ProjectReads
	RepositoryReads
	ScanReads
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

// CheckFunc reports whether a dependency answers (nil) or not.
type CheckFunc func(ctx context.Context) error

// Feed delivers every event of the store, in global order, from the moment
// Run starts, until ctx ends (Run then returns nil) or the feed fails. The
// Hub runs one Feed per API process and restarts it after a failure.
type Feed interface {
	Run(ctx context.Context, deliver func(eventstore.RecordedEvent)) error
}
