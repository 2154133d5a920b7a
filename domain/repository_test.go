package domain_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
)

var digest = "sha256:" + strings.Repeat("0f", 32)

func TestDefaultThreatProfile(t *testing.T) {
	t.Parallel()
	d := domain.DefaultThreatProfile()
	want := domain.ThreatProfile{
		Name:        "default",
		Categories:  []domain.Category{"secrets", "injection", "crypto", "config"},
		MinSeverity: domain.SeverityLow,
		Include:     []string{"**"},
		Exclude:     []string{},
		Engines:     []string{"builtin"},
		Version:     0,
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("DefaultThreatProfile() = %+v, want %+v", d, want)
	}
	d.Engines[0] = "changed"
	if domain.DefaultThreatProfile().Engines[0] != "builtin" {
		t.Fatal("DefaultThreatProfile shares its slices")
	}
}

func TestThreatProfileNormalize(t *testing.T) {
	t.Parallel()
	got, err := domain.ThreatProfile{Categories: []domain.Category{"config", "secrets", "config"}, MinSeverity: "high"}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "default" || !reflect.DeepEqual(got.Categories, []domain.Category{"secrets", "config"}) ||
		got.MinSeverity != domain.SeverityHigh || !reflect.DeepEqual(got.Include, []string{"**"}) ||
		!reflect.DeepEqual(got.Engines, []string{"builtin"}) || got.Exclude == nil {
		t.Fatalf("Normalize = %+v", got)
	}

	tests := []struct {
		name, field string
		mod         func(*domain.ThreatProfile)
	}{
		{"empty categories", "categories", func(p *domain.ThreatProfile) { p.Categories = []domain.Category{} }},
		{"unknown category", "categories[1]", func(p *domain.ThreatProfile) { p.Categories = []domain.Category{"secrets", "xss"} }},
		{"bad severity", "min_severity", func(p *domain.ThreatProfile) { p.MinSeverity = "urgent" }},
		{"empty include", "include", func(p *domain.ThreatProfile) { p.Include = []string{} }},
		{"dot-dot include", "include[1]", func(p *domain.ThreatProfile) { p.Include = []string{"src/**", "../x"} }},
		{"bad exclude", "exclude[0]", func(p *domain.ThreatProfile) { p.Exclude = []string{"[a-"} }},
		{"absolute exclude", "exclude[0]", func(p *domain.ThreatProfile) { p.Exclude = []string{"/etc"} }},
		{"too many globs", "include", func(p *domain.ThreatProfile) { p.Include = make([]string, domain.MaxGlobs+1) }},
		{"empty engines", "engines", func(p *domain.ThreatProfile) { p.Engines = []string{} }},
		{"bad engine", "engines[0]", func(p *domain.ThreatProfile) { p.Engines = []string{"Built In"} }},
		{"negative tokens", "llm_budget.max_tokens", func(p *domain.ThreatProfile) { p.LLMBudget.MaxTokens = -1 }},
		{"negative cost", "llm_budget.max_cost_usd", func(p *domain.ThreatProfile) { p.LLMBudget.MaxCostUSD = -0.5 }},
		{"negative requests", "llm_budget.max_requests", func(p *domain.ThreatProfile) { p.LLMBudget.MaxRequests = -1 }},
		{"negative concurrency", "llm_budget.max_concurrent", func(p *domain.ThreatProfile) { p.LLMBudget.MaxConcurrent = -1 }},
		{"long name", "name", func(p *domain.ThreatProfile) { p.Name = strings.Repeat("n", domain.MaxNameLength+1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p domain.ThreatProfile
			tt.mod(&p)
			_, err := p.Normalize()
			wantField(t, err, tt.field)
		})
	}
}

func TestLLMBudgetExhausted(t *testing.T) {
	t.Parallel()
	b := domain.LLMBudget{MaxTokens: 100, MaxCostUSD: 2, MaxRequests: 3}
	for _, tt := range []struct {
		use   domain.LLMUsage
		limit string
	}{
		{domain.LLMUsage{InputTokens: 50, OutputTokens: 49, CostUSD: 1.99, Requests: 2}, ""},
		{domain.LLMUsage{InputTokens: 50, OutputTokens: 50}, "max_tokens"},
		{domain.LLMUsage{CostUSD: 2}, "max_cost_usd"},
		{domain.LLMUsage{Requests: 3}, "max_requests"},
	} {
		limit, ok := b.Exhausted(tt.use)
		if limit != tt.limit || ok != (tt.limit != "") {
			t.Errorf("Exhausted(%+v) = %q, %v; want %q", tt.use, limit, ok, tt.limit)
		}
	}
	if _, ok := (domain.LLMBudget{}).Exhausted(domain.LLMUsage{InputTokens: 1 << 40}); ok {
		t.Error("a zero budget is no limit")
	}
}

func TestRepositorySnapshotsAndProfiles(t *testing.T) {
	t.Parallel()
	p, _ := newProject(t)
	r := new(domain.Repository)
	src := domain.Source{Kind: domain.SourceGit, URL: "https://example.com/org/repo.git", Ref: "main"}
	events := on(t, r)(domain.NewRepository(p, "r1", "repo", src, domain.SourcePolicy{}, t0))
	add := func(evs []domain.Event, err error) {
		t.Helper()
		events = append(events, must(t, r, evs, err)...)
	}
	if r.ThreatProfile().Version != 0 {
		t.Fatal("a new repository must read the default profile")
	}

	add(r.RequestSnapshot("s1", "", t0))
	if s, _ := r.Snapshot("s1"); s.Status != domain.SnapshotStatusPending || s.Ref != "main" {
		t.Fatalf("snapshot = %+v", s)
	}
	if _, ok := r.LatestCaptured(); ok {
		t.Fatal("pending snapshot counted as captured")
	}
	_, err := r.RequestSnapshot("s1", "", t0)
	wantIs(t, err, domain.ErrConflict)
	_, err = r.RequestSnapshot("s9", "--upload-pack=x", t0)
	wantField(t, err, "ref")
	_, err = r.CaptureSnapshot("s1", domain.Capture{Digest: "md5:abc"}, t0)
	wantField(t, err, "digest")
	_, err = r.CaptureSnapshot("s1", domain.Capture{Digest: digest, Commit: "xyz"}, t0)
	wantField(t, err, "commit")
	_, err = r.CaptureSnapshot("s1", domain.Capture{Digest: digest}, t0)
	wantField(t, err, "commit")
	_, err = r.CaptureSnapshot("s9", domain.Capture{Digest: digest}, t0)
	wantField(t, err, "source.kind") // no archive uploads to a git repository

	commit := strings.Repeat("a1", 20)
	add(r.CaptureSnapshot("s1", domain.Capture{Digest: digest, SizeBytes: 2048, FileCount: 12, Commit: commit}, at(time.Minute)))
	_, err = r.CaptureSnapshot("s1", domain.Capture{Digest: digest, Commit: commit}, t0)
	wantIs(t, err, domain.ErrConflict)
	_, err = r.FailSnapshot("s1", "late", t0)
	wantIs(t, err, domain.ErrConflict)
	_, err = r.FailSnapshot("s404", "x", t0)
	wantIs(t, err, domain.ErrNotFound)

	add(r.RequestSnapshot("s2", "develop", at(2*time.Minute)))
	add(r.FailSnapshot("s2", strings.Repeat("e", 3*domain.MaxReasonLength), at(3*time.Minute)))
	if s, _ := r.Snapshot("s2"); s.Status != domain.SnapshotStatusFailed || len([]rune(s.Error)) != domain.MaxReasonLength {
		t.Fatalf("failed snapshot = %+v", s)
	}
	if s, ok := r.LatestCaptured(); !ok || s.ID != "s1" || s.Commit != commit || s.FileCount != 12 {
		t.Fatalf("LatestCaptured = %+v, %v", s, ok)
	}

	add(r.DefineThreatProfile(domain.ThreatProfile{Name: "strict", MinSeverity: domain.SeverityHigh}, t0))
	add(r.DefineThreatProfile(domain.ThreatProfile{Name: "ai", Engines: []string{"builtin", "ai"}, Version: 42}, t0))
	if cur := r.ThreatProfile(); cur.Version != 2 || cur.Name != "ai" || len(r.Profiles) != 2 || r.Profiles[0].Version != 1 {
		t.Fatalf("profiles = %+v", r.Profiles)
	}
	_, err = r.DefineThreatProfile(domain.ThreatProfile{Include: []string{}}, t0)
	wantField(t, err, "include")

	add(r.Remove(at(time.Hour)))
	for name, call := range map[string]func() error{
		"Remove":          func() error { _, err := r.Remove(t0); return err },
		"RequestSnapshot": func() error { _, err := r.RequestSnapshot("s3", "", t0); return err },
		"CaptureSnapshot": func() error { _, err := r.CaptureSnapshot("s3", domain.Capture{Digest: digest}, t0); return err },
		"Define":          func() error { _, err := r.DefineThreatProfile(domain.ThreatProfile{}, t0); return err },
	} {
		if err := call(); err == nil {
			t.Errorf("%s on a removed repository succeeded", name)
		} else {
			wantIs(t, err, domain.ErrNotFound)
		}
	}

	got := checkFold(t, events, domain.FoldRepository)
	if !got.Removed || got.Version != len(events) || len(got.Snapshots) != 2 {
		t.Fatalf("folded = %+v", got)
	}
}

func TestArchiveRepository(t *testing.T) {
	t.Parallel()
	p, _ := newProject(t)
	r := new(domain.Repository)
	on(t, r)(domain.NewRepository(p, "r1", "repo", domain.Source{Kind: domain.SourceArchive}, domain.SourcePolicy{}, t0))
	_, err := r.RequestSnapshot("s1", "main", t0)
	wantField(t, err, "source.kind")
	_, err = r.CaptureSnapshot("s1", domain.Capture{Digest: digest, Commit: strings.Repeat("a", 40)}, t0)
	wantField(t, err, "commit")
	on(t, r)(r.CaptureSnapshot("s1", domain.Capture{Digest: digest, SizeBytes: 1, FileCount: 1}, t0))
	on(t, r)(r.CaptureSnapshot("s2", domain.Capture{Digest: digest, SizeBytes: 1, FileCount: 1}, at(time.Second)))
	if s, ok := r.LatestCaptured(); !ok || s.ID != "s2" {
		t.Fatalf("LatestCaptured = %+v", s)
	}
}

func TestNewRepositoryValidation(t *testing.T) {
	t.Parallel()
	p, _ := newProject(t)
	tests := []struct {
		name, field string
		id, rname   string
		src         domain.Source
		policy      domain.SourcePolicy
	}{
		{"no id", "id", "", "n", domain.Source{Kind: domain.SourceArchive}, domain.SourcePolicy{}},
		{"no name", "name", "r", "", domain.Source{Kind: domain.SourceArchive}, domain.SourcePolicy{}},
		{"bad kind", "source.kind", "r", "n", domain.Source{Kind: "svn"}, domain.SourcePolicy{}},
		{"archive with url", "source.url", "r", "n", domain.Source{Kind: domain.SourceArchive, URL: "https://x/y"}, domain.SourcePolicy{}},
		{"archive with ref", "source.ref", "r", "n", domain.Source{Kind: domain.SourceArchive, Ref: "main"}, domain.SourcePolicy{}},
		{"git without url", "source.url", "r", "n", domain.Source{Kind: domain.SourceGit}, domain.SourcePolicy{}},
		{"git over http", "source.url", "r", "n", domain.Source{Kind: domain.SourceGit, URL: "http://x/y"}, domain.SourcePolicy{}},
		{"git bad ref", "source.ref", "r", "n", domain.Source{Kind: domain.SourceGit, URL: "https://x/y", Ref: "-x"}, domain.SourcePolicy{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := domain.NewRepository(p, tt.id, tt.rname, tt.src, tt.policy, t0)
			wantField(t, err, tt.field)
		})
	}
	if _, err := domain.NewRepository(p, "r", "n", domain.Source{Kind: domain.SourceGit, URL: "http://127.0.0.1/y"}, domain.SourcePolicy{AllowHTTP: true}, t0); err != nil {
		t.Fatalf("http with AllowHTTP: %v", err)
	}
	_, err := domain.NewRepository(new(domain.Project), "r", "n", domain.Source{Kind: domain.SourceArchive}, domain.SourcePolicy{}, t0)
	wantIs(t, err, domain.ErrNotFound)
}
