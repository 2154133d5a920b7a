package queries_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
	pt "github.com/vega-sec/vega/projections/projectiontest"
	"github.com/vega-sec/vega/queries"
)

var (
	alice    = queries.Caller{Principal: pt.Alice}
	bob      = queries.Caller{Principal: pt.Bob}
	carol    = queries.Caller{Principal: pt.Carol}
	stranger = queries.Caller{Principal: "eve"}
	admin    = queries.Caller{Principal: pt.Admin, Admin: true}
)

// fixture is a seeded world with projections caught up, and services
// reading it at two times: a day after T0 (i3's accepted risk holds) and 40
// days after (it expired).
type fixture struct {
	env   *pt.Env
	svc   *queries.Service
	later *queries.Service
}

// onDialects runs every case of fn's table against SQLite and PostgreSQL,
// each dialect with one seeded world.
func onDialects(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Helper()
	for _, o := range pt.Openers() {
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			env := o.Open(t)
			w := pt.Seed(t, env)
			r := pt.Start(t, env.Config())
			pt.WaitFor(t, r, w.Last)
			svc := newService(t, env, pt.T0.Add(24*time.Hour))
			later := newService(t, env, pt.T0.Add(40*24*time.Hour))
			fn(t, &fixture{env: env, svc: svc, later: later})
		})
	}
}

