package domain

import (
	"slices"
	"time"
)

// IssueState is what scans observe of an issue. Stored values are
// append-only.
type IssueState string

// Issue states.
const (
	IssueStateOpen  IssueState = "open"
	IssueStateFixed IssueState = "fixed"
)

// Triage is what people decide about an issue. Stored values are
// append-only.
type Triage string

// Triage statuses.
const (
	TriageOpen          Triage = "open"
	TriageUnderReview   Triage = "under_review"
	TriageFalsePositive Triage = "false_positive"
	TriageWontFix       Triage = "wont_fix"
	TriageAcceptedRisk  Triage = "accepted_risk" // always with an expiry
)

// Triages returns every triage status.
func Triages() []Triage {
	return []Triage{TriageOpen, TriageUnderReview, TriageFalsePositive, TriageWontFix, TriageAcceptedRisk}
}

// Valid reports whether t is a known triage status.
func (t Triage) Valid() bool { return slices.Contains(Triages(), t) }

// Dismissed reports whether t is false_positive, wont_fix or accepted_risk:
// a person decided the issue needs no fix. Scans never change any triage;
// these are the ones that matter.
func (t Triage) Dismissed() bool {
	return t == TriageFalsePositive || t == TriageWontFix || t == TriageAcceptedRisk
}

// ParseTriage returns the triage status named s, or an
// *InvalidArgumentError for field "status".
func ParseTriage(s string) (Triage, error) {
	if t := Triage(s); t.Valid() {
		return t, nil
	}
	return "", invalid("status", "%q is not one of open, under_review, false_positive, wont_fix, accepted_risk", s)
}

// ValidateTriage checks a triage decision made at now: a known status;
// accepted_risk needs expiresAt after now; any other status needs a zero
// expiresAt. Errors name "status" or "expires_at".
func ValidateTriage(status Triage, expiresAt, now time.Time) error {
	if _, err := ParseTriage(string(status)); err != nil {
		return err
	}
	if status == TriageAcceptedRisk {
		if expiresAt.IsZero() {
			return invalid("expires_at", "is required with accepted_risk")
		}
		if !expiresAt.After(now) {
			return invalid("expires_at", "must be in the future")
		}
		return nil
	}
	if !expiresAt.IsZero() {
		return invalid("expires_at", "is allowed only with accepted_risk")
	}
	return nil
}

// Issue is one finding's identity within a repository across scans, keyed by
// fingerprint. State is what scans observe; TriageStatus is what people
// decide, and no scan changes it. The zero value is an issue that does not
// exist yet (Version 0).
type Issue struct {
	ID           string
	RepositoryID string
	Fingerprint  string
	RuleID       string
	Title        string   // as last seen
	Severity     Severity // as last seen
	File         string   // as last seen
	State        IssueState

	TriageStatus    Triage
	TriageNote      string
	TriageExpiresAt time.Time // accepted_risk only
	TriagedBy       string
	TriagedAt       time.Time

	FirstSeenScanID string
	LastSeenScanID  string
	LastFindingID   string
	LastSeenAt      time.Time
	FixedByScanID   string
	Engines         []string // every engine that ever found it, sorted
	OpenedAt        time.Time
	FixedAt         time.Time

	History []IssueHistoryEntry
	Version int // number of events applied
}

// IssueHistoryEntry is one change of an issue's state (by a scan, ScanID
// set) or triage (by a person, Actor set).
type IssueHistoryEntry struct {
	At        time.Time  `json:"at"`
	Actor     string     `json:"actor,omitempty"`
	ScanID    string     `json:"scan_id,omitempty"`
	State     IssueState `json:"state,omitempty"`
	Triage    Triage     `json:"triage,omitempty"`
	Note      string     `json:"note,omitempty"`
	ExpiresAt time.Time  `json:"expires_at,omitzero"`
}

// EffectiveTriage returns the triage status as it reads at now: an
// accepted_risk whose expiry has passed reads open.
func (i *Issue) EffectiveTriage(now time.Time) Triage {
	if i.TriageStatus == TriageAcceptedRisk && !now.Before(i.TriageExpiresAt) {
		return TriageOpen
	}
	return i.TriageStatus
}

// sighting checks that findingID is a finding of the completed scan s in
// repository repositoryID and returns it.
func sighting(s *Scan, repositoryID, findingID string) (Finding, error) {
	switch {
	case s == nil || s.Version == 0:
		return Finding{}, notFound("scan")
	case s.State != ScanStateCompleted:
		return Finding{}, conflict("scan %s is %s; only completed scans classify findings", s.ID, s.State)
	case repositoryID != "" && s.RepositoryID != repositoryID:
		return Finding{}, invalid("scan_id", "scan %s is not of repository %s", s.ID, repositoryID)
	}
	f, ok := s.Finding(findingID)
	if !ok {
		return Finding{}, notFound("finding %s of scan %s", findingID, s.ID)
	}
	return f, nil
}

