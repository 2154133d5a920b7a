package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/projections"
	pt "github.com/vega-sec/vega/projections/projectiontest"
)

// onDialects runs fn as a parallel subtest on SQLite and PostgreSQL.
func onDialects(t *testing.T, fn func(t *testing.T, env *pt.Env)) {
	t.Helper()
	for _, o := range pt.Openers() {
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, o.Open(t))
		})
	}
}

// dump returns every row of every read-model table, sorted, one string per
// row, prefixed with its table.
func dump(t *testing.T, db *sql.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, name := range projections.Names() {
		tables, _ := projections.Tables(name)
		for _, table := range tables {
			rows, err := db.QueryContext(t.Context(), "SELECT * FROM "+table)
			if err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			cols, _ := rows.Columns()
			var lines []string
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatalf("dump %s: %v", table, err)
				}
				var b strings.Builder
				for i, v := range vals {
					if bs, ok := v.([]byte); ok {
						v = string(bs)
					}
					fmt.Fprintf(&b, "%s=%v|", cols[i], v)
				}
				lines = append(lines, b.String())
			}
			if err := rows.Close(); err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			slices.Sort(lines)
			out[table] = lines
		}
	}
	return out
}

func count(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func statusOf(t *testing.T, r *projections.Runner, name string) projections.Status {
	t.Helper()
	st, err := r.Status(t.Context())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, s := range st {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %s", name)
	return projections.Status{}
}

func TestRunnerCatchesUpThenFollowsLive(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, env *pt.Env) {
		w := pt.Seed(t, env) // history before the runner starts: catch-up
		cfg := env.Config()
		cfg.PageSize = 7 // many pages
		r := pt.Start(t, cfg)
		pt.WaitFor(t, r, w.Last)
		db := env.ReadDB
		checks := []struct {
			q    string
			want int
		}{
			{"SELECT count(*) FROM projects", 2},
			{"SELECT count(*) FROM project_members", 3},
			{"SELECT count(*) FROM repositories", 3},
			{"SELECT count(*) FROM snapshots", 5},
			{"SELECT count(*) FROM scans", 4},
			{"SELECT count(*) FROM findings", 6}, // f0 was discarded by the requeue
			{"SELECT count(*) FROM findings WHERE id = 'f0'", 0},
			{"SELECT count(*) FROM issues", 4},
			{"SELECT count(*) FROM tokens", 3},
			{"SELECT count(*) FROM activity WHERE stream_id LIKE 'access-%'", 0},
		}
		for _, c := range checks {
			if got := count(t, db, c.q); got != c.want {
				t.Errorf("%s = %d, want %d", c.q, got, c.want)
			}
		}
		var activity int
		head, _ := env.Store.Head(t.Context())
		all, _, _ := env.Store.ReadAll(t.Context(), eventstore.Query{Categories: []string{"project", "repository", "scan", "issue"}, Limit: 1000})
		if activity = count(t, db, "SELECT count(*) FROM activity"); activity != len(all) {
			t.Errorf("activity rows = %d, want %d", activity, len(all))
		}
		for _, s := range mustStatus(t, r) {
			if s.State != projections.StateLive || s.Position != head || s.LagEvents != 0 {
				t.Errorf("status %+v, want live at head %s", s, head)
			}
		}

		// Live: a new event is applied after the runner caught up.
		pos := env.Append(t, pt.Alice, "project-p1", domain.ProjectRenamed{Name: "alpha-2", At: w.Now()})
		pt.WaitFor(t, r, pos)
		var name string
		if err := db.QueryRowContext(t.Context(), "SELECT name FROM projects WHERE id = 'p1'").Scan(&name); err != nil || name != "alpha-2" {
			t.Errorf("project p1 name = %q, %v; want alpha-2", name, err)
		}
		// A filtered projection still reaches the head of events it does
		// not read (WaitFor depends on it).
		if s := statusOf(t, r, projections.NameAccess); s.Position.Less(pos) {
			t.Errorf("access projection at %s, want >= %s", s.Position, pos)
		}
	})
}

