package domain

import (
	"crypto/subtle"
	"fmt"
	"math"
	"regexp"
	"slices"
	"time"
)

// ScanState is a scan's lifecycle state. Stored values are append-only.
type ScanState string

// Scan states. Completed, failed, cancelled and timed_out are terminal.
const (
	ScanStateRequested ScanState = "requested"
	ScanStateClaimed   ScanState = "claimed"
	ScanStateRunning   ScanState = "running"
	ScanStateCompleted ScanState = "completed"
	ScanStateFailed    ScanState = "failed"
	ScanStateCancelled ScanState = "cancelled"
	ScanStateTimedOut  ScanState = "timed_out"
)

// transitions is the whole scan state machine; nothing else is legal.
var transitions = map[ScanState][]ScanState{
	ScanStateRequested: {ScanStateClaimed, ScanStateCancelled, ScanStateFailed},
	ScanStateClaimed:   {ScanStateRunning, ScanStateRequested, ScanStateFailed, ScanStateCancelled, ScanStateTimedOut},
	ScanStateRunning:   {ScanStateCompleted, ScanStateFailed, ScanStateCancelled, ScanStateTimedOut, ScanStateRequested},
}

// ScanStates returns every scan state, in lifecycle order.
func ScanStates() []ScanState {
	return []ScanState{ScanStateRequested, ScanStateClaimed, ScanStateRunning,
		ScanStateCompleted, ScanStateFailed, ScanStateCancelled, ScanStateTimedOut}
}

// Valid reports whether s is a known scan state.
func (s ScanState) Valid() bool { return slices.Contains(ScanStates(), s) }

// Terminal reports whether s is completed, failed, cancelled or timed_out.
func (s ScanState) Terminal() bool { return s.Valid() && len(transitions[s]) == 0 }

// CanTransition reports whether the state machine allows from -> to:
//
//	requested -> claimed, cancelled, failed
//	claimed   -> running, requested (requeue), failed, cancelled, timed_out
//	running   -> completed, failed, cancelled, timed_out, requested (requeue)
//	completed, failed, cancelled, timed_out: terminal
func CanTransition(from, to ScanState) bool { return slices.Contains(transitions[from], to) }

// NoFence is the fencing token passed by control-plane callers (the API, a
// worker's reaper) that act on a scan without holding its claim. Claims count
// fences from 1, so NoFence never matches a runner's token.
const NoFence uint64 = 0

// LLMUsage is LLM consumption: of one call, or a scan's running total.
type LLMUsage struct {
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
	Requests     int64   `json:"requests"`
}

// Add returns the sum of u and o.
func (u LLMUsage) Add(o LLMUsage) LLMUsage {
	return LLMUsage{u.InputTokens + o.InputTokens, u.OutputTokens + o.OutputTokens, u.CostUSD + o.CostUSD, u.Requests + o.Requests}
}

// Validate checks that every figure is finite and not negative. Errors name
// "usage.<figure>".
func (u LLMUsage) Validate() error {
	switch {
	case u.InputTokens < 0:
		return invalid("usage.input_tokens", "must not be negative")
	case u.OutputTokens < 0:
		return invalid("usage.output_tokens", "must not be negative")
	case u.CostUSD < 0 || math.IsNaN(u.CostUSD) || math.IsInf(u.CostUSD, 0):
		return invalid("usage.cost_usd", "must be a finite number, not negative")
	case u.Requests < 0:
		return invalid("usage.requests", "must not be negative")
	}
	return nil
}

// Finding is one security finding of a scan. Snippet must already be
// redacted: a secret's value never enters an event.
type Finding struct {
	ID          string   `json:"id"`
	Fingerprint string   `json:"fingerprint"` // keyed HMAC, stable across line shifts
	RuleID      string   `json:"rule_id"`
	Title       string   `json:"title"`
	Severity    Severity `json:"severity"`
	CWE         string   `json:"cwe,omitempty"` // "CWE-<n>"
	Engine      string   `json:"engine"`
	File        string   `json:"file"` // repository-relative, '/'-separated
	StartLine   int      `json:"start_line"`
	EndLine     int      `json:"end_line"`
	Snippet     string   `json:"snippet,omitempty"`
	Message     string   `json:"message,omitempty"`
	Remediation string   `json:"remediation,omitempty"`
	Confidence  float64  `json:"confidence"` // 0 to 1
}

var cweRe = regexp.MustCompile(`^CWE-[1-9][0-9]{0,5}$`)