func newService(t *testing.T, env *pt.Env, now time.Time) *queries.Service {
	t.Helper()
	s, err := queries.New(env.ReadDB, env.Dialect, env.Store, queries.Options{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	return s
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("%s: error %v, want domain.ErrNotFound", what, err)
	}
}

func wantInvalid(t *testing.T, what, field string, err error) {
	t.Helper()
	var ia *domain.InvalidArgumentError
	if !errors.As(err, &ia) || ia.Field != field || !errors.Is(err, domain.ErrInvalidArgument) {
		t.Errorf("%s: error %v, want an invalid argument naming %q", what, err, field)
	}
}

func ids[T any](items []T, id func(T) string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

func TestProjectsMembersRepositories(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		s := f.svc
		for _, c := range []struct {
			caller queries.Caller
			want   []string
		}{{alice, []string{"p1"}}, {bob, []string{"p1"}}, {carol, []string{"p2"}}, {admin, []string{"p1", "p2"}}, {stranger, []string{}}} {
			p, err := s.ListProjects(ctx, c.caller, queries.ListOptions{})
			if err != nil {
				t.Fatalf("list projects: %v", err)
			}
			if got := ids(p.Items, func(p queries.Project) string { return p.ID }); !slices.Equal(got, c.want) || p.NextCursor != "" {
				t.Errorf("projects of %s = %v (next %q), want %v", c.caller.Principal, got, p.NextCursor, c.want)
			}
		}
		p, err := s.Project(ctx, alice, "p1")
		if err != nil || p != (queries.Project{ID: "p1", Name: "alpha", Description: "first", CreatedAt: "2025-03-01T12:01:00Z"}) {
			t.Errorf("project p1 = %+v, %v", p, err)
		}
		if p, err := s.Project(ctx, carol, "p2"); err != nil || p.Name != "beta-2" {
			t.Errorf("project p2 = %+v, %v; want renamed", p, err)
		}
		_, err = s.Project(ctx, stranger, "p1")
		wantNotFound(t, "stranger gets p1", err)
		_, err = s.Project(ctx, admin, "nope")
		wantNotFound(t, "missing project", err)

		m, err := s.ListMembers(ctx, bob, "p1", queries.ListOptions{})
		if err != nil || len(m.Items) != 2 || m.Items[0] != (queries.Member{ProjectID: "p1", Principal: "alice", Role: "owner", GrantedAt: "2025-03-01T12:01:00Z"}) ||
			m.Items[1].Principal != "bob" || m.Items[1].Role != domain.RoleViewer {
			t.Errorf("members of p1 = %+v, %v", m, err)
		}
		_, err = s.ListMembers(ctx, carol, "p1", queries.ListOptions{})
		wantNotFound(t, "carol lists p1 members", err)

		if role, err := s.RoleOf(ctx, "bob", "p1"); err != nil || role != domain.RoleViewer {
			t.Errorf("role of bob = %q, %v", role, err)
		}
		_, err = s.RoleOf(ctx, "carol", "p1")
		wantNotFound(t, "role of carol in p1", err)

		r, err := s.ListRepositories(ctx, alice, "p1", queries.ListOptions{})
		if got := ids(r.Items, func(r queries.Repository) string { return r.ID }); err != nil || !slices.Equal(got, []string{"r1"}) {
			t.Errorf("alice's repositories of p1 = %v, %v; want r1 (r2 is removed)", got, err)
		}
		r, err = s.ListRepositories(ctx, admin, "p1", queries.ListOptions{})
		if err != nil || len(r.Items) != 2 || !r.Items[1].Removed || r.Items[1].Source != (domain.Source{Kind: "git", URL: "https://example.com/web.git", Ref: "main"}) {
			t.Errorf("admin's repositories of p1 = %+v, %v", r, err)
		}
		repo, err := s.Repository(ctx, bob, "r1")
		if err != nil || repo != (queries.Repository{ID: "r1", ProjectID: "p1", Name: "api", Source: domain.Source{Kind: "archive"},
			CreatedAt: "2025-03-01T12:05:00Z", LatestSnapshotID: "s2"}) {
			t.Errorf("repository r1 = %+v, %v", repo, err)
		}
		for _, c := range []struct {
			caller queries.Caller
			id     string
		}{{carol, "r1"}, {alice, "r2"}, {stranger, "r3"}, {admin, "nope"}} {
			_, err := s.Repository(ctx, c.caller, c.id)
			wantNotFound(t, c.caller.Principal+" gets "+c.id, err)
		}
		if _, err := s.Repository(ctx, admin, "r2"); err != nil {
			t.Errorf("admin gets removed r2: %v", err)
		}
		for id, want := range map[string]string{"r1": "p1", "r2": "p1"} {
			if got, err := s.ProjectOfRepository(ctx, id); got != want || err != nil {
				t.Errorf("project of %s = %q, %v", id, got, err)
			}
		}
		for _, c := range []struct {
			fn   func() (string, error)
			want string
		}{
			{func() (string, error) { return s.ProjectOfScan(ctx, "sc3") }, "p2"},
			{func() (string, error) { return s.ProjectOfIssue(ctx, "i1") }, "p1"},
			{func() (string, error) { return s.ProjectOfSnapshot(ctx, "s5") }, "p2"},
		} {
			if got, err := c.fn(); got != c.want || err != nil {
				t.Errorf("project lookup = %q, %v; want %q", got, err, c.want)
			}
		}
		_, err = s.ProjectOfScan(ctx, "nope")
		wantNotFound(t, "project of unknown scan", err)
	})
}

