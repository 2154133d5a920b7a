package domain

import (
	"crypto/sha256"
	"math/big"
	"slices"
	"time"
)

// Classification: when a scan completes, each of its findings is matched by
// fingerprint to its repository's issues — new (no issue yet), unchanged
// (issue open), reopened (issue fixed) — and open issues the scan did not
// find become fixed when the scan may fix them (Issue.FixableBy).
//
// Two aggregates carry it besides the issues themselves:
//
//   - IssueIndex, on stream issueindex-<repository id>, is the repository's
//     classification log: one decision (IssueIndexUpdated, in parts) per
//     classified scan, recording only what changed (issues opened, reopened,
//     fixed, or seen by a new engine). Folding it gives every issue of the
//     repository by fingerprint with its state and engines, without a read
//     model, and appending a decision at the index's version serialises the
//     classifications of one repository.
//   - ScanClassified, on the scan's own stream, records the outcome for the
//     scan: which findings opened or reopened an issue (every other finding
//     is unchanged), which issues it fixed, and the scan it was compared
//     with. Projections fill a finding's diff and issue_id from it; the
//     issue_id of any finding is IssueID(repository, fingerprint).
//
// Order: scans are classified in the order they were requested (ScanOrder).
// A scan requested before the latest scan already classified in its
// repository is stale: its findings still open issues that do not exist
// yet (so every finding has an issue), but it changes no existing issue —
// no sighting, no reopen, no fix — because the newer scan's view of the code
// is the current one. In particular a scan older than an issue's last
// sighting never fixes it.

// Finding diffs, as the API names them.
const (
	DiffNew       = "new"
	DiffUnchanged = "unchanged"
	DiffReopened  = "reopened"
)

// Limits of the classification events: a decision or an outcome larger than
// this is split into parts appended in one atomic call, so that no event
// nears eventstore.MaxEventDataBytes (an ID is about 30 bytes of JSON, an
// index entry about 110).
const (
	MaxClassifiedIDsPerEvent = 20000 // finding and issue IDs in one ScanClassified
	MaxIndexEntriesPerEvent  = 10000 // entries in one IssueIndexUpdated
)

// crockford is the ULID alphabet (Crockford's base 32).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IssueID returns the ID of the issue of fingerprint in repository: a ULID
// (26 characters of Crockford base 32, as ulid.ParseStrict accepts) whose 16
// bytes are the first 16 bytes of SHA-256("vega-issue\x00" + repositoryID +
// "\x00" + fingerprint). Deriving it, rather than drawing a random one,
// means that two classifiers racing on one fingerprint both write to the
// same stream, so the second create fails on the stream's expected version
// instead of opening a second issue. Its time part is meaningless.
func IssueID(repositoryID, fingerprint string) string {
	sum := sha256.Sum256([]byte("vega-issue\x00" + repositoryID + "\x00" + fingerprint))
	n := new(big.Int).SetBytes(sum[:16])
	var out [26]byte
	mask := big.NewInt(31)
	var d big.Int
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = crockford[d.And(n, mask).Int64()]
		n.Rsh(n, 5)
	}
	return string(out[:])
}

// ScanOrder reports whether scan a was requested before scan b: by
// RequestedAt, then by ID (ULIDs of one process grow monotonically).
func ScanOrder(aRequestedAt time.Time, aID string, bRequestedAt time.Time, bID string) bool {
	if !aRequestedAt.Equal(bRequestedAt) {
		return aRequestedAt.Before(bRequestedAt)
	}
	return aID < bID
}

// ScanClassified records, on a completed scan's stream, the outcome of its
// classification. New and Reopened list the finding IDs whose issue the
// scan opened or reopened; every other finding of the scan is unchanged.
// Fixed lists the IDs of the issues it fixed. A large outcome is split into
// Parts events (numbered from 1) appended together; lists accumulate.
type ScanClassified struct {
	BaseScanID string    `json:"base_scan_id,omitempty"` // the latest scan classified before; "" for a first scan
	Stale      bool      `json:"stale,omitempty"`        // requested before BaseScanID: changed no existing issue
	New        []string  `json:"new,omitempty"`
	Reopened   []string  `json:"reopened,omitempty"`
	Fixed      []string  `json:"fixed,omitempty"`
	Part       int       `json:"part"`
	Parts      int       `json:"parts"`
	At         time.Time `json:"at"`
}

