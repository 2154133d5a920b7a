package queries

import (
	"encoding/json"

	"github.com/vega-sec/vega/domain"
)

// Caller is who asks: a principal and whether it is an installation admin.
// Admins see every project; other principals only those they are members of.
type Caller struct {
	Principal string
	Admin     bool
}

// ListOptions pages a list. Limit 0 means DefaultLimit; otherwise it must be
// 1 to MaxLimit. Cursor is "" for the first page, else a NextCursor this
// list returned.
type ListOptions struct {
	Limit  int
	Cursor string
}

// Page is one page of a list. NextCursor is "" after the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// Project is a project as the API shows it.
type Project struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	CreatedAt   string `json:"created_at"`
	Archived    bool   `json:"archived"`
}

// Member is a principal's role in a project.
type Member struct {
	ProjectID string      `json:"project_id"`
	Principal string      `json:"principal"`
	Role      domain.Role `json:"role"`
	GrantedAt string      `json:"granted_at"`
}

// Repository is a repository. Removed is shown (true) only to admins, the
// only callers who still see removed repositories.
type Repository struct {
	ID               string        `json:"id"`
	ProjectID        string        `json:"project_id"`
	Name             string        `json:"name"`
	Source           domain.Source `json:"source"`
	CreatedAt        string        `json:"created_at"`
	LatestSnapshotID string        `json:"latest_snapshot_id"`
	Removed          bool          `json:"removed,omitempty"`
}

// Snapshot is a capture of a repository. CapturedAt, Digest and Commit are
// "" until captured (Commit stays "" for archives); Error is set when a git
// capture failed.
type Snapshot struct {
	ID           string                `json:"id"`
	RepositoryID string                `json:"repository_id"`
	Status       domain.SnapshotStatus `json:"status"`
	Ref          string                `json:"ref,omitempty"`
	Digest       string                `json:"digest"`
	SizeBytes    int64                 `json:"size_bytes"`
	FileCount    int64                 `json:"file_count"`
	Commit       string                `json:"commit"`
	CapturedAt   string                `json:"captured_at"`
	Error        string                `json:"error"`
}

// ThreatProfile is a repository's threat profile, version 0 for the
// default.
type ThreatProfile = domain.ThreatProfile

// LLMUsage is a scan's LLM consumption.
type LLMUsage struct {
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
}

// Scan is a scan. StartedAt and FinishedAt are "" until then; Error says
// why a failed, cancelled or timed-out scan ended.
type Scan struct {
	ID           string                `json:"id"`
	ProjectID    string                `json:"project_id"`
	RepositoryID string                `json:"repository_id"`
	SnapshotID   string                `json:"snapshot_id"`
	Partial      bool                  `json:"partial"`
	Status       domain.ScanState      `json:"status"`
	Phase        string                `json:"phase"`
	Progress     int                   `json:"progress"`
	Engines      []string              `json:"engines"`
	Counts       domain.SeverityCounts `json:"counts"`
	LLMUsage     LLMUsage              `json:"llm_usage"`
	RequestedAt  string                `json:"requested_at"`
	StartedAt    string                `json:"started_at"`
	FinishedAt   string                `json:"finished_at"`
	Error        string                `json:"error"`
}

// Finding is one finding of a scan. IssueID, Diff and Triage are "" until
// the completed scan is classified; Triage is the issue's triage as it
// reads now (an accepted_risk past its expiry reads open).
type Finding struct {
	ID          string          `json:"id"`
	ScanID      string          `json:"scan_id"`
	IssueID     string          `json:"issue_id"`
	Fingerprint string          `json:"fingerprint"`
	RuleID      string          `json:"rule_id"`
	Title       string          `json:"title"`
	Severity    domain.Severity `json:"severity"`
	CWE         string          `json:"cwe"`
	Engine      string          `json:"engine"`
	File        string          `json:"file"`
	StartLine   int             `json:"start_line"`
	EndLine     int             `json:"end_line"`
	Snippet     string          `json:"snippet"`
	Message     string          `json:"message"`
	Remediation string          `json:"remediation"`
	Confidence  float64         `json:"confidence"`
	Diff        string          `json:"diff"`
	Triage      string          `json:"triage"`
}

// Issue is one finding's identity in a repository across scans. Triage
// reads as now (an accepted_risk past ExpiresAt reads open); ExpiresAt is
// set for accepted_risk only. History is filled by Issue, not by lists.
type Issue struct {
	ID              string            `json:"id"`
	RepositoryID    string            `json:"repository_id"`
	Fingerprint     string            `json:"fingerprint"`
	RuleID          string            `json:"rule_id"`
	Title           string            `json:"title"`
	Severity        domain.Severity   `json:"severity"`
	File            string            `json:"file"`
	Triage          domain.Triage     `json:"triage"`
	ExpiresAt       string            `json:"expires_at,omitempty"`
	FirstSeenScanID string            `json:"first_seen_scan_id"`
	LastSeenScanID  string            `json:"last_seen_scan_id"`
	State           domain.IssueState `json:"state"`
	History         []HistoryEntry    `json:"history,omitempty"`
}

// HistoryEntry is one change of an issue: its state (by a scan, ScanID
// set) or its triage (by a person, with Note and, for accepted_risk,
// ExpiresAt).
type HistoryEntry struct {
	At        string `json:"at"`
	Actor     string `json:"actor"`
	State     string `json:"state,omitempty"`
	Triage    string `json:"triage,omitempty"`
	Note      string `json:"note"`
	ScanID    string `json:"scan_id,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

// Token is an API token as admins list it: never its secret or hash.
// ExpiresAt is "" for a token that never expires.
type Token struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Principal string `json:"principal"`
	Admin     bool   `json:"admin"`
	ExpiresAt string `json:"expires_at"`
	CreatedAt string `json:"created_at"`
	Revoked   bool   `json:"revoked"`
}

// TokenAuth is what authentication learns from a token's hash. Active is
// false when the token is revoked or expired: the bearer is then
// unauthenticated.
type TokenAuth struct {
	TokenID   string
	Principal string
	Admin     bool
	Revoked   bool
	Expired   bool
	Active    bool
}

// Event is one event of a stream, as the scan events list and the
// activity feed show it. Cursor, in the activity feed only, is the opaque
// global cursor of the event (the SSE id, accepted back as a Cursor).
type Event struct {
	StreamID   string          `json:"stream_id"`
	Version    int64           `json:"version"`
	Type       string          `json:"type"`
	RecordedAt string          `json:"recorded_at"`
	Actor      string          `json:"actor"`
	Data       json.RawMessage `json:"data"`
	Cursor     string          `json:"-"`
}

// Dashboard summarises the caller's projects: how many projects and
// repositories (not removed), scans by status and open issues by severity
// (every status and severity present, 0 when none), and the newest scans.
type Dashboard struct {
	Projects     int            `json:"projects"`
	Repositories int            `json:"repositories"`
	Scans        map[string]int `json:"scans"`
	OpenIssues   map[string]int `json:"open_issues"`
	RecentScans  []Scan         `json:"recent_scans"`
}

// FindingFilter filters a scan's findings. Each field is "" (no filter),
// one value or a comma-separated list, matched exactly: Severity
// (critical…info), Triage (open, under_review, false_positive, wont_fix,
// accepted_risk), Diff (new, unchanged, reopened), Rule (rule_id), File.
type FindingFilter struct {
	Severity, Triage, Diff, Rule, File string
}

// IssueFilter filters a repository's issues like FindingFilter: Triage,
// Severity, State (open, fixed).
type IssueFilter struct {
	Triage, Severity, State string
}