func TestSnapshotsAndThreatProfiles(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		s := f.svc
		l, err := s.ListSnapshots(ctx, alice, "r1", queries.ListOptions{})
		if got := ids(l.Items, func(s queries.Snapshot) string { return s.ID }); err != nil || !slices.Equal(got, []string{"s2", "s1"}) {
			t.Errorf("snapshots of r1 = %v, %v; want newest first", got, err)
		}
		l, err = s.ListSnapshots(ctx, admin, "r2", queries.ListOptions{})
		if err != nil || len(l.Items) != 2 {
			t.Fatalf("snapshots of r2 = %+v, %v", l, err)
		}
		if got := l.Items[0]; got.ID != "s4" || got.Status != domain.SnapshotStatusCaptured || got.Commit == "" || got.Ref != "main" || got.CapturedAt != "2025-03-01T12:13:00Z" {
			t.Errorf("s4 = %+v", got)
		}
		if got := l.Items[1]; got.ID != "s3" || got.Status != domain.SnapshotStatusFailed || got.Error != "clone failed" || got.CapturedAt != "" {
			t.Errorf("s3 = %+v", got)
		}
		sn, err := s.Snapshot(ctx, carol, "s5")
		if err != nil || sn != (queries.Snapshot{ID: "s5", RepositoryID: "r3", Status: "captured", Digest: "sha256:" + "0000000000000000000000000000000000000000000000000000000000000005",
			SizeBytes: 500, FileCount: 6, CapturedAt: "2025-03-01T12:15:00Z"}) {
			t.Errorf("snapshot s5 = %+v, %v", sn, err)
		}
		_, err = s.Snapshot(ctx, alice, "s5")
		wantNotFound(t, "alice gets s5", err)
		_, err = s.Snapshot(ctx, alice, "s4") // under removed r2
		wantNotFound(t, "alice gets s4", err)
		_, err = s.ListSnapshots(ctx, stranger, "r1", queries.ListOptions{})
		wantNotFound(t, "stranger lists r1 snapshots", err)

		tp, err := s.ThreatProfile(ctx, bob, "r1")
		if err != nil || tp.Version != 1 || tp.Name != "strict" || tp.MinSeverity != domain.SeverityMedium {
			t.Errorf("profile of r1 = %+v, %v", tp, err)
		}
		tp, err = s.ThreatProfile(ctx, carol, "r3")
		if err != nil || tp.Version != 0 || tp.Name != "default" || !slices.Equal(tp.Engines, []string{"builtin"}) || len(tp.Categories) != 4 {
			t.Errorf("default profile of r3 = %+v, %v", tp, err)
		}
		_, err = s.ThreatProfile(ctx, alice, "r3")
		wantNotFound(t, "alice gets r3's profile", err)
	})
}

func TestScans(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		s := f.svc
		l, err := s.ListScans(ctx, alice, "r1", queries.ListOptions{})
		if got := ids(l.Items, func(s queries.Scan) string { return s.ID }); err != nil || !slices.Equal(got, []string{"sc4", "sc2", "sc1"}) {
			t.Errorf("scans of r1 = %v, %v; want newest first", got, err)
		}
		sc, err := s.Scan(ctx, bob, "sc1")
		if err != nil {
			t.Fatalf("scan sc1: %v", err)
		}
		want := queries.Scan{ID: "sc1", ProjectID: "p1", RepositoryID: "r1", SnapshotID: "s2", Status: domain.ScanStateCompleted,
			Phase: "builtin", Progress: 100, Engines: []string{"builtin"}, Counts: domain.SeverityCounts{Critical: 1, High: 1, Low: 1},
			LLMUsage:    queries.LLMUsage{InputTokens: 100, OutputTokens: 20, CostUSD: 0.5},
			RequestedAt: "2025-03-01T12:16:00Z", StartedAt: "2025-03-01T12:20:00Z", FinishedAt: "2025-03-01T12:24:00Z"}
		if sc.ID != want.ID || sc.Status != want.Status || sc.Progress != want.Progress || sc.Counts != want.Counts || sc.LLMUsage != want.LLMUsage ||
			sc.RequestedAt != want.RequestedAt || sc.StartedAt != want.StartedAt || sc.FinishedAt != want.FinishedAt || !slices.Equal(sc.Engines, want.Engines) || sc.Phase != want.Phase {
			t.Errorf("scan sc1 =\n%+v, want\n%+v", sc, want)
		}
		sc, err = s.Scan(ctx, carol, "sc3")
		if err != nil || sc.Status != domain.ScanStateFailed || sc.Error != "no runner" || sc.StartedAt != "" || sc.FinishedAt == "" {
			t.Errorf("scan sc3 = %+v, %v", sc, err)
		}
		if sc, err := s.Scan(ctx, alice, "sc4"); err != nil || sc.Status != domain.ScanStateRequested || sc.Counts.Total() != 0 {
			t.Errorf("scan sc4 = %+v, %v", sc, err)
		}
		for _, c := range []struct {
			caller queries.Caller
			id     string
		}{{carol, "sc1"}, {alice, "sc3"}, {stranger, "sc2"}, {admin, "nope"}} {
			_, err := s.Scan(ctx, c.caller, c.id)
			wantNotFound(t, c.caller.Principal+" gets "+c.id, err)
		}

		ev, err := s.ListScanEvents(ctx, alice, "sc1", queries.ListOptions{Limit: 4})
		if err != nil || len(ev.Items) != 4 || ev.NextCursor == "" || ev.Items[0].Type != "ScanRequested" || ev.Items[0].Actor != "alice" || ev.Items[0].StreamID != "scan-sc1" {
			t.Fatalf("events of sc1 = %+v, %v", ev, err)
		}
		var all []int64
		for c := ""; ; {
			p, err := s.ListScanEvents(ctx, alice, "sc1", queries.ListOptions{Limit: 4, Cursor: c})
			if err != nil {
				t.Fatalf("events page: %v", err)
			}
			for _, e := range p.Items {
				all = append(all, e.Version)
			}
			if c = p.NextCursor; c == "" {
				break
			}
		}
		if len(all) != 13 || all[0] != 1 || all[12] != 13 {
			t.Errorf("event versions of sc1 = %v, want 1..13", all)
		}
		_, err = s.ListScanEvents(ctx, carol, "sc1", queries.ListOptions{})
		wantNotFound(t, "carol lists sc1 events", err)
		_, err = s.ListScanEvents(ctx, alice, "sc1", queries.ListOptions{Cursor: "x"})
		wantInvalid(t, "events bad cursor", "cursor", err)
	})
}