func mustStatus(t *testing.T, r *projections.Runner) []projections.Status {
	t.Helper()
	st, err := r.Status(t.Context())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

func TestFailingEventStopsOnlyItsProjection(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, env *pt.Env) {
		w := pt.Seed(t, env)
		// projects: a rename of a project that was never created (an
		// invariant); access: data that does not decode.
		ghost := env.Append(t, pt.Alice, "project-ghost", domain.ProjectRenamed{Name: "boo", At: w.Now()})
		bad := env.AppendRaw(t, "access-mallory", "TokenIssued", `{"token_id": 5}`)
		after := env.Append(t, pt.Alice, "repository-r1", domain.SnapshotCaptured{SnapshotID: "s9", Digest: "sha256:" + strings.Repeat("9", 64), At: w.Now()})
		afterAccess := env.Append(t, pt.Admin, "access-dave", domain.TokenIssued{TokenID: "tk-dave", Principal: "dave", Name: "x", Hash: domain.HashToken("d"), At: w.Now()})

		reg := prometheus.NewRegistry()
		cfg := env.Config()
		cfg.Metrics = reg
		r := pt.Start(t, cfg)
		pt.WaitFor(t, r, afterAccess) // failed projections do not hold WaitFor up

		for _, c := range []struct {
			name   string
			pos    eventstore.Position
			typ    string
			reason string
		}{
			{projections.NameProjects, ghost, "ProjectRenamed", "project ghost"},
			{projections.NameAccess, bad, "TokenIssued", "decode"},
		} {
			s := statusOf(t, r, c.name)
			if s.State != projections.StateFailed || s.Failure == nil {
				t.Fatalf("%s status = %+v, want failed", c.name, s)
			}
			if s.Failure.Position != c.pos || s.Failure.EventType != c.typ || s.Failure.EventID == "" || !strings.Contains(s.Failure.Reason, c.reason) {
				t.Errorf("%s failure = %+v, want %s at %s with %q", c.name, s.Failure, c.typ, c.pos, c.reason)
			}
			if !strings.Contains(s.Error, c.name) || !strings.Contains(s.Error, s.Failure.EventID) {
				t.Errorf("%s error %q does not name the projection and event", c.name, s.Error)
			}
			// It stopped on the bad event, having applied what preceded it.
			if !s.Position.Less(c.pos) || s.Position.IsZero() {
				t.Errorf("%s position %s, want before %s, past what preceded it", c.name, s.Position, c.pos)
			}
			if got := gauge(t, reg, "vega_projection_failed", c.name); got != 1 {
				t.Errorf("vega_projection_failed{%s} = %v, want 1", c.name, got)
			}
			var state, msg string
			if err := env.DB.QueryRowContext(t.Context(), env.Dialect.Rebind("SELECT state, error FROM projection_state WHERE name = ?"), c.name).Scan(&state, &msg); err != nil || state != "failed" || msg != s.Error {
				t.Errorf("%s stored state %q %q (%v), want failed with the status error", c.name, state, msg, err)
			}
		}
		// The others went on past the bad events.
		for _, name := range []string{projections.NameRepositories, projections.NameActivity, projections.NameScans} {
			if s := statusOf(t, r, name); s.State == projections.StateFailed || s.Position.Less(after) {
				t.Errorf("%s status %+v, want past %s", name, s, after)
			}
			if got := gauge(t, reg, "vega_projection_failed", name); got != 0 {
				t.Errorf("vega_projection_failed{%s} = %v, want 0", name, got)
			}
		}
		if n := count(t, env.ReadDB, "SELECT count(*) FROM snapshots WHERE id = 's9'"); n != 1 {
			t.Errorf("snapshot s9 rows = %d, want 1", n)
		}
		if n := count(t, env.ReadDB, "SELECT count(*) FROM projects WHERE name IN ('alpha', 'beta-2')"); n != 2 {
			t.Errorf("projects before the bad event: %d rows, want 2", n)
		}
		if n := count(t, env.ReadDB, "SELECT count(*) FROM tokens"); n != 3 {
			t.Errorf("tokens before the bad event: %d rows, want 3", n)
		}
		if n := count(t, env.ReadDB, "SELECT count(*) FROM tokens WHERE id = 'tk-dave'"); n != 0 {
			t.Errorf("tk-dave was applied after the access projection failed")
		}
		// A rebuild meets the same event and says so; the live one stays
		// failed.
		err := r.Rebuild(t.Context(), projections.NameProjects)
		if err == nil || !strings.Contains(err.Error(), "ProjectRenamed") {
			t.Errorf("rebuild of the failed projection: %v, want an error naming the event", err)
		}
		if s := statusOf(t, r, projections.NameProjects); s.State != projections.StateFailed {
			t.Errorf("after failed rebuild: %+v", s)
		}
		if err := r.Rebuild(t.Context(), "nope"); !errors.Is(err, projections.ErrUnknownProjection) {
			t.Errorf("rebuild unknown: %v", err)
		}
	})
}