// EventName returns "ScanClassified".
func (ScanClassified) EventName() string { return "ScanClassified" }

// Classification is a scan's classification outcome (see ScanClassified).
type Classification struct {
	BaseScanID string
	Stale      bool
	New        []string // finding IDs
	Reopened   []string // finding IDs
	Fixed      []string // issue IDs
	At         time.Time
}

// Diffs returns a function giving the diff of a finding of the scan by its
// ID: new, reopened or unchanged. It indexes the lists once.
func (c *Classification) Diffs() func(findingID string) string {
	m := make(map[string]string, len(c.New)+len(c.Reopened))
	for _, id := range c.New {
		m[id] = DiffNew
	}
	for _, id := range c.Reopened {
		m[id] = DiffReopened
	}
	return func(findingID string) string {
		if d, ok := m[findingID]; ok {
			return d
		}
		return DiffUnchanged
	}
}

// Classified reports whether every part of the scan's classification has
// been applied.
func (s *Scan) Classified() bool {
	return s.Classification != nil && s.classParts == s.classTotal
}

// Classify decides to record classification c of the completed scan s. It
// returns no events when s is already classified (so classifying twice
// changes nothing); an *InvalidArgumentError naming "base_scan_id", "new",
// "reopened" or "fixed" for an unknown, repeated or malformed ID; and
// ErrConflict unless the scan completed. Large outcomes come back as
// several events, each with at most MaxClassifiedIDsPerEvent IDs.
func (s *Scan) Classify(c Classification, now time.Time) ([]Event, error) {
	if err := s.during("classification", ScanStateCompleted); err != nil {
		return nil, err
	}
	if s.Classification != nil {
		return nil, nil
	}
	if c.BaseScanID != "" {
		if err := ValidateID("base_scan_id", c.BaseScanID); err != nil {
			return nil, err
		}
		if c.BaseScanID == s.ID {
			return nil, invalid("base_scan_id", "a scan is not its own base")
		}
	}
	seen := map[string]string{}
	for _, l := range []struct {
		field string
		ids   []string
	}{{"new", c.New}, {"reopened", c.Reopened}} {
		for _, id := range l.ids {
			if _, ok := s.findings[id]; !ok {
				return nil, invalid(l.field, "%q is not a finding of scan %s", id, s.ID)
			}
			if other, dup := seen[id]; dup {
				return nil, invalid(l.field, "finding %s is listed twice (also in %s)", id, other)
			}
			seen[id] = l.field
		}
	}
	fixed := make(map[string]struct{}, len(c.Fixed))
	for _, id := range c.Fixed {
		if err := ValidateID("fixed", id); err != nil {
			return nil, err
		}
		if _, dup := fixed[id]; dup {
			return nil, invalid("fixed", "issue %s is listed twice", id)
		}
		fixed[id] = struct{}{}
	}
	// Split the three lists into parts of at most MaxClassifiedIDsPerEvent.
	type item struct {
		list int
		id   string
	}
	var all []item
	for li, l := range [][]string{c.New, c.Reopened, c.Fixed} {
		for _, id := range l {
			all = append(all, item{li, id})
		}
	}
	parts := max(1, (len(all)+MaxClassifiedIDsPerEvent-1)/MaxClassifiedIDsPerEvent)
	events := make([]Event, 0, parts)
	for p := range parts {
		e := ScanClassified{BaseScanID: c.BaseScanID, Stale: c.Stale, Part: p + 1, Parts: parts, At: now}
		for _, it := range all[p*MaxClassifiedIDsPerEvent : min(len(all), (p+1)*MaxClassifiedIDsPerEvent)] {
			switch it.list {
			case 0:
				e.New = append(e.New, it.id)
			case 1:
				e.Reopened = append(e.Reopened, it.id)
			default:
				e.Fixed = append(e.Fixed, it.id)
			}
		}
		events = append(events, e)
	}
	return events, nil
}

