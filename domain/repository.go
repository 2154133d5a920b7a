package domain

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"time"
)

// Repository is one code base of a project. It owns its snapshots and its
// threat-profile versions. The zero value is a repository that does not exist
// yet (Version 0).
type Repository struct {
	ID        string
	ProjectID string
	Name      string
	Source    Source
	CreatedAt time.Time
	Removed   bool
	RemovedAt time.Time
	Snapshots []Snapshot      // in the order they were requested or captured
	Profiles  []ThreatProfile // Profiles[i].Version == i+1
	Version   int             // number of events applied

	snapshots map[string]int // snapshot ID -> index in Snapshots
}

// SnapshotStatus is a snapshot's lifecycle state.
type SnapshotStatus string

// Snapshot statuses.
const (
	SnapshotStatusPending  SnapshotStatus = "pending" // a git capture was requested
	SnapshotStatusCaptured SnapshotStatus = "captured"
	SnapshotStatusFailed   SnapshotStatus = "failed"
)

// Snapshot is an immutable capture of a repository's files.
type Snapshot struct {
	ID          string         `json:"id"`
	Status      SnapshotStatus `json:"status"`
	Ref         string         `json:"ref,omitempty"`
	Digest      string         `json:"digest,omitempty"`
	SizeBytes   int64          `json:"size_bytes"`
	FileCount   int            `json:"file_count"`
	Commit      string         `json:"commit,omitempty"`
	Error       string         `json:"error,omitempty"`
	RequestedAt time.Time      `json:"requested_at,omitzero"`
	CapturedAt  time.Time      `json:"captured_at,omitzero"`
	FailedAt    time.Time      `json:"failed_at,omitzero"`
}

// Capture describes a captured snapshot's content.
type Capture struct {
	Digest    string // "sha256:" + 64 lower-case hex digits
	SizeBytes int64
	FileCount int
	Commit    string // git: the 40 or 64 hex digit commit; archive: empty
}

var (
	digestRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	commitRe = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
)

// Validate checks the capture. Errors name "digest", "size_bytes",
// "file_count" or "commit".
func (c Capture) Validate() error {
	switch {
	case !digestRe.MatchString(c.Digest):
		return invalid("digest", "must be \"sha256:\" and 64 lower-case hex digits")
	case c.SizeBytes < 0:
		return invalid("size_bytes", "must not be negative")
	case c.FileCount < 0:
		return invalid("file_count", "must not be negative")
	case c.Commit != "" && !commitRe.MatchString(c.Commit):
		return invalid("commit", "must be 40 or 64 lower-case hex digits")
	}
	return nil
}

// ThreatProfile says what risks matter for a repository's scans. Version 0
// is the default profile (see DefaultThreatProfile); defined versions count
// from 1.
type ThreatProfile struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Categories  []Category `json:"categories"`
	MinSeverity Severity   `json:"min_severity"`
	Include     []string   `json:"include"`
	Exclude     []string   `json:"exclude"`
	Engines     []string   `json:"engines"`
	LLMBudget   LLMBudget  `json:"llm_budget"`
	Version     int        `json:"version"`
}

// DefaultThreatProfileName is the name of the default profile and of a
// defined profile whose name was left empty.
const DefaultThreatProfileName = "default"

// DefaultThreatProfile returns the profile in force before any is defined:
// all four categories, min_severity low, include "**", no excludes, engines
// ["builtin"], no LLM budget limits, version 0.
func DefaultThreatProfile() ThreatProfile {
	return ThreatProfile{
		Name:        DefaultThreatProfileName,
		Categories:  Categories(),
		MinSeverity: SeverityLow,
		Include:     []string{"**"},
		Exclude:     []string{},
		Engines:     []string{EngineBuiltin},
	}
}

// LLMBudget caps a scan's LLM use. A zero limit is not set: the LLM proxy's
// installation-wide default applies to it. MaxConcurrent is enforced by the
// proxy at request time and never recorded as exceeded.
type LLMBudget struct {
	MaxTokens     int64   `json:"max_tokens"`
	MaxCostUSD    float64 `json:"max_cost_usd"`
	MaxRequests   int64   `json:"max_requests"`
	MaxConcurrent int     `json:"max_concurrent"`
}