// Validate checks the finding. Errors are *InvalidArgumentError values naming
// the field: id, fingerprint (non-empty printable, at most
// MaxFingerprintLength bytes), rule_id, title, severity, cwe, engine, file
// (see ValidateRelativePath), start_line (>= 1), end_line (>= start_line),
// snippet, message, remediation, confidence (0 to 1).
func (f Finding) Validate() error {
	if err := ValidateID("id", f.ID); err != nil {
		return err
	}
	switch {
	case f.Fingerprint == "":
		return invalid("fingerprint", "is required")
	case len(f.Fingerprint) > MaxFingerprintLength:
		return invalid("fingerprint", "longer than %d bytes", MaxFingerprintLength)
	}
	if err := validateText("fingerprint", f.Fingerprint, MaxFingerprintLength, false); err != nil {
		return err
	}
	if f.RuleID == "" {
		return invalid("rule_id", "is required")
	}
	if err := validateText("rule_id", f.RuleID, MaxRuleIDLength, false); err != nil {
		return err
	}
	if f.Title == "" {
		return invalid("title", "is required")
	}
	if err := validateText("title", f.Title, MaxTitleLength, false); err != nil {
		return err
	}
	if !f.Severity.Valid() {
		return invalid("severity", "%q is not one of critical, high, medium, low, info", f.Severity)
	}
	if f.CWE != "" && !cweRe.MatchString(f.CWE) {
		return invalid("cwe", "%q is not of the form CWE-<number>", f.CWE)
	}
	if !validSlug(f.Engine) {
		return invalid("engine", "%q is not an engine name", f.Engine)
	}
	if err := ValidateRelativePath("file", f.File); err != nil {
		return err
	}
	if f.StartLine < 1 {
		return invalid("start_line", "must be at least 1")
	}
	if f.EndLine < f.StartLine {
		return invalid("end_line", "must be at least start_line (%d)", f.StartLine)
	}
	for _, t := range []struct {
		field, text string
		max         int
	}{{"snippet", f.Snippet, MaxSnippetLength}, {"message", f.Message, MaxMessageLength}, {"remediation", f.Remediation, MaxMessageLength}} {
		if err := validateText(t.field, t.text, t.max, true); err != nil {
			return err
		}
	}
	if f.Confidence < 0 || f.Confidence > 1 || math.IsNaN(f.Confidence) {
		return invalid("confidence", "must be between 0 and 1")
	}
	return nil
}

// MaxCredentialsPerAttempt is how many LLM proxy credentials one attempt of
// a scan may be issued: one per runner launch, with room for a worker that
// retries its launch.
const MaxCredentialsPerAttempt = 8

// ScanCredential is a per-scan LLM proxy credential: the hash of a token
// minted for one attempt (Fence) and its expiry.
type ScanCredential struct {
	Fence     uint64    `json:"fence"`
	TokenHash string    `json:"token_hash"`
	ExpiresAt time.Time `json:"expires_at"`
	IssuedAt  time.Time `json:"issued_at"`
}

// RunnerJob identifies the runner executing one attempt of a scan.
type RunnerJob struct {
	Fence      uint64    `json:"fence"`
	Launcher   string    `json:"launcher"`
	JobID      string    `json:"job_id"`
	LaunchedAt time.Time `json:"launched_at"`
}

// Scan audits one snapshot of a repository. It owns its claim, runner job,
// progress, findings and LLM usage. The zero value is a scan that does not
// exist yet (Version 0).
//
// Claims are fenced: each ScanClaimed carries a new token (the attempt
// number), and every runner-side decision (LaunchRunner, RenewLease, Start,
// ReportProgress, RecordFinding, Complete, and Cancel/Fail/TimeOut when called by
// the runner) must present the current one or gets a *FenceError. A requeue
// discards the abandoned attempt's findings and progress, so only the final
// attempt's findings count; LLM usage accumulates across attempts.
type Scan struct {
	ID           string
	ProjectID    string
	RepositoryID string
	SnapshotID   string
	Engines      []string
	Profile      ThreatProfile // as in force when requested
	RequestedBy  string
	State        ScanState

	WorkerID   string    // holder of the current claim
	LeaseUntil time.Time // the current claim's lease
	Fence      uint64    // current fencing token; 0 before the first claim
	Attempts   int       // claims so far
	Runner     RunnerJob // zero until RunnerLaunched for the current attempt

	Phase    string
	Progress int // 0–100

	Findings []Finding // of the current attempt, in recording order
	Counts   SeverityCounts

	Credentials    []ScanCredential // LLM proxy credentials of every attempt, in issue order
	LLMUsage       LLMUsage         // total over all attempts
	BudgetExceeded bool
	BudgetLimit    string // the limit named by ScanBudgetExceeded

	CancelRequested   bool
	CancelRequestedBy string
	CancelReason      string
	Partial           bool
	Reason            string // why the scan failed, was cancelled or timed out, or is partial

	RequestedAt time.Time
	ClaimedAt   time.Time // of the current attempt
	StartedAt   time.Time // of the current attempt
	FinishedAt  time.Time
	Version     int // number of events applied

	// Classification is the outcome of classifying the completed scan's
	// findings against its repository's issues (ScanClassified); nil until
	// then. See Classified.
	Classification *Classification

	findings     map[string]int      // finding ID -> index in Findings
	fingerprints map[string]struct{} // fingerprints in Findings
	classParts   int                 // ScanClassified parts applied
	classTotal   int                 // ScanClassified parts announced
}

