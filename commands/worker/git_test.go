package worker_test

import (
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vega-sec/vega/adapters/launcher/inprocess"
	"github.com/vega-sec/vega/adapters/nats/bustest"
	"github.com/vega-sec/vega/adapters/source/git"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/domain"
)

// gitServer serves a one-commit repository over git's smart HTTP protocol
// on loopback and returns its URL and the commit.
func gitServer(t *testing.T) (string, string) {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("git not installed: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	work := t.TempDir()
	run := func(dir string, args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, b)
		}
		return strings.TrimSpace(string(b))
	}
	src := filepath.Join(work, "src")
	run(work, "init", "-q", src)
	if err := os.WriteFile(filepath.Join(src, "settings.py"), []byte("AWS_ACCESS_KEY_ID = \""+fakeAWSKeyID+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(src, "add", ".")
	run(src, "commit", "-q", "-m", "one")
	commit := run(src, "rev-parse", "HEAD")
	root := filepath.Join(work, "srv")
	run(work, "clone", "-q", "--bare", src, filepath.Join(root, "repo.git"))
	srv := httptest.NewServer(&cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"}})
	t.Cleanup(srv.Close)
	return srv.URL + "/repo.git", commit
}

func TestGitCaptureThenScan(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{})
	url, commit := gitServer(t)
	capturer, err := git.New(git.Config{AllowHTTP: true, AllowPrivate: true, TempDir: t.TempDir()})
	if err != nil {
		t.Skipf("git: %v", err)
	}
	snaps, err := snapshot.New(e.h, e.blobs, snapshot.Config{TempDir: t.TempDir(), Git: capturer})
	if err != nil {
		t.Fatal(err)
	}
	e.startWorkerWith(t, opts{}, inprocess.New(inprocess.Runner(e.runnerDeps(t, 0)), nil), snaps)
	repo, _, err := e.h.Streams.Repositories.Load(e.ctx, e.repoID)
	if err != nil {
		t.Fatal(err)
	}
	add := func(u string) string {
		r, err := e.h.AddRepository.Handle(e.ctx, commands.AddRepository{ProjectID: repo.ProjectID, Name: "g",
			Source: domain.Source{Kind: domain.SourceGit, URL: u, Ref: "main"}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Repository.ID
	}
	good, bad := add(url), add("http://localhost:1/nowhere.git")
	var snapIDs []string
	for _, id := range []string{good, bad} {
		res, err := e.h.RequestGitSnapshot.Handle(e.ctx, commands.RequestGitSnapshot{RepositoryID: id})
		if err != nil {
			t.Fatal(err)
		}
		snapIDs = append(snapIDs, res.Snapshot.ID)
	}
	snap := func(repoID, id string) domain.Snapshot {
		r, _, err := e.h.Streams.Repositories.Load(e.ctx, repoID)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := r.Snapshot(id)
		return s
	}
	bustest.Eventually(t, "captures end", func() bool {
		return snap(good, snapIDs[0]).Status != domain.SnapshotStatusPending && snap(bad, snapIDs[1]).Status != domain.SnapshotStatusPending
	})
	s := snap(good, snapIDs[0])
	if s.Status != domain.SnapshotStatusCaptured || s.Commit != commit || s.FileCount != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	if f := snap(bad, snapIDs[1]); f.Status != domain.SnapshotStatusFailed || f.Error == "" {
		t.Errorf("failed snapshot %+v", f)
	}
	// The captured snapshot scans like an upload.
	sc, err := e.h.RequestScan.Handle(e.ctx, commands.RequestScan{RepositoryID: good})
	if err != nil {
		t.Fatal(err)
	}
	done := e.waitState(t, sc.Scan.ID, domain.ScanStateCompleted, domain.ScanStateFailed)
	if done.State != domain.ScanStateCompleted || len(done.Findings) == 0 {
		t.Errorf("scan %s with %d findings (%s)", done.State, len(done.Findings), done.Reason)
	}
}