func TestFindings(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		fid := func(f queries.Finding) string { return f.ID }
		cases := []struct {
			name   string
			svc    *queries.Service
			scan   string
			filter queries.FindingFilter
			want   []string
		}{
			{"all, most severe first", f.svc, "sc1", queries.FindingFilter{}, []string{"f1", "f2", "f3"}},
			{"severity list", f.svc, "sc1", queries.FindingFilter{Severity: "critical,high"}, []string{"f1", "f2"}},
			{"triage open", f.svc, "sc1", queries.FindingFilter{Triage: "open"}, []string{"f2"}},
			{"triage accepted risk", f.svc, "sc1", queries.FindingFilter{Triage: "accepted_risk"}, []string{"f3"}},
			{"expired accepted risk reads open", f.later, "sc1", queries.FindingFilter{Triage: "open"}, []string{"f2", "f3"}},
			{"diff new", f.svc, "sc1", queries.FindingFilter{Diff: "new"}, []string{"f1", "f2", "f3"}},
			{"diff unchanged", f.svc, "sc2", queries.FindingFilter{Diff: "unchanged"}, []string{"f4", "f6"}},
			{"diff list", f.svc, "sc2", queries.FindingFilter{Diff: "new,reopened"}, []string{"f5"}},
			{"rule", f.svc, "sc1", queries.FindingFilter{Rule: "crypto.md5"}, []string{"f3"}},
			{"file", f.svc, "sc1", queries.FindingFilter{File: "a.go"}, []string{"f1", "f3"}},
			{"combined", f.svc, "sc2", queries.FindingFilter{File: "a.go,cfg.yaml", Severity: "low,medium", Triage: "accepted_risk,open"}, []string{"f5", "f6"}},
			{"none match", f.svc, "sc1", queries.FindingFilter{Rule: "nope"}, []string{}},
		}
		for _, c := range cases {
			p, err := c.svc.ListFindings(ctx, alice, c.scan, c.filter, queries.ListOptions{})
			if got := ids(p.Items, fid); err != nil || !slices.Equal(got, c.want) || p.NextCursor != "" {
				t.Errorf("%s: findings %v (next %q), %v; want %v", c.name, got, p.NextCursor, err, c.want)
			}
		}
		p, err := f.svc.ListFindings(ctx, bob, "sc1", queries.FindingFilter{}, queries.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := queries.Finding{ID: "f1", ScanID: "sc1", IssueID: "i1", Fingerprint: "fp1", RuleID: "secrets.aws", Title: "title of secrets.aws",
			Severity: "critical", CWE: "CWE-798", Engine: "builtin", File: "a.go", StartLine: 10, EndLine: 11, Snippet: "key = \"****\"",
			Message: "msg f1", Remediation: "fix it", Confidence: 0.9, Diff: "new", Triage: "false_positive"}
		if p.Items[0] != want {
			t.Errorf("finding f1 =\n%+v, want\n%+v", p.Items[0], want)
		}
		for _, c := range []struct {
			name, field string
			filter      queries.FindingFilter
		}{
			{"bad severity", "severity", queries.FindingFilter{Severity: "high,urgent"}},
			{"bad triage", "triage", queries.FindingFilter{Triage: "closed"}},
			{"bad diff", "diff", queries.FindingFilter{Diff: "fixed"}},
			{"empty item", "rule", queries.FindingFilter{Rule: "a,,b"}},
		} {
			_, err := f.svc.ListFindings(ctx, alice, "sc1", c.filter, queries.ListOptions{})
			wantInvalid(t, c.name, c.field, err)
		}
		_, err = f.svc.ListFindings(ctx, carol, "sc1", queries.FindingFilter{}, queries.ListOptions{})
		wantNotFound(t, "carol lists sc1 findings", err)
	})
}