func gauge(t *testing.T, reg *prometheus.Registry, name, projection string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "projection" && l.GetValue() == projection {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{projection=%q}", name, projection)
	return 0
}

// TestCrashBetweenWriteAndCommit kills the runner inside a transaction that
// already wrote its read-model rows, restarts it, and checks that the result
// equals a rebuild from zero: no event lost or applied twice.
func TestCrashBetweenWriteAndCommit(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, env *pt.Env) {
		w := pt.Seed(t, env)
		for _, crashAt := range []int{3, 11} {
			ctx, cancel := context.WithCancel(t.Context())
			var commits atomic.Int32
			cfg := env.Config()
			cfg.PageSize = 5
			cfg.BeforeCommit = func(ctx context.Context, c projections.Commit) error {
				if int(commits.Add(1)) == crashAt {
					cancel() // the process dies before COMMIT
					return context.Canceled
				}
				return nil
			}
			r, err := projections.NewRunner(ctx, cfg)
			if err != nil {
				t.Fatalf("new runner: %v", err)
			}
			if err := r.Run(ctx); err != nil {
				t.Fatalf("run: %v", err)
			}
			if commits.Load() < int32(crashAt) {
				t.Fatalf("the crash hook ran %d times, want %d", commits.Load(), crashAt)
			}
		}
		st := mustStatusOf(t, env)
		behind := 0
		for _, s := range st {
			if s.Position.Less(w.Last) {
				behind++
			}
		}
		if behind == 0 {
			t.Fatalf("no projection was interrupted before the head: the test proves nothing")
		}

		r := pt.Start(t, env.Config()) // restart
		pt.WaitFor(t, r, w.Last)
		restarted := dump(t, env.ReadDB)
		for _, name := range projections.Names() {
			if err := r.Rebuild(t.Context(), name); err != nil {
				t.Fatalf("rebuild %s: %v", name, err)
			}
		}
		rebuilt := dump(t, env.ReadDB)
		if len(rebuilt["findings"]) != 6 || len(rebuilt["activity"]) == 0 {
			t.Fatalf("rebuilt dump looks empty: %d findings", len(rebuilt["findings"]))
		}
		for table, rows := range rebuilt {
			if !slices.Equal(rows, restarted[table]) {
				t.Errorf("table %s after crash and restart differs from a rebuild:\nrestarted %q\nrebuilt   %q", table, restarted[table], rows)
			}
		}
	})
}

// mustStatusOf reads the status of a runner that does not run.
func mustStatusOf(t *testing.T, env *pt.Env) []projections.Status {
	t.Helper()
	r, err := projections.NewRunner(t.Context(), env.Config())
	if err != nil {
		t.Fatalf("new runner: %v", err)
	}
	return mustStatus(t, r)
}