// OpenIssue decides a new issue id for finding findingID of the completed
// scan s, whose fingerprint has no issue yet in the repository (the caller
// checks that against its index). It returns an *InvalidArgumentError for
// "id", ErrNotFound for an unknown scan or finding, and ErrConflict unless
// the scan completed.
func OpenIssue(id string, s *Scan, findingID string, now time.Time) ([]Event, error) {
	if err := ValidateID("id", id); err != nil {
		return nil, err
	}
	f, err := sighting(s, "", findingID)
	if err != nil {
		return nil, err
	}
	return []Event{IssueOpened{IssueID: id, RepositoryID: s.RepositoryID, Fingerprint: f.Fingerprint, RuleID: f.RuleID,
		Title: f.Title, Severity: f.Severity, File: f.File, Engine: f.Engine, ScanID: s.ID, FindingID: f.ID, At: now}}, nil
}

// FoldIssue rebuilds an issue from its stream. It returns ErrNotFound for an
// empty stream.
func FoldIssue(events []Event) (*Issue, error) {
	if len(events) == 0 {
		return nil, notFound("issue")
	}
	i := new(Issue)
	for _, e := range events {
		if err := i.Apply(e); err != nil {
			return nil, err
		}
	}
	return i, nil
}

// Apply folds one event into the issue and increments Version. It returns
// ErrInvalidHistory for another aggregate's event, a stream that does not
// start with IssueOpened, or a state change from the wrong state.
func (i *Issue) Apply(e Event) error {
	e = deref(e)
	_, creation := e.(IssueOpened)
	if err := checkStart("issue", i.Version, e, creation); err != nil {
		return err
	}
	switch e := e.(type) {
	case IssueOpened:
		*i = Issue{ID: e.IssueID, RepositoryID: e.RepositoryID, Fingerprint: e.Fingerprint, RuleID: e.RuleID,
			Title: e.Title, Severity: e.Severity, File: e.File, State: IssueStateOpen, TriageStatus: TriageOpen,
			FirstSeenScanID: e.ScanID, LastSeenScanID: e.ScanID, LastFindingID: e.FindingID, LastSeenAt: e.At,
			Engines: []string{e.Engine}, OpenedAt: e.At,
			History: []IssueHistoryEntry{{At: e.At, ScanID: e.ScanID, State: IssueStateOpen}}}
	case IssueSeen:
		if i.State != IssueStateOpen {
			return badHistory("issue", i.Version, e, "issue is "+string(i.State))
		}
		i.see(e.ScanID, e.FindingID, e.Engine, e.Title, e.Severity, e.File, e.At)
	case IssueReopened:
		if i.State != IssueStateFixed {
			return badHistory("issue", i.Version, e, "issue is "+string(i.State))
		}
		i.see(e.ScanID, e.FindingID, e.Engine, e.Title, e.Severity, e.File, e.At)
		i.State, i.FixedByScanID, i.FixedAt = IssueStateOpen, "", time.Time{}
		i.History = append(i.History, IssueHistoryEntry{At: e.At, ScanID: e.ScanID, State: IssueStateOpen})
	case IssueFixed:
		if i.State != IssueStateOpen {
			return badHistory("issue", i.Version, e, "issue is "+string(i.State))
		}
		i.State, i.FixedByScanID, i.FixedAt = IssueStateFixed, e.ScanID, e.At
		i.History = append(i.History, IssueHistoryEntry{At: e.At, ScanID: e.ScanID, State: IssueStateFixed})
	case IssueTriaged:
		i.TriageStatus, i.TriageNote, i.TriageExpiresAt, i.TriagedBy, i.TriagedAt = e.Status, e.Note, e.ExpiresAt, e.Actor, e.At
		i.History = append(i.History, IssueHistoryEntry{At: e.At, Actor: e.Actor, Triage: e.Status, Note: e.Note, ExpiresAt: e.ExpiresAt})
	default:
		return badHistory("issue", i.Version, e, "not an issue event")
	}
	i.Version++
	return nil
}

func (i *Issue) see(scanID, findingID, engine, title string, sev Severity, file string, at time.Time) {
	i.LastSeenScanID, i.LastFindingID, i.LastSeenAt = scanID, findingID, at
	i.Title, i.Severity, i.File = title, sev, file
	if !slices.Contains(i.Engines, engine) {
		i.Engines = append(i.Engines, engine)
		slices.Sort(i.Engines)
	}
}