func TestPaging(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		s := f.svc
		// Every list walked one item per page gives the same items as one
		// big page, and ends with "".
		lists := []struct {
			name string
			page func(o queries.ListOptions) ([]string, string, error)
		}{
			{"findings", func(o queries.ListOptions) ([]string, string, error) {
				p, err := s.ListFindings(ctx, alice, "sc2", queries.FindingFilter{}, o)
				return ids(p.Items, func(f queries.Finding) string { return f.ID }), p.NextCursor, err
			}},
			{"issues", func(o queries.ListOptions) ([]string, string, error) {
				p, err := s.ListIssues(ctx, alice, "r1", queries.IssueFilter{}, o)
				return ids(p.Items, func(i queries.Issue) string { return i.ID }), p.NextCursor, err
			}},
			// Filters on several values split the list into one query per
			// value (and severity), whose pages merge.
			{"findings split", func(o queries.ListOptions) ([]string, string, error) {
				p, err := s.ListFindings(ctx, alice, "sc2", queries.FindingFilter{Severity: "critical,medium,low", Triage: "open,accepted_risk,false_positive"}, o)
				return ids(p.Items, func(f queries.Finding) string { return f.ID }), p.NextCursor, err
			}},
			{"issues split", func(o queries.ListOptions) ([]string, string, error) {
				p, err := s.ListIssues(ctx, alice, "r1", queries.IssueFilter{Triage: "open,false_positive,accepted_risk"}, o)
				return ids(p.Items, func(i queries.Issue) string { return i.ID }), p.NextCursor, err
			}},
			{"scans", func(o queries.ListOptions) ([]string, string, error) {
				p, err := s.ListScans(ctx, alice, "r1", o)
				return ids(p.Items, func(s queries.Scan) string { return s.ID }), p.NextCursor, err
			}},
			{"projects", func(o queries.ListOptions) ([]string, string, error) {
				p, err := s.ListProjects(ctx, admin, o)
				return ids(p.Items, func(p queries.Project) string { return p.ID }), p.NextCursor, err
			}},
			{"members", func(o queries.ListOptions) ([]string, string, error) {
				p, err := s.ListMembers(ctx, alice, "p1", o)
				return ids(p.Items, func(m queries.Member) string { return m.Principal }), p.NextCursor, err
			}},
			{"repositories", func(o queries.ListOptions) ([]string, string, error) {
				p, err := s.ListRepositories(ctx, admin, "p1", o)
				return ids(p.Items, func(r queries.Repository) string { return r.ID }), p.NextCursor, err
			}},
			{"snapshots", func(o queries.ListOptions) ([]string, string, error) {
				p, err := s.ListSnapshots(ctx, admin, "r2", o)
				return ids(p.Items, func(s queries.Snapshot) string { return s.ID }), p.NextCursor, err
			}},
			{"tokens", func(o queries.ListOptions) ([]string, string, error) {
				p, err := s.ListTokens(ctx, admin, o)
				return ids(p.Items, func(t queries.Token) string { return t.ID }), p.NextCursor, err
			}},
			{"activity", func(o queries.ListOptions) ([]string, string, error) {
				p, err := s.ListActivity(ctx, carol, o)
				return ids(p.Items, func(e queries.Event) string { return e.Cursor }), p.NextCursor, err
			}},
		}
		for _, l := range lists {
			whole, next, err := l.page(queries.ListOptions{Limit: queries.MaxLimit})
			if err != nil || next != "" || len(whole) < 2 {
				t.Fatalf("%s: one page %v, next %q, %v", l.name, whole, next, err)
			}
			var walked []string
			cur := ""
			for range 100 {
				items, next, err := l.page(queries.ListOptions{Limit: 1, Cursor: cur})
				if err != nil {
					t.Fatalf("%s: page after %q: %v", l.name, cur, err)
				}
				walked = append(walked, items...)
				if next == "" {
					break
				}
				cur = next
			}
			if !slices.Equal(walked, whole) {
				t.Errorf("%s: walked %v, want %v", l.name, walked, whole)
			}
			for _, lim := range []int{-1, 501, 10000} {
				_, _, err := l.page(queries.ListOptions{Limit: lim})
				wantInvalid(t, l.name+" limit", "limit", err)
			}
			for _, cur := range []string{"garbage!", "eyJrIjoic2NhbnMifQ", "e30"} {
				_, _, err := l.page(queries.ListOptions{Cursor: cur})
				wantInvalid(t, l.name+" cursor "+cur, "cursor", err)
			}
			if items, _, err := l.page(queries.ListOptions{}); err != nil || len(items) != len(whole) {
				t.Errorf("%s: default limit gave %d items, %v", l.name, len(items), err)
			}
		}
		// A cursor of one list is refused by another.
		_, next, _ := lists[4].page(queries.ListOptions{Limit: 1}) // scans
		_, err := s.ListFindings(ctx, alice, "sc2", queries.FindingFilter{}, queries.ListOptions{Cursor: next})
		wantInvalid(t, "scans cursor on findings", "cursor", err)
	})
}

