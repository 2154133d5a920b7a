package classify_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

func TestIssueIDParsesAsULID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ repo, fp string }{{"01J000000000000000000000AA", "ab12"}, {"r", ""}, {"r", "Ω"}} {
		id := domain.IssueID(tc.repo, tc.fp)
		u, err := ulid.ParseStrict(id)
		if err != nil {
			t.Fatalf("ParseStrict(%q): %v", id, err)
		}
		sum := sha256.Sum256([]byte("vega-issue\x00" + tc.repo + "\x00" + tc.fp))
		if u != ulid.ULID(sum[:16]) {
			t.Fatalf("IssueID(%q, %q) = %s, want the ULID of SHA-256's first 16 bytes %s", tc.repo, tc.fp, id, ulid.ULID(sum[:16]))
		}
	}
}

// TestClassifyLifecycle walks one repository through the classification
// rule: new, unchanged, fixed, reopened; partial, failed and engine-limited
// scans fix nothing; triage is never touched; repeats change nothing.
func TestClassifyLifecycle(t *testing.T) {
	t.Parallel()
	onStores(t, func(t *testing.T, store eventstore.Store) {
		e := newEnv(t, store)
		ctx := e.t.Context()

		// scan1 finds A, B (builtin) and C (ai): all new.
		s1 := e.scan([]string{"builtin", "ai"}, false, finding("A", ""), finding("B", ""), finding("C", "ai"))
		r1 := e.classify(s1)
		want(t, "scan1", resultString(r1), `new=3 reopened=0 unchanged=0 fixed=0 base="" stale=false skipped=false`)
		if r1.Position.IsZero() {
			t.Fatal("first classification reports no position")
		}
		for _, fp := range []string{"A", "B", "C"} {
			iss := e.issue(fp)
			want(t, fp+" state", iss.State, domain.IssueStateOpen)
			want(t, fp+" first seen", iss.FirstSeenScanID, s1)
		}
		// Idempotent: a second classification writes nothing.
		before := len(e.events(eventstore.NewStreamID(commands.CategoryScan, s1)))
		again := e.classify(s1)
		want(t, "repeat", resultString(again), resultString(r1))
		want(t, "repeat position", again.Position, eventstore.Position{})
		want(t, "scan stream length after repeat", len(e.events(eventstore.NewStreamID(commands.CategoryScan, s1))), before)
		want(t, "issue A stream length", len(e.events(eventstore.NewStreamID(commands.CategoryIssue, domain.IssueID(e.repo, "A")))), 1)

		// People triage: B is a false positive, A an accepted risk for an hour.
		must(t)(e.h.TriageIssue.Handle(e.ctx, commands.TriageIssue{IssueID: domain.IssueID(e.repo, "B"), Status: domain.TriageFalsePositive}))
		must(t)(e.h.TriageIssue.Handle(e.ctx, commands.TriageIssue{IssueID: domain.IssueID(e.repo, "A"), Status: domain.TriageAcceptedRisk,
			ExpiresAt: e.clock.Now().Add(time.Hour)}))

		// scan2 ran builtin only and found A: A unchanged, B fixed (a false
		// positive is fixed like any issue), C kept (ai did not run).
		s2 := e.scan(nil, false, finding("A", ""))
		want(t, "scan2", resultString(e.classify(s2)), fmt.Sprintf(`new=0 reopened=0 unchanged=1 fixed=1 base=%q stale=false skipped=false`, s1))
		b := e.issue("B")
		want(t, "B state", b.State, domain.IssueStateFixed)
		want(t, "B fixed by", b.FixedByScanID, s2)
		want(t, "B triage", b.TriageStatus, domain.TriageFalsePositive)
		want(t, "C state", e.issue("C").State, domain.IssueStateOpen)
		want(t, "A last seen", e.issue("A").LastSeenScanID, s2)

		v, err := e.r.Diff(ctx, s2, e.clock.Now())
		if err != nil {
			t.Fatalf("diff: %v", err)
		}
		want(t, "diff base", v.BaseScanID, s1)
		want(t, "diff new/reopened/unchanged", fmt.Sprint(len(v.New), len(v.Reopened), v.Unchanged), "0 0 1")
		if len(v.Fixed) != 1 || v.Fixed[0].Fingerprint != "B" || v.Fixed[0].ScanID != s1 || v.Fixed[0].Triage != "false_positive" ||
			v.Fixed[0].IssueID != domain.IssueID(e.repo, "B") || v.Fixed[0].Diff != domain.DiffNew {
			t.Fatalf("diff fixed = %+v", v.Fixed)
		}

		// A partial scan that finds nothing fixes nothing; a failed scan is skipped.
		s3 := e.scan([]string{"builtin", "ai"}, true)
		want(t, "partial", resultString(e.classify(s3)), fmt.Sprintf(`new=0 reopened=0 unchanged=0 fixed=0 base=%q stale=false skipped=false`, s2))
		failed := e.request()
		c := must(t)(e.h.ClaimScan.Handle(e.ctx, commands.ClaimScan{ScanID: failed, WorkerID: "w1"})).(commands.LeaseResult)
		must(t)(e.h.FailScan.Handle(e.ctx, commands.FailScan{ScanID: failed, Fence: c.Fence, Reason: "boom"}))
		if r := e.classify(failed); !r.Skipped {
			t.Fatalf("failed scan classified: %s", resultString(r))
		}
		// A running scan is not finished: a conflict.
		running := e.request()
		_, err = e.c.Classify(ctx, running)
		if !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("classify running scan: %v, want ErrConflict", err)
		}
		_, err = e.r.Diff(ctx, running, e.clock.Now())
		if !errors.Is(err, classify.ErrNotClassified) || !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("diff of unclassified scan: %v", err)
		}

		// scan4 (builtin + ai) finds B again: reopened, still a false
		// positive; A and C not found by a scan that ran both: fixed.
		s4 := e.scan([]string{"builtin", "ai"}, false, finding("B", ""))
		want(t, "scan4", resultString(e.classify(s4)), fmt.Sprintf(`new=0 reopened=1 unchanged=0 fixed=2 base=%q stale=false skipped=false`, s3))
		b = e.issue("B")
		want(t, "B state", b.State, domain.IssueStateOpen)
		want(t, "B triage", b.TriageStatus, domain.TriageFalsePositive)

		// The accepted risk expires: the diff reads its triage as open.
		s5 := e.scan([]string{"builtin", "ai"}, false, finding("A", ""), finding("B", ""))
		e.classify(s5)
		e.clock.Advance(2 * time.Hour)
		v, err = e.r.Diff(ctx, s5, e.clock.Now())
		if err != nil {
			t.Fatalf("diff: %v", err)
		}
		if len(v.Reopened) != 1 || v.Reopened[0].Fingerprint != "A" || v.Reopened[0].Triage != "open" {
			t.Fatalf("scan5 reopened = %+v, want A with its expired accepted risk reading open", v.Reopened)
		}
		want(t, "A stored triage", e.issue("A").TriageStatus, domain.TriageAcceptedRisk)

		// Scans never triage: every IssueTriaged was written by alice.
		for _, fp := range []string{"A", "B", "C"} {
			for _, rec := range e.events(eventstore.NewStreamID(commands.CategoryIssue, domain.IssueID(e.repo, fp))) {
				if rec.Type == "IssueTriaged" && rec.Metadata.Actor != "alice" {
					t.Fatalf("issue %s triaged by %s", fp, rec.Metadata.Actor)
				}
				if rec.Type != "IssueTriaged" && rec.Metadata.Actor != classify.Actor {
					t.Fatalf("issue %s event %s by %s, want %s", fp, rec.Type, rec.Metadata.Actor, classify.Actor)
				}
			}
		}

		// Findings carry issue IDs and diffs.
		_, fs, err := e.r.Findings(ctx, s5)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.IssueID != domain.IssueID(e.repo, f.Fingerprint) || f.Diff == "" || f.ScanID != s5 {
				t.Fatalf("finding %+v", f)
			}
		}
	})
}

