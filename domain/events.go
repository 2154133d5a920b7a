package domain

import (
	"reflect"
	"time"
)

// Event is a domain event. EventName returns its stable, stored name, which
// never changes once written (renaming would orphan history) and is never
// derived from the Go type name.
//
// Events are plain values with JSON tags; the eventstore's codec registry
// decodes them by name through NewEvent. Apply accepts an event either as a
// value or as a pointer to one.
type Event interface {
	EventName() string
}

// Project events, on stream project-<id>.

// ProjectCreated starts a project stream. NewProject follows it with a
// MemberGranted that makes the creator an owner.
type ProjectCreated struct {
	ProjectID   string    `json:"project_id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedBy   string    `json:"created_by"`
	At          time.Time `json:"at"`
}

// ProjectRenamed records a new project name.
type ProjectRenamed struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// ProjectArchived records that the project takes no new scans or
// repositories; it stays readable.
type ProjectArchived struct {
	At time.Time `json:"at"`
}

// MemberGranted gives a principal a role in the project, or changes its role.
type MemberGranted struct {
	Principal string    `json:"principal"`
	Role      Role      `json:"role"`
	At        time.Time `json:"at"`
}

// MemberRevoked removes a principal from the project.
type MemberRevoked struct {
	Principal string    `json:"principal"`
	At        time.Time `json:"at"`
}

// Repository events, on stream repository-<id>.

// RepositoryAdded starts a repository stream.
type RepositoryAdded struct {
	RepositoryID string    `json:"repository_id"`
	ProjectID    string    `json:"project_id"`
	Name         string    `json:"name"`
	Source       Source    `json:"source"`
	At           time.Time `json:"at"`
}

// RepositoryRemoved records that the repository is gone for users; its
// history stays readable to admins and auditors.
type RepositoryRemoved struct {
	At time.Time `json:"at"`
}

// SnapshotRequested records a pending git capture of Ref (empty: the source's
// ref, or the remote's default branch).
type SnapshotRequested struct {
	SnapshotID string    `json:"snapshot_id"`
	Ref        string    `json:"ref"`
	At         time.Time `json:"at"`
}

// SnapshotCaptured records an immutable snapshot: an uploaded archive (no
// prior SnapshotRequested) or the completion of a git capture.
type SnapshotCaptured struct {
	SnapshotID string    `json:"snapshot_id"`
	Digest     string    `json:"digest"` // "sha256:" + 64 lower-case hex digits
	SizeBytes  int64     `json:"size_bytes"`
	FileCount  int       `json:"file_count"`
	Commit     string    `json:"commit,omitempty"` // git only
	At         time.Time `json:"at"`
}

// SnapshotFailed records that a pending git capture failed.
type SnapshotFailed struct {
	SnapshotID string    `json:"snapshot_id"`
	Error      string    `json:"error"`
	At         time.Time `json:"at"`
}

// ThreatProfileDefined records a whole new threat-profile version; Profile
// carries its Version (1, 2, …).
type ThreatProfileDefined struct {
	Profile ThreatProfile `json:"profile"`
	At      time.Time     `json:"at"`
}

// Scan events, on stream scan-<id>. Fence is the fencing token the writer
// held; runner-side events carry the current one, control-plane events carry
// NoFence (0).

// ScanRequested starts a scan stream. Profile is a copy of the threat profile
// in force when the scan was requested, so a scan's meaning never depends on
// later profile versions.
type ScanRequested struct {
	ScanID       string        `json:"scan_id"`
	ProjectID    string        `json:"project_id"`
	RepositoryID string        `json:"repository_id"`
	SnapshotID   string        `json:"snapshot_id"`
	Engines      []string      `json:"engines"`
	Profile      ThreatProfile `json:"profile"`
	RequestedBy  string        `json:"requested_by"`
	At           time.Time     `json:"at"`
}

// ScanClaimed records that a worker holds the scan until LeaseUntil. Fence is
// the new fencing token: the attempt number, 1 for the first claim.
type ScanClaimed struct {
	WorkerID   string    `json:"worker_id"`
	Fence      uint64    `json:"fence"`
	LeaseUntil time.Time `json:"lease_until"`
	At         time.Time `json:"at"`
}

// ScanLeaseRenewed extends the current claim's lease.
type ScanLeaseRenewed struct {
	Fence      uint64    `json:"fence"`
	LeaseUntil time.Time `json:"lease_until"`
	At         time.Time `json:"at"`
}

// ScanRequeued returns a scan whose lease expired to requested, so another
// worker may claim it. The findings and progress of the abandoned attempt
// (Fence) are discarded; LLM usage is kept, since it was spent.
type ScanRequeued struct {
	Fence  uint64    `json:"fence"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// RunnerLaunched records the runner job that executes the current attempt.
type RunnerLaunched struct {
	Fence    uint64    `json:"fence"`
	Launcher string    `json:"launcher"` // inprocess, process, ecs
	JobID    string    `json:"job_id"`   // a PID, goroutine label or ECS task ARN
	At       time.Time `json:"at"`
}

// ScanCredentialIssued records a per-scan LLM proxy credential minted for
// the current attempt (Fence) when its runner is launched. TokenHash is the
// hex SHA-256 of the token (see HashToken); the token itself never enters an
// event. The credential authenticates until ExpiresAt and only while the
// scan is claimed or running at the same fence: a requeue or a terminal
// state revokes it.
type ScanCredentialIssued struct {
	Fence     uint64    `json:"fence"`
	TokenHash string    `json:"token_hash"`
	ExpiresAt time.Time `json:"expires_at"`
	At        time.Time `json:"at"`
}

// ScanStarted records that the runner began work: claimed to running.
type ScanStarted struct {
	Fence uint64    `json:"fence"`
	At    time.Time `json:"at"`
}

// ScanProgressed records the runner's phase and overall progress (0–100).
type ScanProgressed struct {
	Fence    uint64    `json:"fence"`
	Phase    string    `json:"phase"`
	Progress int       `json:"progress"`
	At       time.Time `json:"at"`
}

// FindingRecorded records one finding of the current attempt.
type FindingRecorded struct {
	Fence   uint64    `json:"fence"`
	Finding Finding   `json:"finding"`
	At      time.Time `json:"at"`
}

// LLMUsageRecorded records the usage of one or more LLM calls, recorded by
// the LLM proxy alone so that each call is counted once.
type LLMUsageRecorded struct {
	Model string    `json:"model"`
	Usage LLMUsage  `json:"usage"`
	At    time.Time `json:"at"`
}

// ScanBudgetExceeded records, at most once per scan, that LLM usage reached
// a limit of the scan's budget; Total is the usage at that moment and Limit
// names the limit ("max_tokens", "max_cost_usd", "max_requests"). A scan whose
// budget was exceeded completes as partial.
type ScanBudgetExceeded struct {
	Limit string    `json:"limit"`
	Total LLMUsage  `json:"total"`
	At    time.Time `json:"at"`
}

// ScanCancelRequested asks the runner of a claimed or running scan to stop.
type ScanCancelRequested struct {
	RequestedBy string    `json:"requested_by"`
	Reason      string    `json:"reason,omitempty"`
	At          time.Time `json:"at"`
}

// ScanCancelled ends a scan as cancelled (terminal).
type ScanCancelled struct {
	Fence  uint64    `json:"fence"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// ScanCompleted ends a scan as completed (terminal). Counts summarises the
// findings of the final attempt. Partial is true when the scan did not cover
// everything its profile asked for (Reason says why); a partial scan fixes no
// issue.
type ScanCompleted struct {
	Fence   uint64         `json:"fence"`
	Partial bool           `json:"partial"`
	Reason  string         `json:"reason,omitempty"`
	Counts  SeverityCounts `json:"counts"`
	At      time.Time      `json:"at"`
}

// ScanFailed ends a scan as failed (terminal).
type ScanFailed struct {
	Fence  uint64    `json:"fence"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// ScanTimedOut ends a scan that ran past its deadline (terminal).
type ScanTimedOut struct {
	Fence  uint64    `json:"fence"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Issue events, on stream issue-<id>.

// IssueOpened starts an issue stream: a completed scan found a fingerprint
// the repository had no issue for.
type IssueOpened struct {
	IssueID      string    `json:"issue_id"`
	RepositoryID string    `json:"repository_id"`
	Fingerprint  string    `json:"fingerprint"`
	RuleID       string    `json:"rule_id"`
	Title        string    `json:"title"`
	Severity     Severity  `json:"severity"`
	File         string    `json:"file"`
	Engine       string    `json:"engine"`
	ScanID       string    `json:"scan_id"`
	FindingID    string    `json:"finding_id"`
	At           time.Time `json:"at"`
}

// IssueSeen records that a completed scan found an open issue again
// ("unchanged"); it moves last_seen and refreshes title, severity and file.
type IssueSeen struct {
	ScanID    string    `json:"scan_id"`
	FindingID string    `json:"finding_id"`
	Engine    string    `json:"engine"`
	Title     string    `json:"title"`
	Severity  Severity  `json:"severity"`
	File      string    `json:"file"`
	At        time.Time `json:"at"`
}

// IssueReopened records that a completed scan found a fixed issue again:
// fixed to open. Triage is untouched.
type IssueReopened struct {
	ScanID    string    `json:"scan_id"`
	FindingID string    `json:"finding_id"`
	Engine    string    `json:"engine"`
	Title     string    `json:"title"`
	Severity  Severity  `json:"severity"`
	File      string    `json:"file"`
	At        time.Time `json:"at"`
}

// IssueFixed records that a complete, non-partial scan that ran every engine
// which ever found the issue did not find it: open to fixed. Triage is
// untouched.
type IssueFixed struct {
	ScanID string    `json:"scan_id"`
	At     time.Time `json:"at"`
}

// IssueTriaged records a person's triage decision. ExpiresAt is set for
// accepted_risk only.
type IssueTriaged struct {
	Status    Triage    `json:"status"`
	Note      string    `json:"note,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Actor     string    `json:"actor"`
	At        time.Time `json:"at"`
}

// Access events, on stream access-<principal>.

// TokenIssued records an API token of Principal. Hash is the hex SHA-256 of
// the secret (see HashToken); the secret itself never enters an event.
// A zero ExpiresAt means the token does not expire.
type TokenIssued struct {
	TokenID   string    `json:"token_id"`
	Principal string    `json:"principal"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	Hash      string    `json:"hash"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	At        time.Time `json:"at"`
}

// TokenRevoked records that a token no longer authenticates.
type TokenRevoked struct {
	TokenID string    `json:"token_id"`
	At      time.Time `json:"at"`
}

// EventName returns "ProjectCreated".
func (ProjectCreated) EventName() string { return "ProjectCreated" }

// EventName returns "ProjectRenamed".
func (ProjectRenamed) EventName() string { return "ProjectRenamed" }

// EventName returns "ProjectArchived".
func (ProjectArchived) EventName() string { return "ProjectArchived" }

// EventName returns "MemberGranted".
func (MemberGranted) EventName() string { return "MemberGranted" }

// EventName returns "MemberRevoked".
func (MemberRevoked) EventName() string { return "MemberRevoked" }

// EventName returns "RepositoryAdded".
func (RepositoryAdded) EventName() string { return "RepositoryAdded" }

// EventName returns "RepositoryRemoved".
func (RepositoryRemoved) EventName() string { return "RepositoryRemoved" }

// EventName returns "SnapshotRequested".
func (SnapshotRequested) EventName() string { return "SnapshotRequested" }

// EventName returns "SnapshotCaptured".
func (SnapshotCaptured) EventName() string { return "SnapshotCaptured" }

// EventName returns "SnapshotFailed".
func (SnapshotFailed) EventName() string { return "SnapshotFailed" }

// EventName returns "ThreatProfileDefined".
func (ThreatProfileDefined) EventName() string { return "ThreatProfileDefined" }

// EventName returns "ScanRequested".
func (ScanRequested) EventName() string { return "ScanRequested" }

// EventName returns "ScanClaimed".
func (ScanClaimed) EventName() string { return "ScanClaimed" }

// EventName returns "ScanLeaseRenewed".
func (ScanLeaseRenewed) EventName() string { return "ScanLeaseRenewed" }

// EventName returns "ScanRequeued".
func (ScanRequeued) EventName() string { return "ScanRequeued" }

// EventName returns "RunnerLaunched".
func (RunnerLaunched) EventName() string { return "RunnerLaunched" }

// EventName returns "ScanCredentialIssued".
func (ScanCredentialIssued) EventName() string { return "ScanCredentialIssued" }

// EventName returns "ScanStarted".
func (ScanStarted) EventName() string { return "ScanStarted" }

// EventName returns "ScanProgressed".
func (ScanProgressed) EventName() string { return "ScanProgressed" }

// EventName returns "FindingRecorded".
func (FindingRecorded) EventName() string { return "FindingRecorded" }

// EventName returns "LLMUsageRecorded".
func (LLMUsageRecorded) EventName() string { return "LLMUsageRecorded" }

// EventName returns "ScanBudgetExceeded".
func (ScanBudgetExceeded) EventName() string { return "ScanBudgetExceeded" }

// EventName returns "ScanCancelRequested".
func (ScanCancelRequested) EventName() string { return "ScanCancelRequested" }

// EventName returns "ScanCancelled".
func (ScanCancelled) EventName() string { return "ScanCancelled" }

// EventName returns "ScanCompleted".
func (ScanCompleted) EventName() string { return "ScanCompleted" }

// EventName returns "ScanFailed".
func (ScanFailed) EventName() string { return "ScanFailed" }

// EventName returns "ScanTimedOut".
func (ScanTimedOut) EventName() string { return "ScanTimedOut" }

// EventName returns "IssueOpened".
func (IssueOpened) EventName() string { return "IssueOpened" }

// EventName returns "IssueSeen".
func (IssueSeen) EventName() string { return "IssueSeen" }

// EventName returns "IssueReopened".
func (IssueReopened) EventName() string { return "IssueReopened" }

// EventName returns "IssueFixed".
func (IssueFixed) EventName() string { return "IssueFixed" }

// EventName returns "IssueTriaged".
func (IssueTriaged) EventName() string { return "IssueTriaged" }

// EventName returns "TokenIssued".
func (TokenIssued) EventName() string { return "TokenIssued" }

// EventName returns "TokenRevoked".
func (TokenRevoked) EventName() string { return "TokenRevoked" }

// catalogue lists one zero value per event type. Append only.
var catalogue = []Event{
	ProjectCreated{}, ProjectRenamed{}, ProjectArchived{}, MemberGranted{}, MemberRevoked{},
	RepositoryAdded{}, RepositoryRemoved{}, SnapshotRequested{}, SnapshotCaptured{}, SnapshotFailed{},
	ThreatProfileDefined{},
	ScanRequested{}, ScanClaimed{}, ScanLeaseRenewed{}, ScanRequeued{}, RunnerLaunched{}, ScanStarted{},
	ScanProgressed{}, FindingRecorded{}, LLMUsageRecorded{}, ScanBudgetExceeded{}, ScanCancelRequested{},
	ScanCancelled{}, ScanCompleted{}, ScanFailed{}, ScanTimedOut{},
	IssueOpened{}, IssueSeen{}, IssueReopened{}, IssueFixed{}, IssueTriaged{},
	TokenIssued{}, TokenRevoked{},
	ScanCredentialIssued{},
	ScanClassified{}, IssueIndexUpdated{},
}

var eventTypes = func() map[string]reflect.Type {
	m := make(map[string]reflect.Type, len(catalogue))
	for _, e := range catalogue {
		if _, dup := m[e.EventName()]; dup {
			panic("domain: duplicate event name " + e.EventName())
		}
		m[e.EventName()] = reflect.TypeOf(e)
	}
	return m
}()

// Catalogue returns one zero value of every event type, for registering them
// with a codec. The slice is a fresh copy.
func Catalogue() []Event {
	return append([]Event(nil), catalogue...)
}

// NewEvent returns a pointer to a fresh zero value of the event named name,
// ready to be JSON-decoded into, and false for an unknown name.
func NewEvent(name string) (Event, bool) {
	t, ok := eventTypes[name]
	if !ok {
		return nil, false
	}
	return reflect.New(t).Interface().(Event), true
}

// deref turns a pointer to an event into the event value, so that Apply
// handles decoded (*T) and decided (T) events alike.
func deref(e Event) Event {
	if v := reflect.ValueOf(e); v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		if ev, ok := v.Elem().Interface().(Event); ok {
			return ev
		}
	}
	return e
}