// check verifies that finding findingID of scan s is a sighting of this
// issue.
func (i *Issue) check(s *Scan, findingID string) (Finding, error) {
	if i.Version == 0 {
		return Finding{}, notFound("issue")
	}
	f, err := sighting(s, i.RepositoryID, findingID)
	if err != nil {
		return Finding{}, err
	}
	if f.Fingerprint != i.Fingerprint {
		return Finding{}, invalid("finding_id", "finding %s has another fingerprint than issue %s", f.ID, i.ID)
	}
	return f, nil
}

// Seen decides that the completed scan s found this open issue again
// (finding findingID; "unchanged"). It returns no events when that scan and
// engine were already recorded; ErrConflict when the issue is fixed (use
// Reopen) or the scan did not complete; ErrNotFound for an unknown finding;
// and an *InvalidArgumentError when the finding's fingerprint or the scan's
// repository differs.
func (i *Issue) Seen(s *Scan, findingID string, now time.Time) ([]Event, error) {
	f, err := i.check(s, findingID)
	if err != nil {
		return nil, err
	}
	if i.State != IssueStateOpen {
		return nil, conflict("issue %s is %s; reopen it", i.ID, i.State)
	}
	if i.LastSeenScanID == s.ID && slices.Contains(i.Engines, f.Engine) {
		return nil, nil
	}
	return []Event{IssueSeen{ScanID: s.ID, FindingID: f.ID, Engine: f.Engine, Title: f.Title,
		Severity: f.Severity, File: f.File, At: now}}, nil
}

// Reopen decides that the completed scan s found this fixed issue again:
// fixed to open ("reopened"). Triage is untouched. Errors are as for Seen,
// with ErrConflict when the issue is open.
func (i *Issue) Reopen(s *Scan, findingID string, now time.Time) ([]Event, error) {
	f, err := i.check(s, findingID)
	if err != nil {
		return nil, err
	}
	if i.State != IssueStateFixed {
		return nil, conflict("issue %s is %s, not fixed", i.ID, i.State)
	}
	return []Event{IssueReopened{ScanID: s.ID, FindingID: f.ID, Engine: f.Engine, Title: f.Title,
		Severity: f.Severity, File: f.File, At: now}}, nil
}

// FixableBy reports whether scan s may fix this open issue: s completed, is
// not partial, is of the same repository, ran every engine that ever found
// the issue, and did not find it.
func (i *Issue) FixableBy(s *Scan) bool { return i.fixableBy(s) == nil }

func (i *Issue) fixableBy(s *Scan) error {
	switch {
	case i.Version == 0:
		return notFound("issue")
	case s == nil || s.Version == 0:
		return notFound("scan")
	case s.RepositoryID != i.RepositoryID:
		return invalid("scan_id", "scan %s is not of repository %s", s.ID, i.RepositoryID)
	case i.State != IssueStateOpen:
		return conflict("issue %s is %s", i.ID, i.State)
	case s.State != ScanStateCompleted:
		return conflict("scan %s is %s; only a completed scan fixes issues", s.ID, s.State)
	case s.Partial:
		return conflict("scan %s is partial; a partial scan fixes nothing", s.ID)
	case s.HasFingerprint(i.Fingerprint):
		return conflict("scan %s found issue %s", s.ID, i.ID)
	}
	for _, e := range i.Engines {
		if !slices.Contains(s.Engines, e) {
			return conflict("scan %s did not run engine %s, which found issue %s", s.ID, e, i.ID)
		}
	}
	return nil
}

// Fix decides that scan s shows this issue fixed: open to fixed. Triage is
// untouched. It returns ErrConflict unless FixableBy(s) holds (naming the
// reason), ErrNotFound for a missing issue or scan, and an
// *InvalidArgumentError for a scan of another repository.
func (i *Issue) Fix(s *Scan, now time.Time) ([]Event, error) {
	if err := i.fixableBy(s); err != nil {
		return nil, err
	}
	return []Event{IssueFixed{ScanID: s.ID, At: now}}, nil
}

// Triage decides a person's (actor's) triage of the issue, open or fixed,
// following ValidateTriage; note is optional, at most MaxNoteLength runes.
// It returns an *InvalidArgumentError naming "actor", "status", "note" or
// "expires_at", and ErrNotFound for a missing issue.
func (i *Issue) Triage(actor string, status Triage, note string, expiresAt, now time.Time) ([]Event, error) {
	if err := ValidateID("actor", actor); err != nil {
		return nil, err
	}
	if err := ValidateTriage(status, expiresAt, now); err != nil {
		return nil, err
	}
	note, err := ValidateText("note", note, MaxNoteLength)
	if err != nil {
		return nil, err
	}
	if i.Version == 0 {
		return nil, notFound("issue")
	}
	return []Event{IssueTriaged{Status: status, Note: note, ExpiresAt: expiresAt, Actor: actor, At: now}}, nil
}