// TestStaleScanChangesNoExistingIssue: a scan requested before the latest
// classified scan only opens issues for unknown fingerprints.
func TestStaleScanChangesNoExistingIssue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	s1 := e.scan(nil, false, finding("X", ""), finding("Y", ""))
	e.classify(s1)
	old := e.request() // requested before s2, completes after it
	s2 := e.scan(nil, false, finding("Y", ""))
	e.classify(s2) // fixes X
	want(t, "X state", e.issue("X").State, domain.IssueStateFixed)

	// The old scan still sees X, misses Y and finds Z.
	e.run(old, false, finding("X", ""), finding("Z", ""))
	r := e.classify(old)
	want(t, "stale", resultString(r), fmt.Sprintf(`new=1 reopened=0 unchanged=1 fixed=0 base=%q stale=true skipped=false`, s2))
	want(t, "X state", e.issue("X").State, domain.IssueStateFixed) // not reopened by old code
	want(t, "Y state", e.issue("Y").State, domain.IssueStateOpen)  // not fixed by a scan older than its sighting
	want(t, "Y last seen", e.issue("Y").LastSeenScanID, s2)
	want(t, "Z state", e.issue("Z").State, domain.IssueStateOpen)

	// The next scan is compared with s2, the latest in request order.
	s3 := e.scan(nil, false)
	r = e.classify(s3)
	want(t, "after stale", resultString(r), fmt.Sprintf(`new=0 reopened=0 unchanged=0 fixed=2 base=%q stale=false skipped=false`, s2))
}