func TestIssues(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		iid := func(i queries.Issue) string { return i.ID }
		for _, c := range []struct {
			name   string
			svc    *queries.Service
			filter queries.IssueFilter
			want   []string
		}{
			{"all", f.svc, queries.IssueFilter{}, []string{"i1", "i2", "i4", "i3"}},
			{"fixed", f.svc, queries.IssueFilter{State: "fixed"}, []string{"i2"}},
			{"open state", f.svc, queries.IssueFilter{State: "open"}, []string{"i1", "i4", "i3"}},
			{"triage", f.svc, queries.IssueFilter{Triage: "false_positive,wont_fix"}, []string{"i1"}},
			{"triage open", f.svc, queries.IssueFilter{Triage: "open"}, []string{"i2", "i4"}},
			{"expired reads open", f.later, queries.IssueFilter{Triage: "open"}, []string{"i2", "i4", "i3"}},
			{"severity", f.svc, queries.IssueFilter{Severity: "low,medium"}, []string{"i4", "i3"}},
			{"combined", f.svc, queries.IssueFilter{Severity: "critical,high", State: "open"}, []string{"i1"}},
		} {
			p, err := c.svc.ListIssues(ctx, bob, "r1", c.filter, queries.ListOptions{})
			if got := ids(p.Items, iid); err != nil || !slices.Equal(got, c.want) {
				t.Errorf("%s: issues %v, %v; want %v", c.name, got, err, c.want)
			}
		}
		_, err := f.svc.ListIssues(ctx, alice, "r1", queries.IssueFilter{State: "closed"}, queries.ListOptions{})
		wantInvalid(t, "bad state", "state", err)
		_, err = f.svc.ListIssues(ctx, carol, "r1", queries.IssueFilter{}, queries.ListOptions{})
		wantNotFound(t, "carol lists r1 issues", err)

		is, err := f.svc.Issue(ctx, alice, "i3")
		if err != nil {
			t.Fatalf("issue i3: %v", err)
		}
		if is.Triage != domain.TriageAcceptedRisk || is.ExpiresAt != "2025-03-31T12:00:00Z" || is.FirstSeenScanID != "sc1" || is.LastSeenScanID != "sc2" || is.State != domain.IssueStateOpen {
			t.Errorf("issue i3 = %+v", is)
		}
		wantHistory := []queries.HistoryEntry{
			{At: "2025-03-01T12:25:00Z", Actor: "worker", State: "open", ScanID: "sc1"},
			{At: "2025-03-01T12:27:00Z", Actor: "alice", Triage: "accepted_risk", Note: "later", ExpiresAt: "2025-03-31T12:00:00Z"},
		}
		if !slices.Equal(is.History, wantHistory) {
			t.Errorf("history of i3 =\n%+v, want\n%+v", is.History, wantHistory)
		}
		if is, err := f.later.Issue(ctx, alice, "i3"); err != nil || is.Triage != domain.TriageOpen || is.ExpiresAt != "" {
			t.Errorf("issue i3 after expiry = %+v, %v; want triage open", is, err)
		}
		if is, err := f.svc.Issue(ctx, alice, "i2"); err != nil || is.State != domain.IssueStateFixed || len(is.History) != 2 || is.History[1].State != "fixed" {
			t.Errorf("issue i2 = %+v, %v", is, err)
		}
		_, err = f.svc.Issue(ctx, carol, "i1")
		wantNotFound(t, "carol gets i1", err)
	})
}

