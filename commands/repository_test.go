package commands_test

import (
	"testing"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
)

func TestAddAndRemoveRepository(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	project := e.project()

	res, err := e.h.AddRepository.Handle(e.ctx, commands.AddRepository{ProjectID: project, Name: "web",
		Source: domain.Source{Kind: domain.SourceGit, URL: "https://example.com/acme/web.git", Ref: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Repository; r.ProjectID != project || r.Name != "web" || r.Source.Kind != domain.SourceGit || res.Version != 1 {
		t.Fatalf("repository %+v, result %+v", r, res.Result)
	}

	// The policy relaxes the scheme check.
	httpSrc := domain.Source{Kind: domain.SourceGit, URL: "http://127.0.0.1:8080/r.git"}
	_, err = e.h.AddRepository.Handle(e.ctx, commands.AddRepository{ProjectID: project, Name: "local", Source: httpSrc})
	wantField(t, err, "source.url")
	relaxed := newEnv(t, e.store, func(o *commands.Options) { o.SourcePolicy = domain.SourcePolicy{AllowHTTP: true} })
	if _, err := relaxed.h.AddRepository.Handle(e.ctx, commands.AddRepository{ProjectID: project, Name: "local", Source: httpSrc}); err != nil {
		t.Fatalf("http with AllowHTTP: %v", err)
	}

	tests := []struct {
		name  string
		cmd   commands.AddRepository
		want  error
		field string
	}{
		{"unknown project", commands.AddRepository{ProjectID: "nope", Name: "x", Source: domain.Source{Kind: domain.SourceArchive}}, domain.ErrNotFound, ""},
		{"bad input before unknown project", commands.AddRepository{ProjectID: "nope", Name: "", Source: domain.Source{Kind: domain.SourceArchive}}, nil, "name"},
		{"ext transport", commands.AddRepository{ProjectID: project, Name: "x", Source: domain.Source{Kind: domain.SourceGit, URL: "ext::sh -c id"}}, nil, "source.url"},
		{"unknown kind", commands.AddRepository{ProjectID: project, Name: "x", Source: domain.Source{Kind: "svn"}}, nil, "source.kind"},
		{"taken id", commands.AddRepository{ProjectID: project, RepositoryID: res.Repository.ID, Name: "x", Source: domain.Source{Kind: domain.SourceArchive}}, domain.ErrConflict, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.h.AddRepository.Handle(e.ctx, tt.cmd)
			if tt.field != "" {
				wantField(t, err, tt.field)
				return
			}
			wantIs(t, err, tt.want)
		})
	}

	rm, err := e.h.RemoveRepository.Handle(e.ctx, commands.RemoveRepository{RepositoryID: res.Repository.ID})
	if err != nil || !rm.Repository.Removed {
		t.Fatalf("remove: %+v, %v", rm, err)
	}
	_, err = e.h.RemoveRepository.Handle(e.ctx, commands.RemoveRepository{RepositoryID: res.Repository.ID})
	wantIs(t, err, domain.ErrNotFound)

	if _, err := e.h.ArchiveProject.Handle(e.ctx, commands.ArchiveProject{ProjectID: project}); err != nil {
		t.Fatal(err)
	}
	_, err = e.h.AddRepository.Handle(e.ctx, commands.AddRepository{ProjectID: project, Name: "late", Source: domain.Source{Kind: domain.SourceArchive}})
	wantIs(t, err, domain.ErrConflict)
}

func TestSnapshots(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	project := e.project()
	archive := e.archiveRepo(project)
	git := must[commands.RepositoryResult](t)(e.h.AddRepository.Handle(e.ctx, commands.AddRepository{ProjectID: project, Name: "g",
		Source: domain.Source{Kind: domain.SourceGit, URL: "https://example.com/g.git"}})).Repository.ID

	up, err := e.h.RecordSnapshotCaptured.Handle(e.ctx, commands.RecordSnapshotCaptured{RepositoryID: archive,
		Capture: domain.Capture{Digest: digest, SizeBytes: 42, FileCount: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if s := up.Snapshot; s.ID == "" || s.Status != domain.SnapshotStatusCaptured || s.SizeBytes != 42 || up.RepositoryID != archive {
		t.Fatalf("uploaded snapshot %+v", s)
	}

	pending, err := e.h.RequestGitSnapshot.Handle(e.ctx, commands.RequestGitSnapshot{RepositoryID: git, Ref: "v1.2"})
	if err != nil || pending.Snapshot.Status != domain.SnapshotStatusPending || pending.Snapshot.Ref != "v1.2" {
		t.Fatalf("request git snapshot: %+v, %v", pending.Snapshot, err)
	}
	other := must[commands.SnapshotResult](t)(e.h.RequestGitSnapshot.Handle(e.ctx, commands.RequestGitSnapshot{RepositoryID: git}))

	tests := []struct {
		name  string
		run   func() error
		want  error
		field string
	}{
		{"bad digest", func() error {
			_, err := e.h.RecordSnapshotCaptured.Handle(e.ctx, commands.RecordSnapshotCaptured{RepositoryID: archive, Capture: domain.Capture{Digest: "md5:00"}})
			return err
		}, nil, "digest"},
		{"archive with commit", func() error {
			_, err := e.h.RecordSnapshotCaptured.Handle(e.ctx, commands.RecordSnapshotCaptured{RepositoryID: archive, Capture: domain.Capture{Digest: digest, Commit: commit}})
			return err
		}, nil, "commit"},
		{"upload to git repository", func() error {
			_, err := e.h.RecordSnapshotCaptured.Handle(e.ctx, commands.RecordSnapshotCaptured{RepositoryID: git, Capture: domain.Capture{Digest: digest, Commit: commit}})
			return err
		}, nil, "source.kind"},
		{"git capture without commit", func() error {
			_, err := e.h.RecordSnapshotCaptured.Handle(e.ctx, commands.RecordSnapshotCaptured{RepositoryID: git, SnapshotID: pending.Snapshot.ID, Capture: domain.Capture{Digest: digest}})
			return err
		}, nil, "commit"},
		{"git request on archive repository", func() error {
			_, err := e.h.RequestGitSnapshot.Handle(e.ctx, commands.RequestGitSnapshot{RepositoryID: archive})
			return err
		}, nil, "source.kind"},
		{"bad ref", func() error {
			_, err := e.h.RequestGitSnapshot.Handle(e.ctx, commands.RequestGitSnapshot{RepositoryID: git, Ref: "--upload-pack=x"})
			return err
		}, nil, "ref"},
		{"fail unknown snapshot", func() error {
			_, err := e.h.RecordSnapshotFailed.Handle(e.ctx, commands.RecordSnapshotFailed{RepositoryID: git, SnapshotID: "nope", Reason: "x"})
			return err
		}, domain.ErrNotFound, ""},
		{"unknown repository", func() error {
			_, err := e.h.RequestGitSnapshot.Handle(e.ctx, commands.RequestGitSnapshot{RepositoryID: "nope"})
			return err
		}, domain.ErrNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if tt.field != "" {
				wantField(t, err, tt.field)
				return
			}
			wantIs(t, err, tt.want)
		})
	}

	failed, err := e.h.RecordSnapshotFailed.Handle(e.ctx, commands.RecordSnapshotFailed{RepositoryID: git, SnapshotID: other.Snapshot.ID, Reason: "remote hung up"})
	if err != nil || failed.Snapshot.Status != domain.SnapshotStatusFailed || failed.Snapshot.Error != "remote hung up" {
		t.Fatalf("fail: %+v, %v", failed.Snapshot, err)
	}
	_, err = e.h.RecordSnapshotFailed.Handle(e.ctx, commands.RecordSnapshotFailed{RepositoryID: git, SnapshotID: other.Snapshot.ID, Reason: "again"})
	wantIs(t, err, domain.ErrConflict)

	// An archived project takes no new snapshot, but an in-flight capture ends.
	must[commands.ProjectResult](t)(e.h.ArchiveProject.Handle(e.ctx, commands.ArchiveProject{ProjectID: project}))
	_, err = e.h.RecordSnapshotCaptured.Handle(e.ctx, commands.RecordSnapshotCaptured{RepositoryID: archive, Capture: domain.Capture{Digest: digest}})
	wantIs(t, err, domain.ErrConflict)
	_, err = e.h.RequestGitSnapshot.Handle(e.ctx, commands.RequestGitSnapshot{RepositoryID: git})
	wantIs(t, err, domain.ErrConflict)
	done, err := e.h.RecordSnapshotCaptured.Handle(e.ctx, commands.RecordSnapshotCaptured{RepositoryID: git, SnapshotID: pending.Snapshot.ID,
		Capture: domain.Capture{Digest: digest, Commit: commit}})
	if err != nil || done.Snapshot.Status != domain.SnapshotStatusCaptured || done.Snapshot.Commit != commit {
		t.Fatalf("pending capture on archived project: %+v, %v", done.Snapshot, err)
	}
}

func TestDefineThreatProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	project := e.project()
	repo := e.archiveRepo(project)

	v1, err := e.h.DefineThreatProfile.Handle(e.ctx, commands.DefineThreatProfile{RepositoryID: repo,
		Profile: domain.ThreatProfile{Name: "strict", Categories: []domain.Category{domain.CategoryCrypto, domain.CategorySecrets}, MinSeverity: domain.SeverityHigh}})
	if err != nil {
		t.Fatal(err)
	}
	if p := v1.Profile; p.Version != 1 || p.Name != "strict" || len(p.Categories) != 2 || p.Categories[0] != domain.CategorySecrets || p.Engines[0] != domain.EngineBuiltin {
		t.Fatalf("profile %+v", p)
	}
	v2, err := e.h.DefineThreatProfile.Handle(e.ctx, commands.DefineThreatProfile{RepositoryID: repo, Profile: domain.ThreatProfile{Version: 99}})
	if err != nil || v2.Profile.Version != 2 || v2.Profile.Name != domain.DefaultThreatProfileName {
		t.Fatalf("second profile: %+v, %v", v2.Profile, err)
	}

	for _, tt := range []struct {
		name    string
		profile domain.ThreatProfile
		field   string
	}{
		{"bad severity", domain.ThreatProfile{MinSeverity: "urgent"}, "min_severity"},
		{"no engines", domain.ThreatProfile{Engines: []string{}}, "engines"},
		{"escaping glob", domain.ThreatProfile{Include: []string{"../etc/**"}}, "include[0]"},
		{"negative budget", domain.ThreatProfile{LLMBudget: domain.LLMBudget{MaxTokens: -1}}, "llm_budget.max_tokens"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.h.DefineThreatProfile.Handle(e.ctx, commands.DefineThreatProfile{RepositoryID: repo, Profile: tt.profile})
			wantField(t, err, tt.field)
		})
	}

	must[commands.ProjectResult](t)(e.h.ArchiveProject.Handle(e.ctx, commands.ArchiveProject{ProjectID: project}))
	_, err = e.h.DefineThreatProfile.Handle(e.ctx, commands.DefineThreatProfile{RepositoryID: repo})
	wantIs(t, err, domain.ErrConflict)
}
