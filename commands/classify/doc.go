// Package classify is the process manager that classifies a completed
// scan's findings against its repository's issues (DESIGN.md, Domain: the
// classification rule), and the read functions built on its outcome: the
// scan diff of the API and the classified findings that SARIF export needs.
//
// # What it writes
//
// For a completed scan, Classifier.Classify:
//
//  1. loads the repository's issue index (stream issueindex-<repository>,
//     domain.IssueIndex) and lets the domain decide (IssueIndex.Decide):
//     which fingerprints open an issue, which fixed issues reopen, which open
//     issues the scan fixes — only when it is not partial, not stale, and ran
//     every engine that found the issue;
//  2. appends that decision to the index at the version it loaded — the one
//     point where classifications of a repository are serialised: of two
//     racing classifiers one appends, the other gets
//     eventstore.ErrConcurrency and starts over on the new index;
//  3. applies the decision to the issue streams (IssueOpened, IssueSeen,
//     IssueReopened, IssueFixed; never IssueTriaged) and
//  4. records the outcome on the scan stream (domain.ScanClassified), which
//     is also the "done" mark: classifying a classified scan changes nothing.
//
// A classifier that finds the index's last decision not yet applied (its
// scan has no ScanClassified: a crash between steps 2 and 4) applies it
// before deciding anything, so decisions reach the issues in index order.
// Applying is idempotent per issue: an issue whose last sighting, opening,
// reopening or fix is already this scan's is left alone.
//
// # Identity without a read model
//
// An issue's ID is domain.IssueID(repository, fingerprint): a ULID whose 16
// bytes are the first 16 of SHA-256("vega-issue\x00"+repository+"\x00"+
// fingerprint). The create is an append to an empty stream, so two
// classifications can never open two issues for one fingerprint: the loser
// of a race reloads and records a sighting or a reopen instead.
//
// # Why an index aggregate
//
// The set of open issues a scan did not find cannot come from a projection
// (read models lag, and a fix decided on a stale read would be wrong) nor
// from an in-memory index kept by following the issue category (each
// process would keep one, it must be caught up before every decision, and
// its memory grows with every issue of every repository). The index stream
// holds only changes (opened, reopened, fixed, seen by a new engine — not
// the plain sightings), so loading it costs O(issue churn of one
// repository) and it is read only while that repository is classified;
// appending to it is also the per-repository lock. Large decisions are
// split into parts appended in one atomic call.
//
// # Order
//
// Scans are classified in the order they were requested
// (domain.ScanOrder). A scan requested before the latest scan already
// classified in its repository is stale: it opens issues for fingerprints
// that have none (so each of its findings has an issue) but changes no
// existing issue — so a scan older than an issue's last sighting never
// fixes it, and an old snapshot never reopens what a newer one fixed. Its
// ScanClassified says Stale; its findings of existing issues read
// "unchanged".
//
// # Triage
//
// Scans change an issue's state (open, fixed), never its triage: a
// false_positive, wont_fix or accepted_risk issue is seen, fixed and
// reopened like any other and keeps its triage. Views report the triage as
// domain.Issue.EffectiveTriage reads it, so an accepted_risk past its
// expiry reads open.
//
// # Running it
//
// NewConsumer runs Classifier.Handle on a durable JetStream consumer of the
// ScanCompleted events (adapters/nats); cmd wires it into `vega worker`
// and `vega dev`. Classify is also a plain function, for tests and tools.
package classify