func TestRebuildWhileServing(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, env *pt.Env) {
		w := pt.Seed(t, env)
		var r *projections.Runner
		var sawRebuilding, servedDuring atomic.Bool
		cfg := env.Config()
		cfg.PageSize = 4
		cfg.BeforeCommit = func(ctx context.Context, c projections.Commit) error {
			if !c.Rebuild || c.Projection != projections.NameFindings {
				return nil
			}
			st, err := r.Status(ctx)
			if err != nil {
				return err
			}
			for _, s := range st {
				if s.Name == projections.NameFindings && s.State == projections.StateRebuilding {
					sawRebuilding.Store(true)
				}
			}
			// The live read model still serves every finding.
			var n int
			if err := env.ReadDB.QueryRowContext(ctx, "SELECT count(*) FROM findings").Scan(&n); err == nil && n == 6 {
				servedDuring.Store(true)
			}
			return nil
		}
		r = pt.Start(t, cfg)
		pt.WaitFor(t, r, w.Last)
		before := dump(t, env.ReadDB)
		gen := statusOf(t, r, projections.NameFindings).Generation

		if err := r.Rebuild(t.Context(), projections.NameFindings); err != nil {
			t.Fatalf("rebuild: %v", err)
		}
		if !sawRebuilding.Load() || !servedDuring.Load() {
			t.Errorf("during the rebuild: status rebuilding %v, live model served %v; want both", sawRebuilding.Load(), servedDuring.Load())
		}
		s := statusOf(t, r, projections.NameFindings)
		if s.Generation != gen+1 || s.State != projections.StateLive {
			t.Errorf("after rebuild: %+v, want live generation %d", s, gen+1)
		}
		// A rebuild fills its tables before it creates the indexes only
		// queries use; they must all exist once it swapped.
		for _, idx := range []string{"order", "rule", "file", "diff", "triage", "issue"} {
			name := fmt.Sprintf("findings_g%d_%s", gen+1, idx)
			q := "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?"
			if env.Dialect == projections.Postgres {
				q = "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
			}
			if n := count(t, env.DB, q, name); n != 1 {
				t.Errorf("index %s: %d, want 1", name, n)
			}
		}
		after := dump(t, env.ReadDB)
		for table, rows := range before {
			if !slices.Equal(rows, after[table]) {
				t.Errorf("table %s changed by the rebuild:\nbefore %q\nafter  %q", table, rows, after[table])
			}
		}
		// The old generation is gone; live events go to the new one.
		pos := env.Append(t, pt.Alice, "scan-sc4", domain.ScanClaimed{WorkerID: "w9", Fence: 1, LeaseUntil: w.Now().Add(time.Hour), At: w.Now()},
			domain.ScanStarted{Fence: 1, At: w.Now()},
			domain.FindingRecorded{Fence: 1, Finding: domain.Finding{ID: "f9", Fingerprint: "fp9", RuleID: "r", Title: "t", Severity: domain.SeverityInfo,
				Engine: "builtin", File: "x.go", StartLine: 1, EndLine: 1}, At: w.Now()})
		pt.WaitFor(t, r, pos)
		if n := count(t, env.ReadDB, "SELECT count(*) FROM findings WHERE scan_id = 'sc4'"); n != 1 {
			t.Errorf("findings of sc4 after rebuild = %d, want 1", n)
		}
		if _, err := env.ReadDB.ExecContext(t.Context(), fmt.Sprintf("SELECT 1 FROM findings_g%d", gen)); err == nil {
			t.Errorf("old generation findings_g%d still exists", gen)
		}
	})
}