// ScanRequest is the input of NewScan.
type ScanRequest struct {
	ID          string   // the new scan's ID
	SnapshotID  string   // empty: the repository's latest captured snapshot
	Engines     []string // nil: the threat profile's engines
	RequestedBy string   // principal
}

// NewScan decides a scan of repository r in project p with r's current
// threat profile. It returns an *InvalidArgumentError naming "id",
// "requested_by" or "engines"; ErrNotFound when p or r does not exist, r is
// not p's, r was removed, or the snapshot is unknown; ErrConflict when p is
// archived, the snapshot is not captured, or r has no captured snapshot.
func NewScan(p *Project, r *Repository, req ScanRequest, now time.Time) ([]Event, error) {
	if err := ValidateID("id", req.ID); err != nil {
		return nil, err
	}
	if err := ValidateID("requested_by", req.RequestedBy); err != nil {
		return nil, err
	}
	if req.SnapshotID != "" {
		if err := ValidateID("snapshot_id", req.SnapshotID); err != nil {
			return nil, err
		}
	}
	engines := req.Engines
	if engines != nil {
		if err := ValidateEngines("engines", engines); err != nil {
			return nil, err
		}
	}
	switch {
	case p == nil || p.Version == 0:
		return nil, notFound("project")
	case r == nil || r.Version == 0 || r.ProjectID != p.ID:
		return nil, notFound("repository")
	}
	if err := r.EnsureActive(); err != nil {
		return nil, err
	}
	if err := p.EnsureActive(); err != nil {
		return nil, err
	}
	var snap Snapshot
	if req.SnapshotID == "" {
		var ok bool
		if snap, ok = r.LatestCaptured(); !ok {
			return nil, conflict("repository %s has no captured snapshot", r.ID)
		}
	} else {
		var ok bool
		if snap, ok = r.Snapshot(req.SnapshotID); !ok {
			return nil, notFound("snapshot %s", req.SnapshotID)
		}
		if snap.Status != SnapshotStatusCaptured {
			return nil, conflict("snapshot %s is %s, not captured", snap.ID, snap.Status)
		}
	}
	profile := r.ThreatProfile().clone()
	if engines == nil {
		engines = profile.Engines
	}
	return []Event{ScanRequested{ScanID: req.ID, ProjectID: p.ID, RepositoryID: r.ID, SnapshotID: snap.ID,
		Engines: slices.Clone(engines), Profile: profile, RequestedBy: req.RequestedBy, At: now}}, nil
}