func TestTokensAndAuthentication(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		_, err := f.svc.ListTokens(ctx, alice, queries.ListOptions{})
		if !errors.Is(err, queries.ErrForbidden) {
			t.Errorf("alice lists tokens: %v, want ErrForbidden", err)
		}
		p, err := f.svc.ListTokens(ctx, admin, queries.ListOptions{})
		if err != nil || len(p.Items) != 3 {
			t.Fatalf("tokens = %+v, %v", p, err)
		}
		if got := p.Items[0]; got != (queries.Token{ID: "tk-admin", Name: "old", Principal: "admin2", Admin: true, ExpiresAt: "2025-03-01T13:00:00Z", CreatedAt: got.CreatedAt}) {
			t.Errorf("token tk-admin = %+v", got)
		}
		for _, c := range []struct {
			secret string
			want   queries.TokenAuth
		}{
			{"secret-alice", queries.TokenAuth{TokenID: "tk-alice", Principal: "alice", Active: true}},
			{"secret-bob", queries.TokenAuth{TokenID: "tk-bob", Principal: "bob", Revoked: true}},
			{"secret-admin", queries.TokenAuth{TokenID: "tk-admin", Principal: "admin2", Admin: true, Expired: true}},
		} {
			got, err := f.svc.Authenticate(ctx, domain.HashToken(c.secret))
			if err != nil || got != c.want {
				t.Errorf("authenticate %s = %+v, %v; want %+v", c.secret, got, err, c.want)
			}
		}
		_, err = f.svc.Authenticate(ctx, domain.HashToken("unknown"))
		wantNotFound(t, "unknown token", err)
	})
}