// TestGroupedPageFailsOnTheExactEvent puts an event each projection cannot
// apply in the middle of a page of writes it groups (a finding ID taken
// twice in one multi-row INSERT, counts of a scan that does not exist, an
// issue opened twice): the grouped write fails without naming an event,
// and the projection must still stop on exactly that event, having applied
// what preceded it.
func TestGroupedPageFailsOnTheExactEvent(t *testing.T) {
	t.Parallel()
	onDialects(t, func(t *testing.T, env *pt.Env) {
		w := pt.Seed(t, env)
		finding := func(id string) domain.Event {
			return domain.FindingRecorded{Fence: 1, Finding: domain.Finding{ID: id, Fingerprint: "fp-" + id, RuleID: "r", Title: "t",
				Severity: domain.SeverityLow, Engine: "builtin", File: "x.go", StartLine: 1, EndLine: 1}, At: w.Now()}
		}
		var before []domain.Event
		for i := range 10 {
			before = append(before, finding(fmt.Sprintf("g%02d", i)))
		}
		env.Append(t, "worker", "scan-sc4", before...)
		dup := env.Append(t, "worker", "scan-sc4", finding("g03"))
		var rest []domain.Event
		for i := 10; i < 20; i++ {
			rest = append(rest, finding(fmt.Sprintf("g%02d", i)))
		}
		env.Append(t, "worker", "scan-sc4", rest...)
		ghost := env.Append(t, "worker", "scan-ghost", finding("h1"))
		env.Append(t, "worker", "scan-ghost", finding("h2"))
		opened := domain.IssueOpened{IssueID: "i9", RepositoryID: "r1", Fingerprint: "fp-g10", RuleID: "r", Title: "t",
			Severity: domain.SeverityLow, File: "x.go", Engine: "builtin", ScanID: "sc4", FindingID: "g10", At: w.Now()}
		env.Append(t, "worker", "issue-i9", opened)
		twice := env.Append(t, "worker", "issue-i9", opened)
		last := env.Append(t, pt.Alice, "project-p1", domain.ProjectRenamed{Name: "alpha-3", At: w.Now()})

		r := pt.Start(t, env.Config()) // one page per projection
		pt.WaitFor(t, r, last)
		for _, c := range []struct {
			name string
			at   eventstore.Position
			typ  string
		}{
			{projections.NameFindings, dup, "FindingRecorded"},
			{projections.NameScans, ghost, "FindingRecorded"},
			{projections.NameActivity, ghost, "FindingRecorded"},
			{projections.NameIssues, twice, "IssueOpened"},
		} {
			s := statusOf(t, r, c.name)
			if s.State != projections.StateFailed || s.Failure == nil {
				t.Errorf("%s status %+v, want failed", c.name, s)
				continue
			}
			if s.Failure.Position != c.at || s.Failure.EventType != c.typ {
				t.Errorf("%s stopped on %s %s, want %s %s", c.name, s.Failure.EventType, s.Failure.Position, c.typ, c.at)
			}
			evs, err := env.Store.ReadStream(t.Context(), eventstore.StreamID(s.Failure.StreamID), s.Failure.Version, 1)
			if err != nil || len(evs) != 1 || evs[0].ID != s.Failure.EventID || evs[0].Position != c.at {
				t.Errorf("%s failure names event %s (%s v%d), not the one at %s: %+v, %v", c.name, s.Failure.EventID,
					s.Failure.StreamID, s.Failure.Version, c.at, evs, err)
			}
			if !strings.Contains(s.Error, s.Failure.EventID) {
				t.Errorf("%s error %q does not name event %s", c.name, s.Error, s.Failure.EventID)
			}
		}
		// What preceded each bad event was applied, grouped or not.
		for _, c := range []struct {
			q    string
			want int
		}{
			{"SELECT count(*) FROM findings WHERE scan_id = 'sc4'", 10},
			{"SELECT low FROM scans WHERE id = 'sc4'", 21},
			{"SELECT count(*) FROM activity WHERE stream_id = 'scan-sc4'", 22},
			{"SELECT count(*) FROM issues WHERE id = 'i9'", 1},
			{"SELECT count(*) FROM issue_history WHERE issue_id = 'i9'", 1},
			{"SELECT count(*) FROM projects WHERE name = 'alpha-3'", 1},
		} {
			if got := count(t, env.ReadDB, c.q); got != c.want {
				t.Errorf("%s = %d, want %d", c.q, got, c.want)
			}
		}
	})
}