// FoldScan rebuilds a scan from its stream; applied to a prefix of the
// stream it gives the scan as it was then (audit replay). It returns
// ErrNotFound for an empty stream and ErrInvalidHistory for a stream the
// state machine cannot have produced.
func FoldScan(events []Event) (*Scan, error) {
	if len(events) == 0 {
		return nil, notFound("scan")
	}
	s := new(Scan)
	for _, e := range events {
		if err := s.Apply(e); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Apply folds one event into the scan and increments Version. It returns
// ErrInvalidHistory for another aggregate's event, a stream that does not
// start with ScanRequested, a state change the state machine forbids, or a
// runner-side event with a stale fencing token.
func (s *Scan) Apply(e Event) error {
	e = deref(e)
	_, creation := e.(ScanRequested)
	if err := checkStart("scan", s.Version, e, creation); err != nil {
		return err
	}
	to := func(next ScanState) error {
		if !CanTransition(s.State, next) {
			return badHistory("scan", s.Version, e, fmt.Sprintf("illegal transition from %s to %s", s.State, next))
		}
		s.State = next
		return nil
	}
	fenced := func(fence uint64, optional bool) error {
		if fence != s.Fence && !(optional && fence == NoFence) {
			return badHistory("scan", s.Version, e, fmt.Sprintf("fencing token %d is not the current %d", fence, s.Fence))
		}
		return nil
	}
	finish := func(fence uint64, optional bool, next ScanState, reason string, at time.Time) error {
		if err := fenced(fence, optional); err != nil {
			return err
		}
		if err := to(next); err != nil {
			return err
		}
		s.Reason, s.FinishedAt = reason, at
		return nil
	}
	var err error
	switch e := e.(type) {
	case ScanRequested:
		*s = Scan{ID: e.ScanID, ProjectID: e.ProjectID, RepositoryID: e.RepositoryID, SnapshotID: e.SnapshotID,
			Engines: slices.Clone(e.Engines), Profile: e.Profile, RequestedBy: e.RequestedBy,
			State: ScanStateRequested, RequestedAt: e.At}
		s.resetAttempt()
	case ScanClaimed:
		if e.Fence != s.Fence+1 {
			return badHistory("scan", s.Version, e, fmt.Sprintf("fencing token %d does not follow %d", e.Fence, s.Fence))
		}
		if err = to(ScanStateClaimed); err == nil {
			s.resetAttempt()
			s.WorkerID, s.LeaseUntil, s.Fence, s.ClaimedAt = e.WorkerID, e.LeaseUntil, e.Fence, e.At
			s.Attempts++
		}
	case ScanLeaseRenewed:
		if err = fenced(e.Fence, false); err == nil {
			s.LeaseUntil = e.LeaseUntil
		}
	case ScanRequeued:
		if err = to(ScanStateRequested); err == nil {
			s.resetAttempt()
		}
	case RunnerLaunched:
		if err = fenced(e.Fence, false); err == nil {
			s.Runner = RunnerJob{Fence: e.Fence, Launcher: e.Launcher, JobID: e.JobID, LaunchedAt: e.At}
		}
	case ScanCredentialIssued:
		if err = fenced(e.Fence, false); err == nil {
			s.Credentials = append(s.Credentials, ScanCredential{Fence: e.Fence, TokenHash: e.TokenHash, ExpiresAt: e.ExpiresAt, IssuedAt: e.At})
		}
	case ScanStarted:
		if err = fenced(e.Fence, false); err == nil {
			if err = to(ScanStateRunning); err == nil {
				s.StartedAt = e.At
			}
		}
	case ScanProgressed:
		if err = fenced(e.Fence, false); err == nil {
			s.Phase, s.Progress = e.Phase, e.Progress
		}
	case FindingRecorded:
		if err = fenced(e.Fence, false); err == nil {
			s.findings[e.Finding.ID] = len(s.Findings)
			s.fingerprints[e.Finding.Fingerprint] = struct{}{}
			s.Findings = append(s.Findings, e.Finding)
			s.Counts.Add(e.Finding.Severity)
		}
	case LLMUsageRecorded:
		s.LLMUsage = s.LLMUsage.Add(e.Usage)
	case ScanBudgetExceeded:
		s.BudgetExceeded, s.BudgetLimit = true, e.Limit
	case ScanCancelRequested:
		s.CancelRequested, s.CancelRequestedBy, s.CancelReason = true, e.RequestedBy, e.Reason
	case ScanCancelled:
		err = finish(e.Fence, true, ScanStateCancelled, e.Reason, e.At)
	case ScanCompleted:
		if err = finish(e.Fence, false, ScanStateCompleted, e.Reason, e.At); err == nil {
			s.Partial = e.Partial
		}
	case ScanFailed:
		err = finish(e.Fence, true, ScanStateFailed, e.Reason, e.At)
	case ScanTimedOut:
		err = finish(e.Fence, true, ScanStateTimedOut, e.Reason, e.At)
	case ScanClassified:
		err = s.applyClassified(e)
	default:
		return badHistory("scan", s.Version, e, "not a scan event")
	}
	if err != nil {
		return err
	}
	s.Version++
	return nil
}

// resetAttempt forgets what belongs to one attempt only.
func (s *Scan) resetAttempt() {
	s.WorkerID, s.LeaseUntil, s.Runner = "", time.Time{}, RunnerJob{}
	s.Phase, s.Progress = "", 0
	s.Findings, s.Counts = nil, SeverityCounts{}
	s.findings, s.fingerprints = map[string]int{}, map[string]struct{}{}
	s.ClaimedAt, s.StartedAt = time.Time{}, time.Time{}
}

// Finding returns the current attempt's finding with the given ID.
func (s *Scan) Finding(id string) (Finding, bool) {
	i, ok := s.findings[id]
	if !ok {
		return Finding{}, false
	}
	return s.Findings[i], true
}

// HasFingerprint reports whether the current attempt recorded a finding with
// fingerprint fp; RecordFinding refuses a second one.
func (s *Scan) HasFingerprint(fp string) bool {
	_, ok := s.fingerprints[fp]
	return ok
}

// LeaseExpired reports whether the scan is claimed or running and its lease
// ended at or before now.
func (s *Scan) LeaseExpired(now time.Time) bool {
	return (s.State == ScanStateClaimed || s.State == ScanStateRunning) && !now.Before(s.LeaseUntil)
}

// transition checks that the state machine allows moving to next.
func (s *Scan) transition(next ScanState) error {
	if s.Version == 0 {
		return notFound("scan")
	}
	if !CanTransition(s.State, next) {
		return &TransitionError{From: s.State, To: next}
	}
	return nil
}

// during checks that op is allowed in the current state without changing it.
func (s *Scan) during(op string, states ...ScanState) error {
	if s.Version == 0 {
		return notFound("scan")
	}
	if !slices.Contains(states, s.State) {
		return conflict("scan %s is %s; %s needs %v", s.ID, s.State, op, states)
	}
	return nil
}

// fence checks a runner's token; control-plane callers may pass NoFence
// where optional is true.
func (s *Scan) fence(fence uint64, optional bool) error {
	if fence == s.Fence && fence != NoFence || optional && fence == NoFence {
		return nil
	}
	return &FenceError{ScanID: s.ID, Presented: fence, Current: s.Fence}
}

// Claim decides that worker holds the scan until leaseUntil: requested to
// claimed, with the next fencing token (the attempt number, read it from the
// returned ScanClaimed). It returns an *InvalidArgumentError for "worker_id"
// or "lease_until" (not after now) and a *TransitionError unless requested.
func (s *Scan) Claim(worker string, leaseUntil, now time.Time) ([]Event, error) {
	if err := ValidateID("worker_id", worker); err != nil {
		return nil, err
	}
	if !leaseUntil.After(now) {
		return nil, invalid("lease_until", "must be after now")
	}
	if err := s.transition(ScanStateClaimed); err != nil {
		return nil, err
	}
	return []Event{ScanClaimed{WorkerID: worker, Fence: s.Fence + 1, LeaseUntil: leaseUntil, At: now}}, nil
}

// RenewLease decides to extend the current claim to leaseUntil. It needs the
// current fence; a lease that already expired may still be renewed as long
// as the scan was not requeued (correctness rests on the fence and on the
// stream's expected version, not on clocks). It returns an
// *InvalidArgumentError for "lease_until" (not after now), ErrConflict unless
// claimed or running, and a *FenceError.
func (s *Scan) RenewLease(fence uint64, leaseUntil, now time.Time) ([]Event, error) {
	if !leaseUntil.After(now) {
		return nil, invalid("lease_until", "must be after now")
	}
	if err := s.during("lease renewal", ScanStateClaimed, ScanStateRunning); err != nil {
		return nil, err
	}
	if err := s.fence(fence, false); err != nil {
		return nil, err
	}
	return []Event{ScanLeaseRenewed{Fence: fence, LeaseUntil: leaseUntil, At: now}}, nil
}

// LaunchRunner decides to record the runner job of the current attempt
// (by the worker that holds the claim). It returns an *InvalidArgumentError
// for "launcher" or "job_id", ErrConflict unless claimed or running (the
// runner may start before the worker records its launch) or when this
// attempt's runner was already recorded, and a *FenceError.
func (s *Scan) LaunchRunner(fence uint64, launcher, jobID string, now time.Time) ([]Event, error) {
	if !validSlug(launcher) {
		return nil, invalid("launcher", "%q is not a launcher name", launcher)
	}
	if jobID == "" {
		return nil, invalid("job_id", "is required")
	}
	if err := validateText("job_id", jobID, MaxURLLength, false); err != nil {
		return nil, err
	}
	if err := s.during("runner launch", ScanStateClaimed, ScanStateRunning); err != nil {
		return nil, err
	}
	if err := s.fence(fence, false); err != nil {
		return nil, err
	}
	if s.Runner.Fence == fence {
		return nil, conflict("scan %s attempt %d already has runner %s", s.ID, fence, s.Runner.JobID)
	}
	return []Event{RunnerLaunched{Fence: fence, Launcher: launcher, JobID: jobID, At: now}}, nil
}

// Start decides that the runner began: claimed to running. It returns a
// *TransitionError unless claimed, then a *FenceError for a stale token.
func (s *Scan) Start(fence uint64, now time.Time) ([]Event, error) {
	if err := s.transition(ScanStateRunning); err != nil {
		return nil, err
	}
	if err := s.fence(fence, false); err != nil {
		return nil, err
	}
	return []Event{ScanStarted{Fence: fence, At: now}}, nil
}

// ReportProgress decides to record the runner's phase (at most MaxPhaseLength
// runes) and overall progress (0–100; it may go down, as the runner's
// estimate changes). It returns an *InvalidArgumentError for "phase" or
// "progress", ErrConflict unless running, and a *FenceError.
func (s *Scan) ReportProgress(fence uint64, phase string, progress int, now time.Time) ([]Event, error) {
	if err := validateText("phase", phase, MaxPhaseLength, false); err != nil {
		return nil, err
	}
	if progress < 0 || progress > 100 {
		return nil, invalid("progress", "must be between 0 and 100")
	}
	if err := s.during("progress", ScanStateRunning); err != nil {
		return nil, err
	}
	if err := s.fence(fence, false); err != nil {
		return nil, err
	}
	return []Event{ScanProgressed{Fence: fence, Phase: phase, Progress: progress, At: now}}, nil
}

// RecordFinding decides to record finding f of the current attempt. f must
// pass Finding.Validate and name one of the scan's engines (this is what lets
// a later scan decide that it ran every engine that ever found an issue).
// It returns an *InvalidArgumentError naming the field, ErrConflict unless
// running or for a finding ID or fingerprint already recorded in this
// attempt, and a *FenceError.
func (s *Scan) RecordFinding(fence uint64, f Finding, now time.Time) ([]Event, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := s.during("a finding", ScanStateRunning); err != nil {
		return nil, err
	}
	if err := s.fence(fence, false); err != nil {
		return nil, err
	}
	if !slices.Contains(s.Engines, f.Engine) {
		return nil, invalid("engine", "%q is not one of the scan's engines %v", f.Engine, s.Engines)
	}
	if _, dup := s.findings[f.ID]; dup {
		return nil, conflict("scan %s already has finding %s", s.ID, f.ID)
	}
	if s.HasFingerprint(f.Fingerprint) {
		return nil, conflict("scan %s already has a finding with fingerprint %s", s.ID, f.Fingerprint)
	}
	return []Event{FindingRecorded{Fence: fence, Finding: f, At: now}}, nil
}

// RecordLLMUsage decides to record LLM usage u reported by the LLM proxy,
// which holds no fence. It is allowed once the scan has been claimed at
// least once: while claimed or running (a runner may call the model before
// ScanStarted is recorded), and also afterwards, because the proxy batches
// usage and may flush the cost of calls it forwarded while the scan was live
// after the scan ended or was requeued (spent money is recorded, never
// dropped; the proxy refuses new calls once the scan ends). When the new
// total exhausts the profile's budget for the first time while the scan is
// claimed or running, a ScanBudgetExceeded follows the LLMUsageRecorded. It
// returns an *InvalidArgumentError for "model" or "usage.…", ErrNotFound for
// a scan that does not exist, and ErrConflict for a scan never claimed.
func (s *Scan) RecordLLMUsage(model string, u LLMUsage, now time.Time) ([]Event, error) {
	if err := validateText("model", model, MaxNameLength, false); err != nil {
		return nil, err
	}
	if err := u.Validate(); err != nil {
		return nil, err
	}
	if s.Version == 0 {
		return nil, notFound("scan")
	}
	if s.Attempts == 0 {
		return nil, conflict("scan %s was never claimed; no LLM call can have been made for it", s.ID)
	}
	events := []Event{LLMUsageRecorded{Model: model, Usage: u, At: now}}
	total := s.LLMUsage.Add(u)
	live := s.State == ScanStateClaimed || s.State == ScanStateRunning
	if limit, ok := s.Profile.LLMBudget.Exhausted(total); ok && !s.BudgetExceeded && live {
		events = append(events, ScanBudgetExceeded{Limit: limit, Total: total, At: now})
	}
	return events, nil
}

// IssueCredential decides to record an LLM proxy credential for the current
// attempt: tokenHash is the hex SHA-256 of the token (HashToken), valid until
// expiresAt. It needs the current fence (the worker that launches the
// runner holds it). It returns an *InvalidArgumentError for "token_hash"
// (not 64 lower-case hex digits) or "expires_at" (not after now),
// ErrConflict unless claimed or running, when the hash was already issued,
// or when the attempt has MaxCredentialsPerAttempt credentials, and a
// *FenceError.
func (s *Scan) IssueCredential(fence uint64, tokenHash string, expiresAt, now time.Time) ([]Event, error) {
	if !hashRe.MatchString(tokenHash) {
		return nil, invalid("token_hash", "must be 64 lower-case hex digits (a SHA-256)")
	}
	if !expiresAt.After(now) {
		return nil, invalid("expires_at", "must be after now")
	}
	if err := s.during("credential issue", ScanStateClaimed, ScanStateRunning); err != nil {
		return nil, err
	}
	if err := s.fence(fence, false); err != nil {
		return nil, err
	}
	n := 0
	for _, c := range s.Credentials {
		if c.TokenHash == tokenHash {
			return nil, conflict("scan %s: credential already issued", s.ID)
		}
		if c.Fence == fence {
			n++
		}
	}
	if n >= MaxCredentialsPerAttempt {
		return nil, conflict("scan %s attempt %d already has %d credentials", s.ID, fence, n)
	}
	return []Event{ScanCredentialIssued{Fence: fence, TokenHash: tokenHash, ExpiresAt: expiresAt, At: now}}, nil
}

// CredentialValid reports whether a token whose hex SHA-256 is tokenHash
// authenticates for this scan at now: it was issued for the current
// attempt, has not expired, and the scan is claimed or running (a requeue or
// a terminal state revokes every credential). Hashes are compared in
// constant time.
func (s *Scan) CredentialValid(tokenHash string, now time.Time) bool {
	if s.State != ScanStateClaimed && s.State != ScanStateRunning {
		return false
	}
	ok := false
	for _, c := range s.Credentials {
		match := subtle.ConstantTimeCompare([]byte(c.TokenHash), []byte(tokenHash)) == 1
		if match && c.Fence == s.Fence && now.Before(c.ExpiresAt) {
			ok = true
		}
	}
	return ok
}

// ExceedBudget decides that the scan's LLM budget is exhausted on limit
// ("max_tokens", "max_cost_usd" or "max_requests"), for when the proxy
// refuses a call that would pass it. It returns no events when the budget was
// already recorded as exceeded (at most one ScanBudgetExceeded per scan), an
// *InvalidArgumentError for "limit", and ErrConflict unless claimed or
// running.
func (s *Scan) ExceedBudget(limit string, now time.Time) ([]Event, error) {
	if !slices.Contains([]string{"max_tokens", "max_cost_usd", "max_requests"}, limit) {
		return nil, invalid("limit", "%q is not one of max_tokens, max_cost_usd, max_requests", limit)
	}
	if err := s.during("budget exhaustion", ScanStateClaimed, ScanStateRunning); err != nil {
		return nil, err
	}
	if s.BudgetExceeded {
		return nil, nil
	}
	return []Event{ScanBudgetExceeded{Limit: limit, Total: s.LLMUsage, At: now}}, nil
}

// RequestCancel decides a person's cancel request (reason optional, at most
// MaxReasonLength runes). A requested scan is cancelled at once
// (ScanCancelled); a claimed or running one gets ScanCancelRequested, and its
// runner, or the reaper if the runner is gone, later records ScanCancelled.
// A second request while one is pending is a no-op: no events, no error, so
// the API's cancel is idempotent. It returns an *InvalidArgumentError for
// "requested_by" or "reason" and a *TransitionError (to cancelled) for a
// finished scan.
func (s *Scan) RequestCancel(actor, reason string, now time.Time) ([]Event, error) {
	if err := ValidateID("requested_by", actor); err != nil {
		return nil, err
	}
	reason, err := ValidateText("reason", reason, MaxReasonLength)
	if err != nil {
		return nil, err
	}
	if err := s.transition(ScanStateCancelled); err != nil {
		return nil, err
	}
	switch {
	case s.State == ScanStateRequested:
		if reason == "" {
			reason = "cancelled by " + actor
		}
		return []Event{ScanCancelled{Fence: NoFence, Reason: reason, At: now}}, nil
	case s.CancelRequested:
		return nil, nil
	}
	return []Event{ScanCancelRequested{RequestedBy: actor, Reason: reason, At: now}}, nil
}

// Cancel decides that the scan ends as cancelled: by its runner (current
// fence) obeying a cancel request, or by the control plane (NoFence). It
// returns a *TransitionError unless requested, claimed or running, and a
// *FenceError for a stale runner.
func (s *Scan) Cancel(fence uint64, reason string, now time.Time) ([]Event, error) {
	if err := s.transition(ScanStateCancelled); err != nil {
		return nil, err
	}
	if err := s.fence(fence, true); err != nil {
		return nil, err
	}
	if reason = truncate(reason, MaxReasonLength); reason == "" && s.CancelRequested {
		reason = "cancel requested by " + s.CancelRequestedBy
		if s.CancelReason != "" {
			reason = truncate(reason+": "+s.CancelReason, MaxReasonLength)
		}
	}
	return []Event{ScanCancelled{Fence: fence, Reason: reason, At: now}}, nil
}

// Complete decides that the runner finished: running to completed. The scan
// is partial when the runner says so (partial, with reason) or when its LLM
// budget was exceeded. It returns a *TransitionError unless running and a
// *FenceError.
func (s *Scan) Complete(fence uint64, partial bool, reason string, now time.Time) ([]Event, error) {
	if err := s.transition(ScanStateCompleted); err != nil {
		return nil, err
	}
	if err := s.fence(fence, false); err != nil {
		return nil, err
	}
	reason = truncate(reason, MaxReasonLength)
	if s.BudgetExceeded {
		partial = true
		if reason == "" {
			reason = "LLM budget exceeded (" + s.BudgetLimit + ")"
		}
	}
	if !partial {
		reason = ""
	}
	return []Event{ScanCompleted{Fence: fence, Partial: partial, Reason: reason, Counts: s.Counts, At: now}}, nil
}

// Fail decides that the scan ends as failed, by its runner (current fence)
// or the control plane (NoFence). The reason is kept up to MaxReasonLength
// runes. It returns a *TransitionError unless requested, claimed or running,
// and a *FenceError for a stale runner.
func (s *Scan) Fail(fence uint64, reason string, now time.Time) ([]Event, error) {
	if err := s.transition(ScanStateFailed); err != nil {
		return nil, err
	}
	if err := s.fence(fence, true); err != nil {
		return nil, err
	}
	if reason = truncate(reason, MaxReasonLength); reason == "" {
		reason = "failed"
	}
	return []Event{ScanFailed{Fence: fence, Reason: reason, At: now}}, nil
}

// TimeOut decides that the scan ran past its deadline, by its runner
// (current fence) or the control plane (NoFence). It returns a
// *TransitionError unless claimed or running, and a *FenceError for a stale
// runner.
func (s *Scan) TimeOut(fence uint64, reason string, now time.Time) ([]Event, error) {
	if err := s.transition(ScanStateTimedOut); err != nil {
		return nil, err
	}
	if err := s.fence(fence, true); err != nil {
		return nil, err
	}
	return []Event{ScanTimedOut{Fence: fence, Reason: truncate(reason, MaxReasonLength), At: now}}, nil
}

// Requeue decides that a scan whose runner was lost goes back to requested
// for another worker. maxAttempts is the total number of claims allowed
// (first attempt included), so requeueing needs Attempts < maxAttempts. It
// returns an *InvalidArgumentError for "max_attempts" (< 1), a
// *TransitionError unless claimed or running, and ErrConflict while the
// lease holds, when attempts are exhausted, or when a cancel was requested.
func (s *Scan) Requeue(maxAttempts int, reason string, now time.Time) ([]Event, error) {
	if maxAttempts < 1 {
		return nil, invalid("max_attempts", "must be at least 1")
	}
	if err := s.transition(ScanStateRequested); err != nil {
		return nil, err
	}
	switch {
	case !s.LeaseExpired(now):
		return nil, conflict("scan %s: lease of %s holds until %s", s.ID, s.WorkerID, s.LeaseUntil.Format(time.RFC3339))
	case s.CancelRequested:
		return nil, conflict("scan %s: cancel requested; cancel it instead", s.ID)
	case s.Attempts >= maxAttempts:
		return nil, conflict("scan %s: %d of %d attempts used", s.ID, s.Attempts, maxAttempts)
	}
	if reason = truncate(reason, MaxReasonLength); reason == "" {
		reason = "lease expired"
	}
	return []Event{ScanRequeued{Fence: s.Fence, Reason: reason, At: now}}, nil
}

// Reap is the worker reaper's decision for a scan whose runner may be lost.
// When the scan is claimed or running and its lease has expired, it returns
// ScanCancelled if a cancel was requested, else ScanRequeued if
// Attempts < maxAttempts, else ScanFailed. Otherwise it returns no events
// and no error. It returns an *InvalidArgumentError for "max_attempts" (< 1).
func (s *Scan) Reap(maxAttempts int, now time.Time) ([]Event, error) {
	if maxAttempts < 1 {
		return nil, invalid("max_attempts", "must be at least 1")
	}
	switch {
	case !s.LeaseExpired(now):
		return nil, nil
	case s.CancelRequested:
		return s.Cancel(NoFence, "cancel requested; runner lease expired", now)
	case s.Attempts < maxAttempts:
		return s.Requeue(maxAttempts, "lease expired", now)
	}
	return s.Fail(NoFence, fmt.Sprintf("lease expired; %d of %d attempts used", s.Attempts, maxAttempts), now)
}