func TestDashboardAndActivity(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		d, err := f.svc.Dashboard(ctx, alice)
		if err != nil {
			t.Fatalf("dashboard: %v", err)
		}
		if d.Projects != 1 || d.Repositories != 1 || d.Scans["completed"] != 2 || d.Scans["requested"] != 1 || d.Scans["failed"] != 0 || len(d.Scans) != 7 {
			t.Errorf("alice's dashboard counts = %+v", d)
		}
		// i1 false positive, i2 fixed, i3 accepted risk: only i4 needs work.
		if d.OpenIssues["medium"] != 1 || d.OpenIssues["critical"] != 0 || d.OpenIssues["low"] != 0 || len(d.OpenIssues) != 5 {
			t.Errorf("alice's open issues = %v", d.OpenIssues)
		}
		if got := ids(d.RecentScans, func(s queries.Scan) string { return s.ID }); !slices.Equal(got, []string{"sc4", "sc2", "sc1"}) {
			t.Errorf("recent scans = %v", got)
		}
		if d, err := f.later.Dashboard(ctx, alice); err != nil || d.OpenIssues["low"] != 1 {
			t.Errorf("after i3's risk expired: %v, %v", d.OpenIssues, err)
		}
		if d, err := f.svc.Dashboard(ctx, admin); err != nil || d.Projects != 2 || d.Repositories != 2 || d.Scans["failed"] != 1 || len(d.RecentScans) != 4 {
			t.Errorf("admin's dashboard = %+v, %v", d, err)
		}
		if d, err := f.svc.Dashboard(ctx, stranger); err != nil || d.Projects != 0 || d.Repositories != 0 || len(d.RecentScans) != 0 || d.Scans["completed"] != 0 {
			t.Errorf("stranger's dashboard = %+v, %v", d, err)
		}

		streams := func(c queries.Caller) map[string]int {
			p, err := f.svc.ListActivity(ctx, c, queries.ListOptions{Limit: queries.MaxLimit})
			if err != nil {
				t.Fatalf("activity of %s: %v", c.Principal, err)
			}
			m := map[string]int{}
			for _, e := range p.Items {
				m[e.StreamID]++
				if e.Cursor == "" || e.RecordedAt == "" || len(e.Data) == 0 {
					t.Errorf("activity item %+v lacks cursor, time or data", e)
				}
			}
			return m
		}
		carolSees := streams(carol)
		if len(carolSees) != 3 || carolSees["scan-sc3"] != 2 || carolSees["project-p2"] != 3 || carolSees["repository-r3"] != 2 || carolSees["scan-sc1"] != 0 {
			t.Errorf("carol's activity streams = %v", carolSees)
		}
		aliceSees := streams(alice)
		if aliceSees["issue-i1"] != 3 || aliceSees["scan-sc1"] != 13 || aliceSees["scan-sc3"] != 0 || aliceSees["access-alice"] != 0 {
			t.Errorf("alice's activity streams = %v", aliceSees)
		}
		if len(streams(stranger)) != 0 {
			t.Errorf("stranger sees activity")
		}
		// An item's cursor resumes right after it.
		p, _ := f.svc.ListActivity(ctx, carol, queries.ListOptions{})
		rest, err := f.svc.ListActivity(ctx, carol, queries.ListOptions{Cursor: p.Items[2].Cursor})
		if err != nil || len(rest.Items) != len(p.Items)-3 || rest.Items[0].Cursor != p.Items[3].Cursor {
			t.Errorf("activity after the third item: %d items, %v", len(rest.Items), err)
		}
	})
}