// Validate checks that every limit is finite and not negative. Errors name
// "llm_budget.<limit>".
func (b LLMBudget) Validate() error {
	switch {
	case b.MaxTokens < 0:
		return invalid("llm_budget.max_tokens", "must not be negative")
	case b.MaxCostUSD < 0 || math.IsNaN(b.MaxCostUSD) || math.IsInf(b.MaxCostUSD, 0):
		return invalid("llm_budget.max_cost_usd", "must be a finite number, not negative")
	case b.MaxRequests < 0:
		return invalid("llm_budget.max_requests", "must not be negative")
	case b.MaxConcurrent < 0:
		return invalid("llm_budget.max_concurrent", "must not be negative")
	}
	return nil
}

// Exhausted reports the first cumulative limit that total has reached
// ("max_tokens", "max_cost_usd" or "max_requests"): no further LLM call fits.
// Reaching a limit exactly counts, since the next call would pass it.
func (b LLMBudget) Exhausted(total LLMUsage) (limit string, exhausted bool) {
	switch {
	case b.MaxTokens > 0 && total.InputTokens+total.OutputTokens >= b.MaxTokens:
		return "max_tokens", true
	case b.MaxCostUSD > 0 && total.CostUSD >= b.MaxCostUSD:
		return "max_cost_usd", true
	case b.MaxRequests > 0 && total.Requests >= b.MaxRequests:
		return "max_requests", true
	}
	return "", false
}

// Normalize fills omitted fields from DefaultThreatProfile and validates the
// result. Omitted means nil for lists (JSON absent or null) and empty for
// name and min_severity; an explicitly empty list ([]) of categories,
// include patterns or engines is an error, since it would scan nothing.
// Categories are returned in canonical order. Version is left unchanged.
// Errors are *InvalidArgumentError values naming the field.
func (tp ThreatProfile) Normalize() (ThreatProfile, error) {
	def := DefaultThreatProfile()
	var err error
	if tp.Name == "" {
		tp.Name = def.Name
	}
	if tp.Name, err = ValidateName("name", tp.Name); err != nil {
		return ThreatProfile{}, err
	}
	if tp.Description, err = ValidateText("description", tp.Description, MaxDescriptionLength); err != nil {
		return ThreatProfile{}, err
	}
	if tp.Categories == nil {
		tp.Categories = def.Categories
	}
	if len(tp.Categories) == 0 {
		return ThreatProfile{}, invalid("categories", "at least one category is required")
	}
	for i, c := range tp.Categories {
		if !c.Valid() {
			return ThreatProfile{}, invalid(fmt.Sprintf("categories[%d]", i), "%q is not one of secrets, injection, crypto, config", c)
		}
	}
	var cats []Category
	for _, c := range Categories() {
		if slices.Contains(tp.Categories, c) {
			cats = append(cats, c)
		}
	}
	tp.Categories = cats
	if tp.MinSeverity == "" {
		tp.MinSeverity = def.MinSeverity
	}
	if !tp.MinSeverity.Valid() {
		return ThreatProfile{}, invalid("min_severity", "%q is not one of critical, high, medium, low, info", tp.MinSeverity)
	}
	if tp.Include == nil {
		tp.Include = def.Include
	}
	if len(tp.Include) == 0 {
		return ThreatProfile{}, invalid("include", "at least one pattern is required (\"**\" for everything)")
	}
	if tp.Exclude == nil {
		tp.Exclude = []string{}
	}
	for _, l := range []struct {
		field string
		globs []string
	}{{"include", tp.Include}, {"exclude", tp.Exclude}} {
		if len(l.globs) > MaxGlobs {
			return ThreatProfile{}, invalid(l.field, "at most %d patterns", MaxGlobs)
		}
		for i, g := range l.globs {
			if err := validateGlob(fmt.Sprintf("%s[%d]", l.field, i), g); err != nil {
				return ThreatProfile{}, err
			}
		}
	}
	if tp.Engines == nil {
		tp.Engines = def.Engines
	}
	if err := ValidateEngines("engines", tp.Engines); err != nil {
		return ThreatProfile{}, err
	}
	if err := tp.LLMBudget.Validate(); err != nil {
		return ThreatProfile{}, err
	}
	return tp.clone(), nil
}

// clone copies the profile's slices, so that events and states never share
// them.
func (tp ThreatProfile) clone() ThreatProfile {
	tp.Categories = slices.Clone(tp.Categories)
	tp.Include = slices.Clone(tp.Include)
	tp.Exclude = slices.Clone(tp.Exclude)
	tp.Engines = slices.Clone(tp.Engines)
	return tp
}