// TestConcurrentClassifications: racing classifiers never open two issues
// for one fingerprint and never classify a scan twice.
func TestConcurrentClassifications(t *testing.T) {
	t.Parallel()
	onStores(t, func(t *testing.T, store eventstore.Store) {
		e := newEnv(t, store)
		const scans, shared = 4, 20
		ids := make([]string, scans)
		for i := range ids {
			fs := make([]domain.Finding, 0, shared+1)
			for j := range shared {
				fs = append(fs, finding(fmt.Sprintf("shared%02d", j), ""))
			}
			fs = append(fs, finding(fmt.Sprintf("own%d", i), ""))
			ids[i] = e.scan(nil, false, fs...)
		}
		// Several classifiers (separate instances, as in separate processes)
		// each classify every scan, all at once.
		var wg sync.WaitGroup
		errs := make(chan error, scans*3)
		for k := range 3 {
			c, err := classify.New(store, classify.Options{Clock: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			for i := range ids {
				id := ids[(i+k)%scans]
				wg.Go(func() {
					if _, err := c.Classify(t.Context(), id); err != nil {
						errs <- fmt.Errorf("classify %s: %w", id, err)
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		newCount := 0
		for _, id := range ids {
			recs := e.events(eventstore.NewStreamID(commands.CategoryScan, id))
			n := 0
			for _, r := range recs {
				if r.Type == "ScanClassified" {
					n++
				}
			}
			want(t, "ScanClassified events of "+id, n, 1)
			r := e.classify(id)
			newCount += r.New
		}
		// Whatever the order, what the latest scan found is open.
		want(t, "own3 state", e.issue("own3").State, domain.IssueStateOpen)
		want(t, "issues opened", newCount, shared+scans)
		for j := range shared {
			recs := e.events(eventstore.NewStreamID(commands.CategoryIssue, domain.IssueID(e.repo, fmt.Sprintf("shared%02d", j))))
			opened := 0
			for _, r := range recs {
				if r.Type == "IssueOpened" {
					opened++
				}
			}
			want(t, "IssueOpened count", opened, 1)
			want(t, "shared state", e.issue(fmt.Sprintf("shared%02d", j)).State, domain.IssueStateOpen)
		}
	})
}

// TestUnappliedDecisionIsFinished: a decision appended to the index whose
// classifier stopped before applying it is applied by the next
// classification of the repository, first.
func TestUnappliedDecisionIsFinished(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	ctx := e.t.Context()
	s1 := e.scan(nil, false, finding("A", ""))
	e.classify(s1)
	s2 := e.scan(nil, false, finding("B", ""))
	s3 := e.scan(nil, false, finding("B", ""))

	// Append s2's decision by hand, as a classifier that crashed would
	// have left it.
	codec, err := commands.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	idx := commands.NewRepository(store(e), codec, func() string { return ulid.Make().String() }, classify.CategoryIssueIndex,
		"repository_id", domain.FoldIssueIndex)
	x, version, err := idx.Load(ctx, e.repo)
	if err != nil {
		t.Fatal(err)
	}
	scan2, _, err := e.h.Streams.Scans.Load(ctx, s2)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := x.Decide(scan2, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idx.Save(commands.WithRequest(ctx, commands.Request{Actor: classify.Actor}), e.repo, x, version, evs); err != nil {
		t.Fatal(err)
	}

	r3 := e.classify(s3)
	want(t, "scan3", resultString(r3), fmt.Sprintf(`new=0 reopened=0 unchanged=1 fixed=0 base=%q stale=false skipped=false`, s2))
	scan2, _, err = e.h.Streams.Scans.Load(ctx, s2)
	if err != nil {
		t.Fatal(err)
	}
	if !scan2.Classified() || len(scan2.Classification.New) != 1 || len(scan2.Classification.Fixed) != 1 {
		t.Fatalf("scan2 classification = %+v", scan2.Classification)
	}
	want(t, "A state", e.issue("A").State, domain.IssueStateFixed)
	want(t, "A fixed by", e.issue("A").FixedByScanID, s2)
	want(t, "B first seen", e.issue("B").FirstSeenScanID, s2)
	want(t, "B last seen", e.issue("B").LastSeenScanID, s3)
}

func store(e *env) commands.Store { return e.store }

// TestIndexStreamIsSmall: plain sightings add nothing but the decision
// header to the index.
func TestIndexStreamIsSmall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	fs := make([]domain.Finding, 50)
	for i := range fs {
		fs[i] = finding(fmt.Sprintf("F%02d", i), "")
	}
	var sizes []int
	for range 3 {
		e.classify(e.scan(nil, false, fs...))
		recs := e.events(eventstore.NewStreamID(classify.CategoryIssueIndex, e.repo))
		sizes = append(sizes, len(recs[len(recs)-1].Data))
	}
	if sizes[1] > 400 || sizes[2] != sizes[1] || sizes[0] < 50*30 {
		t.Fatalf("index event sizes %v: the first should list 50 issues, later ones none", sizes)
	}
	if !slices.Equal([]int{len(e.events(eventstore.NewStreamID(classify.CategoryIssueIndex, e.repo)))}, []int{3}) {
		t.Fatal("want one index event per classification")
	}
}