// applyClassified folds one part of a ScanClassified.
func (s *Scan) applyClassified(e ScanClassified) error {
	switch {
	case s.State != ScanStateCompleted:
		return badHistory("scan", s.Version, e, "scan is "+string(s.State)+", not completed")
	case e.Parts < 1 || e.Part != s.classParts+1 || e.Part > e.Parts || (s.classTotal != 0 && e.Parts != s.classTotal):
		return badHistory("scan", s.Version, e, "classification part out of order")
	}
	if s.Classification == nil {
		s.Classification = &Classification{BaseScanID: e.BaseScanID, Stale: e.Stale, At: e.At}
		s.classTotal = e.Parts
	}
	c := s.Classification
	c.New = append(c.New, e.New...)
	c.Reopened = append(c.Reopened, e.Reopened...)
	c.Fixed = append(c.Fixed, e.Fixed...)
	s.classParts++
	return nil
}

// IndexedIssue is one issue in an IssueIndexUpdated: its fingerprint (the
// issue's ID is IssueID(repository, fingerprint)) and the engine that found
// it, for opened, reopened and seen entries.
type IndexedIssue struct {
	Fingerprint string `json:"fingerprint"`
	Engine      string `json:"engine,omitempty"`
}

// IssueIndexUpdated records one part of the classification decision for
// scan ScanID, on stream issueindex-<repository id>: the issues it opens,
// the fixed issues it reopens, the open issues it saw with an engine that
// had not found them before, and the open issues it fixes (fingerprints).
// Issues seen again by an engine that already found them are not listed.
// A large decision is split into Parts events appended together.
type IssueIndexUpdated struct {
	RepositoryID    string         `json:"repository_id"`
	ScanID          string         `json:"scan_id"`
	ScanRequestedAt time.Time      `json:"scan_requested_at"`
	BaseScanID      string         `json:"base_scan_id,omitempty"`
	Stale           bool           `json:"stale,omitempty"`
	Partial         bool           `json:"partial,omitempty"`
	Opened          []IndexedIssue `json:"opened,omitempty"`
	Reopened        []IndexedIssue `json:"reopened,omitempty"`
	Seen            []IndexedIssue `json:"seen,omitempty"`
	Fixed           []string       `json:"fixed,omitempty"`
	Part            int            `json:"part"`
	Parts           int            `json:"parts"`
	At              time.Time      `json:"at"`
}

// EventName returns "IssueIndexUpdated".
func (IssueIndexUpdated) EventName() string { return "IssueIndexUpdated" }

// IndexEntry is an issue as the index knows it.
type IndexEntry struct {
	State   IssueState
	Engines []string // sorted
}

// IndexDecision is one scan's classification decision: the
// IssueIndexUpdated parts merged.
type IndexDecision struct {
	ScanID          string
	ScanRequestedAt time.Time
	BaseScanID      string
	Stale           bool
	Opened          []IndexedIssue
	Reopened        []IndexedIssue
	Seen            []IndexedIssue
	Fixed           []string // fingerprints
}

// IssueIndex is a repository's classification log folded: every issue by
// fingerprint, the latest classified scan in request order, and the last
// decision appended (Tail), which a classifier applies to the issues and
// the scan after appending it. The zero value is an empty index (Version
// 0): a repository no scan has been classified in.
type IssueIndex struct {
	RepositoryID    string
	Issues          map[string]*IndexEntry // by fingerprint
	LastScanID      string                 // latest classified scan in request order
	LastRequestedAt time.Time
	Tail            *IndexDecision // the last decision, complete once every part is applied
	Version         int

	scans     map[string]struct{} // scans with a decision
	tailParts int
	tailTotal int
}