// NewRepository decides the addition of a repository to project p. It
// returns an *InvalidArgumentError naming "id", "name" or "source.…", and
// ErrConflict when p is archived.
func NewRepository(p *Project, id, name string, src Source, policy SourcePolicy, now time.Time) ([]Event, error) {
	if err := ValidateID("id", id); err != nil {
		return nil, err
	}
	name, err := ValidateName("name", name)
	if err != nil {
		return nil, err
	}
	if err := src.Validate(policy); err != nil {
		return nil, err
	}
	if p == nil || p.Version == 0 {
		return nil, notFound("project")
	}
	if err := p.EnsureActive(); err != nil {
		return nil, err
	}
	return []Event{RepositoryAdded{RepositoryID: id, ProjectID: p.ID, Name: name, Source: src, At: now}}, nil
}

// FoldRepository rebuilds a repository from its stream. It returns
// ErrNotFound for an empty stream.
func FoldRepository(events []Event) (*Repository, error) {
	if len(events) == 0 {
		return nil, notFound("repository")
	}
	r := new(Repository)
	for _, e := range events {
		if err := r.Apply(e); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Apply folds one event into the repository and increments Version. It
// rejects events of other aggregates, a stream that does not start with
// RepositoryAdded, and snapshot events for unknown snapshots.
func (r *Repository) Apply(e Event) error {
	e = deref(e)
	_, creation := e.(RepositoryAdded)
	if err := checkStart("repository", r.Version, e, creation); err != nil {
		return err
	}
	switch e := e.(type) {
	case RepositoryAdded:
		*r = Repository{ID: e.RepositoryID, ProjectID: e.ProjectID, Name: e.Name, Source: e.Source,
			CreatedAt: e.At, snapshots: map[string]int{}}
	case RepositoryRemoved:
		r.Removed, r.RemovedAt = true, e.At
	case SnapshotRequested:
		if _, ok := r.snapshots[e.SnapshotID]; ok {
			return badHistory("repository", r.Version, e, "duplicate snapshot "+e.SnapshotID)
		}
		r.snapshots[e.SnapshotID] = len(r.Snapshots)
		r.Snapshots = append(r.Snapshots, Snapshot{ID: e.SnapshotID, Status: SnapshotStatusPending, Ref: e.Ref, RequestedAt: e.At})
	case SnapshotCaptured:
		i, ok := r.snapshots[e.SnapshotID]
		if !ok {
			i = len(r.Snapshots)
			r.snapshots[e.SnapshotID] = i
			r.Snapshots = append(r.Snapshots, Snapshot{ID: e.SnapshotID})
		}
		s := &r.Snapshots[i]
		s.Status, s.Digest, s.SizeBytes, s.FileCount, s.Commit, s.CapturedAt =
			SnapshotStatusCaptured, e.Digest, e.SizeBytes, e.FileCount, e.Commit, e.At
	case SnapshotFailed:
		i, ok := r.snapshots[e.SnapshotID]
		if !ok {
			return badHistory("repository", r.Version, e, "unknown snapshot "+e.SnapshotID)
		}
		s := &r.Snapshots[i]
		s.Status, s.Error, s.FailedAt = SnapshotStatusFailed, e.Error, e.At
	case ThreatProfileDefined:
		if e.Profile.Version != len(r.Profiles)+1 {
			return badHistory("repository", r.Version, e, fmt.Sprintf("profile version %d does not follow %d", e.Profile.Version, len(r.Profiles)))
		}
		r.Profiles = append(r.Profiles, e.Profile)
	default:
		return badHistory("repository", r.Version, e, "not a repository event")
	}
	r.Version++
	return nil
}

// EnsureActive returns nil for a repository in use and an error wrapping
// ErrNotFound for a removed one: for users, a removed repository is gone.
func (r *Repository) EnsureActive() error {
	if r.Removed {
		return notFound("repository %s was removed", r.ID)
	}
	return nil
}

// Snapshot returns the snapshot with the given ID.
func (r *Repository) Snapshot(id string) (Snapshot, bool) {
	i, ok := r.snapshots[id]
	if !ok {
		return Snapshot{}, false
	}
	return r.Snapshots[i], true
}

// LatestCaptured returns the most recently captured snapshot.
func (r *Repository) LatestCaptured() (Snapshot, bool) {
	var best Snapshot
	found := false
	for _, s := range r.Snapshots {
		if s.Status == SnapshotStatusCaptured && (!found || !s.CapturedAt.Before(best.CapturedAt)) {
			best, found = s, true
		}
	}
	return best, found
}

// ThreatProfile returns the current profile: the latest defined version, or
// DefaultThreatProfile before any is defined.
func (r *Repository) ThreatProfile() ThreatProfile {
	if n := len(r.Profiles); n > 0 {
		return r.Profiles[n-1]
	}
	return DefaultThreatProfile()
}

// Remove decides the removal of the repository. It returns ErrNotFound when
// it was already removed.
func (r *Repository) Remove(now time.Time) ([]Event, error) {
	if err := r.EnsureActive(); err != nil {
		return nil, err
	}
	return []Event{RepositoryRemoved{At: now}}, nil
}

// RequestSnapshot decides a git capture of ref (empty: the source's ref).
// It returns an *InvalidArgumentError for "snapshot_id" or "ref", or for
// "source.kind" when the repository is an archive repository; ErrConflict
// for a duplicate snapshot ID; ErrNotFound when the repository was removed.
func (r *Repository) RequestSnapshot(snapshotID, ref string, now time.Time) ([]Event, error) {
	if err := ValidateID("snapshot_id", snapshotID); err != nil {
		return nil, err
	}
	if err := ValidateGitRef("ref", ref); err != nil {
		return nil, err
	}
	if err := r.EnsureActive(); err != nil {
		return nil, err
	}
	if r.Source.Kind != SourceGit {
		return nil, invalid("source.kind", "repository %s is an %s repository; upload an archive instead", r.ID, r.Source.Kind)
	}
	if _, ok := r.snapshots[snapshotID]; ok {
		return nil, conflict("snapshot %s already exists", snapshotID)
	}
	if ref == "" {
		ref = r.Source.Ref
	}
	return []Event{SnapshotRequested{SnapshotID: snapshotID, Ref: ref, At: now}}, nil
}

// CaptureSnapshot decides that snapshotID was captured with content c: an
// uploaded archive for an archive repository (a new snapshot ID), or the end
// of a pending git capture. It returns an *InvalidArgumentError for
// "snapshot_id", "source.kind" or a Capture field (commit: required for
// git, absent for archives), ErrConflict when the
// snapshot is not pending, ErrNotFound when the repository was removed.
func (r *Repository) CaptureSnapshot(snapshotID string, c Capture, now time.Time) ([]Event, error) {
	if err := ValidateID("snapshot_id", snapshotID); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := r.EnsureActive(); err != nil {
		return nil, err
	}
	s, ok := r.Snapshot(snapshotID)
	switch {
	case ok && s.Status != SnapshotStatusPending:
		return nil, conflict("snapshot %s is already %s", snapshotID, s.Status)
	case !ok && r.Source.Kind != SourceArchive:
		return nil, invalid("source.kind", "repository %s is a %s repository; request a git capture instead", r.ID, r.Source.Kind)
	case r.Source.Kind == SourceArchive && c.Commit != "":
		return nil, invalid("commit", "an archive snapshot has no commit")
	case r.Source.Kind == SourceGit && c.Commit == "":
		return nil, invalid("commit", "a git snapshot needs its commit")
	}
	return []Event{SnapshotCaptured{SnapshotID: snapshotID, Digest: c.Digest, SizeBytes: c.SizeBytes,
		FileCount: c.FileCount, Commit: c.Commit, At: now}}, nil
}

// FailSnapshot decides that a pending git capture failed; reason is kept up
// to MaxReasonLength runes. It returns ErrNotFound for an unknown snapshot
// and ErrConflict when it is not pending. It is allowed on a removed
// repository, so that in-flight captures still end.
func (r *Repository) FailSnapshot(snapshotID, reason string, now time.Time) ([]Event, error) {
	s, ok := r.Snapshot(snapshotID)
	if !ok {
		return nil, notFound("snapshot %s", snapshotID)
	}
	if s.Status != SnapshotStatusPending {
		return nil, conflict("snapshot %s is already %s", snapshotID, s.Status)
	}
	reason = truncate(reason, MaxReasonLength)
	if reason == "" {
		reason = "capture failed"
	}
	return []Event{SnapshotFailed{SnapshotID: snapshotID, Error: reason, At: now}}, nil
}

// DefineThreatProfile decides a new profile version from tp (normalized by
// ThreatProfile.Normalize; tp.Version is ignored). The new version is the
// current one plus one. It returns an *InvalidArgumentError naming the field
// and ErrNotFound when the repository was removed.
func (r *Repository) DefineThreatProfile(tp ThreatProfile, now time.Time) ([]Event, error) {
	tp, err := tp.Normalize()
	if err != nil {
		return nil, err
	}
	if err := r.EnsureActive(); err != nil {
		return nil, err
	}
	tp.Version = len(r.Profiles) + 1
	return []Event{ThreatProfileDefined{Profile: tp, At: now}}, nil
}
