package web

import (
	"context"
	"io"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/projections"
	"github.com/vega-sec/vega/queries"
)

// Authenticator looks API tokens up by hash and says who is who in a
// project: the same lookups the JSON API authorizes with.
type Authenticator interface {
	// Authenticate returns the token with the given hash, or
	// domain.ErrNotFound.
	Authenticate(ctx context.Context, hash string) (queries.TokenAuth, error)
	// RoleOf returns principal's role in the project, or domain.ErrNotFound.
	RoleOf(ctx context.Context, principal, projectID string) (domain.Role, error)
}

// Scoper resolves the project of an object whoever asks, so that a form
// POST can be authorized (404 for strangers, 403 for a weak role) before
// its command runs.
type Scoper interface {
	ProjectOfRepository(ctx context.Context, id string) (string, error)
	ProjectOfScan(ctx context.Context, id string) (string, error)
	ProjectOfIssue(ctx context.Context, id string) (string, error)
}

// Reads are the query-side reads the pages render. Every one scopes by the
// caller and answers domain.ErrNotFound for objects outside its projects.
type Reads interface {
	Dashboard(ctx context.Context, c queries.Caller) (queries.Dashboard, error)
	ListProjects(ctx context.Context, c queries.Caller, o queries.ListOptions) (queries.Page[queries.Project], error)
	Project(ctx context.Context, c queries.Caller, id string) (queries.Project, error)
	ListMembers(ctx context.Context, c queries.Caller, projectID string, o queries.ListOptions) (queries.Page[queries.Member], error)
	ListRepositories(ctx context.Context, c queries.Caller, projectID string, o queries.ListOptions) (queries.Page[queries.Repository], error)
	Repository(ctx context.Context, c queries.Caller, id string) (queries.Repository, error)
	ListSnapshots(ctx context.Context, c queries.Caller, repositoryID string, o queries.ListOptions) (queries.Page[queries.Snapshot], error)
	ThreatProfile(ctx context.Context, c queries.Caller, repositoryID string) (queries.ThreatProfile, error)
	ListScans(ctx context.Context, c queries.Caller, repositoryID string, o queries.ListOptions) (queries.Page[queries.Scan], error)
	Scan(ctx context.Context, c queries.Caller, id string) (queries.Scan, error)
	ListFindings(ctx context.Context, c queries.Caller, scanID string, f queries.FindingFilter, o queries.ListOptions) (queries.Page[queries.Finding], error)
	ListScanEvents(ctx context.Context, c queries.Caller, scanID string, o queries.ListOptions) (queries.Page[queries.Event], error)
	ListIssues(ctx context.Context, c queries.Caller, repositoryID string, f queries.IssueFilter, o queries.ListOptions) (queries.Page[queries.Issue], error)
	Issue(ctx context.Context, c queries.Caller, id string) (queries.Issue, error)
}

// Queries is everything the dashboard reads through the query side;
// *queries.Service is one.
type Queries interface {
	Authenticator
	Scoper
	Reads
}

var _ Queries = (*queries.Service)(nil)

// Consistency is how a form POST waits for the read models to show its
// command before redirecting (read-your-own-writes); *projections.Runner
// is one.
type Consistency interface {
	WaitFor(ctx context.Context, pos eventstore.Position) error
}

var _ Consistency = (*projections.Runner)(nil)

// Uploader stores an uploaded archive as a snapshot (*snapshot.Service).
type Uploader interface {
	Upload(ctx context.Context, repositoryID, contentType string, body io.Reader, maxBytes int64) (commands.SnapshotResult, error)
}

var _ Uploader = (*snapshot.Service)(nil)

// StreamTokens mints the short-lived ?access_token= tokens that the API's
// SSE routes accept, for the scan scanID ("" for the activity feed).
// HMACStreamTokens is one, compatible with the API's tokens when both share
// a key.
type StreamTokens interface {
	Mint(c queries.Caller, scanID string, now time.Time) (token string, expires time.Time, err error)
}

// ScanDiff is a scan's difference to the previous scan of its repository,
// as GET /api/v1/scans/{id}/diff shows it.
type ScanDiff struct {
	BaseScanID string
	New        []queries.Finding
	Reopened   []queries.Finding
	Fixed      []queries.Finding // the fixed issues' last findings
	Unchanged  int
	// Complete is false when the diff was assembled from the findings'
	// diff labels alone (no DiffReader, or the scan is not classified
	// yet): Fixed and Unchanged are then unknown.
	Complete bool
}

// DiffReader computes a scan's diff from its classification
// (*classify.Reader). The Scan page checks the caller's access first. An
// error matching domain.ErrConflict (the scan is not classified yet) makes
// the page fall back to the findings' diff labels.
type DiffReader interface {
	Diff(ctx context.Context, scanID string, now time.Time) (classify.DiffView, error)
}

var _ DiffReader = (*classify.Reader)(nil)

// SARIFExporter writes a scan's findings as a SARIF 2.1.0 document for a
// caller, domain.ErrNotFound for a scan it cannot see. Optional: without it
// the Scan page shows no SARIF link.
type SARIFExporter interface {
	ScanSARIF(ctx context.Context, c queries.Caller, scanID string, w io.Writer) error
}