// FoldIssueIndex rebuilds an index from its stream. It returns ErrNotFound
// for an empty stream.
func FoldIssueIndex(events []Event) (*IssueIndex, error) {
	if len(events) == 0 {
		return nil, notFound("issue index")
	}
	x := new(IssueIndex)
	for _, e := range events {
		if err := x.Apply(e); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// Decided reports whether the index holds a decision for scanID.
func (x *IssueIndex) Decided(scanID string) bool {
	_, ok := x.scans[scanID]
	return ok
}

// Stale reports whether scan s was requested before the latest scan
// classified in the index (see ScanOrder).
func (x *IssueIndex) Stale(s *Scan) bool {
	return x.LastScanID != "" && ScanOrder(s.RequestedAt, s.ID, x.LastRequestedAt, x.LastScanID)
}

// Decide classifies the completed scan s against the index: for each
// finding, by fingerprint, no issue → opened; an open issue → unchanged
// (listed in Seen only when s's engine had not found it); a fixed issue →
// reopened. Open issues that s did not find are fixed when s is not stale,
// not partial, and ran every engine that found them. A stale scan (see
// Stale) only opens issues. It returns no events when the index already
// holds a decision for s, ErrConflict unless s completed, and an
// *InvalidArgumentError for "scan_id" when s is of another repository.
func (x *IssueIndex) Decide(s *Scan, now time.Time) ([]Event, error) {
	switch {
	case s == nil || s.Version == 0:
		return nil, notFound("scan")
	case s.State != ScanStateCompleted:
		return nil, conflict("scan %s is %s; only completed scans are classified", s.ID, s.State)
	case x.RepositoryID != "" && x.RepositoryID != s.RepositoryID:
		return nil, invalid("scan_id", "scan %s is not of repository %s", s.ID, x.RepositoryID)
	case x.Decided(s.ID):
		return nil, nil
	}
	d := IndexDecision{ScanID: s.ID, ScanRequestedAt: s.RequestedAt, BaseScanID: x.LastScanID, Stale: x.Stale(s)}
	for _, f := range s.Findings {
		e := x.Issues[f.Fingerprint]
		switch {
		case e == nil:
			d.Opened = append(d.Opened, IndexedIssue{Fingerprint: f.Fingerprint, Engine: f.Engine})
		case d.Stale:
		case e.State == IssueStateFixed:
			d.Reopened = append(d.Reopened, IndexedIssue{Fingerprint: f.Fingerprint, Engine: f.Engine})
		case !slices.Contains(e.Engines, f.Engine):
			d.Seen = append(d.Seen, IndexedIssue{Fingerprint: f.Fingerprint, Engine: f.Engine})
		}
	}
	if !d.Stale && !s.Partial {
		for fp, e := range x.Issues {
			if e.State == IssueStateOpen && !s.HasFingerprint(fp) && subset(e.Engines, s.Engines) {
				d.Fixed = append(d.Fixed, fp)
			}
		}
		slices.Sort(d.Fixed)
	}
	return d.events(x.repositoryOr(s.RepositoryID), s.Partial, now), nil
}

func (x *IssueIndex) repositoryOr(id string) string {
	if x.RepositoryID != "" {
		return x.RepositoryID
	}
	return id
}

func subset(small, big []string) bool {
	for _, e := range small {
		if !slices.Contains(big, e) {
			return false
		}
	}
	return true
}

// events splits the decision into parts of at most MaxIndexEntriesPerEvent
// entries.
func (d IndexDecision) events(repositoryID string, partial bool, now time.Time) []Event {
	total := len(d.Opened) + len(d.Reopened) + len(d.Seen) + len(d.Fixed)
	parts := max(1, (total+MaxIndexEntriesPerEvent-1)/MaxIndexEntriesPerEvent)
	events := make([]Event, parts)
	lists := [][]IndexedIssue{d.Opened, d.Reopened, d.Seen}
	li, pos, fixed := 0, 0, 0
	for p := range parts {
		e := IssueIndexUpdated{RepositoryID: repositoryID, ScanID: d.ScanID, ScanRequestedAt: d.ScanRequestedAt,
			BaseScanID: d.BaseScanID, Stale: d.Stale, Partial: partial, Part: p + 1, Parts: parts, At: now}
		for n := 0; n < MaxIndexEntriesPerEvent; n++ {
			for li < len(lists) && pos == len(lists[li]) {
				li, pos = li+1, 0
			}
			if li < len(lists) {
				it := lists[li][pos]
				pos++
				switch li {
				case 0:
					e.Opened = append(e.Opened, it)
				case 1:
					e.Reopened = append(e.Reopened, it)
				default:
					e.Seen = append(e.Seen, it)
				}
				continue
			}
			if fixed == len(d.Fixed) {
				break
			}
			e.Fixed = append(e.Fixed, d.Fixed[fixed])
			fixed++
		}
		events[p] = e
	}
	return events
}

// Apply folds one event into the index and increments Version. It returns
// ErrInvalidHistory for another aggregate's event, an event of another
// repository, parts out of order, or a change the index cannot make
// (opening an issue that exists, reopening one that is not fixed, fixing
// one that is not open).
func (x *IssueIndex) Apply(e Event) error {
	e = deref(e)
	ev, ok := e.(IssueIndexUpdated)
	if !ok {
		return badHistory("issue index", x.Version, e, "not an issue index event")
	}
	switch {
	case x.RepositoryID != "" && ev.RepositoryID != x.RepositoryID:
		return badHistory("issue index", x.Version, e, "event of repository "+ev.RepositoryID)
	case ev.Parts < 1 || ev.Part < 1 || ev.Part > ev.Parts:
		return badHistory("issue index", x.Version, e, "bad part numbers")
	}
	if ev.Part == 1 {
		if x.Tail != nil && x.tailParts != x.tailTotal {
			return badHistory("issue index", x.Version, e, "previous decision is incomplete")
		}
		if x.Decided(ev.ScanID) {
			return badHistory("issue index", x.Version, e, "scan "+ev.ScanID+" already has a decision")
		}
		if x.Issues == nil {
			x.Issues, x.scans = map[string]*IndexEntry{}, map[string]struct{}{}
		}
		x.RepositoryID = ev.RepositoryID
		x.scans[ev.ScanID] = struct{}{}
		x.Tail = &IndexDecision{ScanID: ev.ScanID, ScanRequestedAt: ev.ScanRequestedAt, BaseScanID: ev.BaseScanID, Stale: ev.Stale}
		x.tailParts, x.tailTotal = 0, ev.Parts
		if x.LastScanID == "" || ScanOrder(x.LastRequestedAt, x.LastScanID, ev.ScanRequestedAt, ev.ScanID) {
			x.LastScanID, x.LastRequestedAt = ev.ScanID, ev.ScanRequestedAt
		}
	} else if x.Tail == nil || x.Tail.ScanID != ev.ScanID || ev.Part != x.tailParts+1 || ev.Parts != x.tailTotal {
		return badHistory("issue index", x.Version, e, "classification part out of order")
	}
	for _, it := range ev.Opened {
		if x.Issues[it.Fingerprint] != nil {
			return badHistory("issue index", x.Version, e, "issue "+it.Fingerprint+" already exists")
		}
		x.Issues[it.Fingerprint] = &IndexEntry{State: IssueStateOpen, Engines: []string{it.Engine}}
	}
	for _, it := range ev.Reopened {
		ie := x.Issues[it.Fingerprint]
		if ie == nil || ie.State != IssueStateFixed {
			return badHistory("issue index", x.Version, e, "issue "+it.Fingerprint+" is not fixed")
		}
		ie.State = IssueStateOpen
		ie.addEngine(it.Engine)
	}
	for _, it := range ev.Seen {
		ie := x.Issues[it.Fingerprint]
		if ie == nil {
			return badHistory("issue index", x.Version, e, "issue "+it.Fingerprint+" does not exist")
		}
		ie.addEngine(it.Engine)
	}
	for _, fp := range ev.Fixed {
		ie := x.Issues[fp]
		if ie == nil || ie.State != IssueStateOpen {
			return badHistory("issue index", x.Version, e, "issue "+fp+" is not open")
		}
		ie.State = IssueStateFixed
	}
	t := x.Tail
	t.Opened = append(t.Opened, ev.Opened...)
	t.Reopened = append(t.Reopened, ev.Reopened...)
	t.Seen = append(t.Seen, ev.Seen...)
	t.Fixed = append(t.Fixed, ev.Fixed...)
	x.tailParts++
	x.Version++
	return nil
}

func (ie *IndexEntry) addEngine(engine string) {
	if engine != "" && !slices.Contains(ie.Engines, engine) {
		ie.Engines = append(ie.Engines, engine)
		slices.Sort(ie.Engines)
	}
}
