package browsertest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vega-sec/vega/adapters/blob/fs"
	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/builtin"
	httpapi "github.com/vega-sec/vega/adapters/http"
	"github.com/vega-sec/vega/adapters/launcher/inprocess"
	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/adapters/nats/bustest"
	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/adapters/web"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/commands/runner"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/commands/worker"
	"github.com/vega-sec/vega/domain"
	pt "github.com/vega-sec/vega/projections/projectiontest"
	"github.com/vega-sec/vega/queries"
)

// waitTimeout bounds each wait on the page: a deadline for failure, never
// a measure of speed.
const waitTimeout = 30 * time.Second

const adminToken = "vega_browser_test_bootstrap_token_0123456789"

// Fake credentials the builtin engine finds (split so that no scanner
// flags this file).
const (
	fakeAWSKeyID  = "AKIA" + "Q7RZ4MWX2KJB6TPN"
	fakeAWSSecret = "rT9vKq2Lm" + "X8bWz4NcP1eYh7GfJ3sDa6UoQ0iZkVw"
)

// chromium returns the browser's path, or skips (fails with CI=true).
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("VEGA_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found at %s (%v): install Debian's chromium package (apt-get install -y chromium)", path, err)
		}
		t.Skipf("chromium not found at %s (%v): skipping the browser suite; apt-get install -y chromium, or set CI=true to make this a failure", path, err)
	}
	return path
}

// gate is a scan engine that waits until opened, then runs the real
// builtin engine: the test watches a scan go from requested to completed
// on a page that is already open.
type gate struct {
	inner engine.Engine
	once  sync.Once
	open  chan struct{}
}

func (g *gate) Name() string { return builtin.Name }

func (g *gate) Scan(ctx context.Context, t engine.Target, emit func(engine.Finding) error) error {
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.inner.Scan(ctx, t, emit)
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// server is the whole system on a loopback port.
type server struct {
	base  string
	cmd   *commands.Handlers
	q     *queries.Service
	gate  *gate
	store *pt.Env
	snaps *snapshot.Service
}

func startServer(t *testing.T) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	store := pt.OpenSQLite(t)
	cmd, err := commands.New(store.Store, commands.Options{})
	if err != nil {
		t.Fatalf("commands: %v", err)
	}
	proj := pt.Start(t, store.Config())
	q, err := queries.New(store.ReadDB, store.Dialect, store.Store, queries.Options{})
	if err != nil {
		t.Fatalf("queries: %v", err)
	}
	nc := bustest.ConnectEmbedded(t)
	bus := bustest.Config(t)
	js := bustest.EnsureStream(t, nc, bus)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // runs after cancel (cleanups run last-in first-out)
	t.Cleanup(cancel)
	goRun := func(name string, run func(context.Context) error) {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	relay, err := vnats.NewRelay(store.Store.(vnats.RelayStore), nc, bus, vnats.RelayOptions{RetryBase: 10 * time.Millisecond})
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	goRun("relay", relay.Run)

	blobs, err := fs.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatalf("blobs: %v", err)
	}
	snaps, err := snapshot.New(cmd, blobs, snapshot.Config{TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("snapshots: %v", err)
	}
	fp, err := engine.NewFingerprinter(bytes.Repeat([]byte("k"), engine.MinFingerprintKeySize))
	if err != nil {
		t.Fatalf("fingerprinter: %v", err)
	}
	b, err := builtin.New(fp, builtin.WithWorkers(1))
	if err != nil {
		t.Fatalf("builtin engine: %v", err)
	}
	g := &gate{inner: b, open: make(chan struct{})}
	t.Cleanup(g.release)
	launcher := inprocess.New(inprocess.Runner(runner.Deps{Handlers: cmd, Blobs: blobs, TempDir: t.TempDir(),
		Engines: map[string]engine.Engine{builtin.Name: g},
		Bus:     &runner.Bus{JetStream: js, Stream: bus.StreamName, SubjectPrefix: bus.SubjectPrefix}}), nil)
	w, err := worker.New(worker.Config{ReapInterval: 200 * time.Millisecond, ShutdownTimeout: 2 * time.Second,
		Stream: bus.StreamName, SubjectPrefix: bus.SubjectPrefix, DeadLetters: &bustest.MemDeadLetters{}},
		worker.Deps{Handlers: cmd, Store: store.Store, JetStream: js, Launcher: launcher, Snapshots: snaps})
	if err != nil {
		t.Fatalf("worker: %v", err)
	}
	goRun("worker", w.Run)
	cl, err := classify.New(store.Store, classify.Options{})
	if err != nil {
		t.Fatalf("classifier: %v", err)
	}
	cons, err := classify.NewConsumer(ctx, js, bus.StreamName, bus.SubjectPrefix, &bustest.MemDeadLetters{}, cl, nil)
	if err != nil {
		t.Fatalf("classifier consumer: %v", err)
	}
	goRun("classifier", cons.Run)

	diffs, err := classify.NewReader(store.Store)
	if err != nil {
		t.Fatalf("classification reader: %v", err)
	}
	importer, err := sarif.NewImporter(fp, sarif.ImportOptions{Engine: domain.EngineSARIFUpload, Secrets: b})
	if err != nil {
		t.Fatalf("sarif importer: %v", err)
	}
	uploads, err := sarif.NewUploader(cmd, importer, nil)
	if err != nil {
		t.Fatalf("sarif uploader: %v", err)
	}
	key := bytes.Repeat([]byte("s"), 32)
	api, err := httpapi.New(httpapi.Deps{Commands: cmd, Queries: q, Events: store.Store, Consistency: proj,
		Feed:      httpapi.NewJetStreamFeed(js, bus.StreamName, bus.SubjectPrefix, store.Store, nil),
		Snapshots: snaps, Classifications: diffs, SARIF: uploads, Rules: b},
		httpapi.Config{BootstrapToken: adminToken, StreamTokenKey: key})
	if err != nil {
		t.Fatalf("api: %v", err)
	}
	goRun("sse hub", api.Run)
	tokens, err := web.NewHMACStreamTokens(key, time.Minute)
	if err != nil {
		t.Fatalf("stream tokens: %v", err)
	}
	export, err := web.NewSARIFExport(diffs, b, "test")
	if err != nil {
		t.Fatalf("sarif export: %v", err)
	}
	dash, err := web.New(web.Deps{Commands: cmd, Queries: q, Events: store.Store, Consistency: proj, Uploads: snaps,
		StreamTokens: tokens, Diffs: diffs, SARIF: export}, web.Config{BootstrapToken: adminToken})
	if err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	mux := http.NewServeMux()
	for _, p := range []string{"/api/", "/healthz", "/readyz", "/metrics", "/openapi.json"} {
		mux.Handle(p, api.Handler())
	}
	mux.Handle("/", dash.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	wg.Go(func() { _ = srv.Serve(ln) })
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = srv.Shutdown(sctx)
	})
	return &server{base: "http://" + ln.Addr().String(), cmd: cmd, q: q, gate: g, store: store, snaps: snaps}
}

// token issues an API token for principal.
func (s *server) token(t *testing.T, principal string) string {
	t.Helper()
	ctx := commands.WithRequest(context.Background(), commands.Request{Actor: "admin"})
	res, err := s.cmd.IssueToken.Handle(ctx, commands.IssueToken{Principal: principal, Name: "browser"})
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	return res.Secret
}

// artifacts is where failure screenshots go.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("VEGA_BROWSER_ARTIFACTS")
	if dir == "" {
		d, err := os.MkdirTemp("", "vega-browser-*")
		if err != nil {
			t.Fatalf("artifacts dir: %v", err)
		}
		return d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	return dir
}

// ui runs steps in one browser tab and keeps a screenshot of each failure.
type ui struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	base string
	n    int
}

func newUI(t *testing.T, base string) *ui {
	t.Helper()
	exe := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	return &ui{t: t, ctx: ctx, base: base, dir: artifacts(t)}
}

// do runs one named step's actions within waitTimeout; on failure it
// saves a screenshot and the page's HTML and fails the test.
func (u *ui) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	get(u, step, chromedp.Steps(actions...))
}

// get runs one named step that reads a value, like ui.do.
func get[T any](u *ui, step string, a chromedp.Action[T]) T {
	u.t.Helper()
	u.n++
	ctx, cancel := context.WithTimeout(u.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		u.t.Fatalf("step %d (%s): %v; %s", u.n, step, err, u.evidence(step))
	}
	return v
}

// evidence saves a screenshot and the HTML of the current page.
func (u *ui) evidence(step string) string {
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	name := fmt.Sprintf("%s-%02d-%s", strings.ReplaceAll(u.t.Name(), "/", "_"), u.n, strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(step)))
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(80))
	if err != nil {
		return fmt.Sprintf("page %s; no screenshot: %v", loc, err)
	}
	shot := filepath.Join(u.dir, name+".jpg")
	_ = os.WriteFile(shot, png, 0o644)
	if html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); err == nil {
		_ = os.WriteFile(filepath.Join(u.dir, name+".html"), []byte(html), 0o644)
	}
	return fmt.Sprintf("page %s; screenshot %s (artifacts in %s)", loc, shot, u.dir)
}

// check fails with evidence when ok is false.
func (u *ui) check(ok bool, format string, args ...any) {
	u.t.Helper()
	if !ok {
		msg := fmt.Sprintf(format, args...)
		u.t.Fatalf("%s; %s", msg, u.evidence(msg))
	}
}

func (u *ui) signIn(token string) {
	u.t.Helper()
	u.do("sign in",
		chromedp.Navigate(u.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(`//h1[text()="Overview"]`),
	)
}

// attr reads an attribute of the first element matching css.
func attr(u *ui, css, name string) string {
	u.t.Helper()
	return get(u, "read "+css+" "+name, chromedp.AttributeValue(chromedp.CSS(css), name)).Value
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

// eventually polls cond (a server-side read) until it holds.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, err := cond()
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// js runs a script for its effect.
func js(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](expr+`; true`)(ctx, t)
		return err
	})
}

func TestDashboardInChromium(t *testing.T) {
	srv := startServer(t)
	u := newUI(t, srv.base)
	alice := srv.token(t, "alice")
	carol := srv.token(t, "carol")

	// Without a session a page sends the browser to the sign-in form.
	u.do("redirect to sign-in", chromedp.Navigate(srv.base+"/projects"), chromedp.WaitVisible(chromedp.ID("token")))
	loc := get(u, "location", chromedp.Location())
	u.check(strings.Contains(loc, "/login?next=%2Fprojects"), "location %q is not the sign-in form", loc)
	u.signIn(alice)

	// Create a project and a repository.
	u.do("create project",
		chromedp.Navigate(srv.base+"/projects"),
		chromedp.SendKeys(chromedp.ID("p-name"), "browser project"),
		chromedp.Submit(chromedp.ID("p-name")),
		chromedp.WaitVisible(chromedp.ID("add-repository")),
	)
	projectURL := get(u, "location", chromedp.Location())
	u.do("add repository",
		chromedp.SendKeys(chromedp.ID("r-name"), "app"),
		chromedp.Submit(chromedp.ID("r-name")),
		chromedp.WaitVisible(chromedp.ID("upload")),
	)
	repoURL := get(u, "location", chromedp.Location())

	// Upload an archive through the file input.
	archive := filepath.Join(t.TempDir(), "app.tar.gz")
	if err := os.WriteFile(archive, tarGz(t, map[string]string{
		"app/settings.py": "AWS_ACCESS_KEY_ID = \"" + fakeAWSKeyID + "\"\naws_secret_access_key = \"" + fakeAWSSecret + "\"\n",
		"app/db.py":       "cur.execute(\"SELECT * FROM t WHERE id = %s\" % tid)\n",
		"README.md":       "# demo\n",
	}), 0o644); err != nil {
		t.Fatal(err)
	}
	u.do("upload archive",
		chromedp.SetUploadFiles(chromedp.ID("archive"), []string{archive}),
		chromedp.Submit(chromedp.ID("archive")),
		chromedp.WaitVisible(chromedp.ID("snapshots")),
	)
	flash := get(u, "read flash", chromedp.Text(chromedp.CSS(".flash")))
	u.check(strings.Contains(flash, "Snapshot captured: 3 files"), "flash %q", flash)

	// Request a scan; the engine waits at its gate, so the page opens on a
	// scan in progress and must follow it live to completion.
	u.do("request scan",
		chromedp.Click(chromedp.CSS("#request-scan button")),
		chromedp.WaitVisible(chromedp.ID("scan-progress")),
		js(`window.__samePage = true`),
	)
	scanURL := get(u, "location", chromedp.Location())
	status := attr(u, "#main", "data-scan-status")
	u.check(status != "completed", "the scan completed before its gate opened (%s)", status)
	u.do("live feed connected", chromedp.WaitVisible(chromedp.CSS(`#live-state[data-state="live"]`)))
	srv.gate.release()
	u.do("scan completes live",
		chromedp.WaitReady(chromedp.CSS(`#main[data-scan-status="completed"]`)),
		chromedp.WaitVisible(chromedp.ID("scan-done")),
	)
	samePage := get(u, "same page", chromedp.Evaluate[bool](`window.__samePage === true`))
	progress := attr(u, "#scan-progress", "value")
	types := get(u, "log types", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#event-log li strong')].map(e => e.textContent)`))
	versions := get(u, "log versions", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#event-log li')].map(e => e.dataset.version)`))
	u.check(samePage, "the page reloaded: the progress was not live")
	u.check(progress == "100", "progress bar at %q", progress)
	u.check(len(types) > 0 && types[len(types)-1] == "ScanCompleted", "event log ends with %v", types)
	u.check(contains(types, "ScanStarted") && contains(types, "FindingRecorded"), "event log lacks the run: %v", types)
	u.check(unique(versions), "the event log has duplicates: %v", versions)

	// Wait (server side) for the classifier to give every finding its issue.
	scanID := scanURL[strings.LastIndex(scanURL, "/")+1:]
	alicec := queries.Caller{Principal: "alice"}
	sc, err := srv.q.Scan(context.Background(), alicec, scanID)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	eventually(t, "classification", func() (bool, error) {
		p, err := srv.q.ListFindings(context.Background(), alicec, scanID, queries.FindingFilter{}, queries.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, f := range p.Items {
			if f.IssueID == "" {
				return false, nil
			}
		}
		return len(p.Items) > 0, nil
	})
	sev := "critical"
	if sc.Counts.Critical == 0 {
		sev = "high"
	}

	// Filter the findings by severity (the filter stays in the URL) and
	// triage every selected row in one action.
	u.do("filter findings",
		chromedp.Navigate(scanURL),
		chromedp.WaitVisible(chromedp.ID("finding-filters")),
		chromedp.Click(chromedp.CSS(`#finding-filters input[name=severity][value=`+sev+`]`)),
		chromedp.Submit(chromedp.ID("f-rule")),
		chromedp.WaitVisible(chromedp.ID("finding-list")),
	)
	loc = get(u, "location", chromedp.Location())
	rows := get(u, "rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#finding-list tbody tr td:nth-child(2)')].map(e => e.textContent.trim())`))
	u.check(strings.Contains(loc, "severity="+sev), "the filter is not in the URL: %s", loc)
	u.check(len(rows) > 0, "no %s findings listed", sev)
	for _, r := range rows {
		u.check(strings.HasSuffix(r, sev), "a row of severity %q under the %s filter", r, sev)
	}
	u.do("bulk triage",
		chromedp.WaitVisible(chromedp.CSS(`[data-select-all]`)),
		chromedp.Click(chromedp.CSS(`[data-select-all]`)),
		chromedp.WaitVisible(`//output[contains(text(), "selected")]`),
		chromedp.SetValue(chromedp.ID("bulk-findings-status"), "wont_fix"),
		chromedp.SendKeys(chromedp.ID("bulk-findings-note"), "test fixtures"),
		chromedp.Click(chromedp.CSS(`#findings-bulk button[type=submit]`)),
		chromedp.WaitVisible(`//p[contains(@class,"flash") and contains(text(), "as wont fix")]`),
	)
	loc = get(u, "location", chromedp.Location())
	triaged := get(u, "triage cells", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#finding-list td.triage')].map(e => e.textContent.trim())`))
	u.check(strings.Contains(loc, "severity="+sev), "bulk triage lost the filter: %s", loc)
	u.check(len(triaged) == len(rows), "triaged rows %v vs %d listed", triaged, len(rows))
	for _, tr := range triaged {
		u.check(tr == "wont fix", "a row reads %q after bulk triage", tr)
	}

	// The SARIF link serves the scan's SARIF document.
	sarifDoc := get(u, "fetch sarif", chromedp.Evaluate[string](`fetch(document.querySelector('a[href$="/sarif"]').href).then(r => r.status + ' ' + r.headers.get('content-type'))`,
		chromedp.EvalAwaitPromise))
	u.check(sarifDoc == "200 application/sarif+json", "SARIF download answers %q", sarifDoc)

	// Replay: the chain verifies, and stepping back shows the scan before
	// its last event.
	u.do("open replay", chromedp.Click(`//a[text()="Replay and verify"]`), chromedp.WaitVisible(chromedp.ID("chain")))
	u.check(attr(u, "#chain", "data-valid") == "true", "hash chain not verified")
	last := get(u, "as of", chromedp.Text(chromedp.ID("as-of-version")))
	u.do("step back", chromedp.Click(chromedp.ID("prev-version")), chromedp.WaitVisible(chromedp.ID("next-version")))
	asOf := get(u, "as of", chromedp.Text(chromedp.ID("as-of-version")))
	u.check(asOf != last, "stepping back stayed at version %s", asOf)
	u.check(attr(u, "#replay-state", "data-version") == asOf, "the replayed state is not of version %s", asOf)

	// Sign out; the pages ask for a session again.
	u.do("sign out",
		chromedp.Click(`//button[text()="Sign out"]`),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.Navigate(scanURL),
		chromedp.WaitVisible(chromedp.ID("token")),
	)

	// A stranger's session sees 404s for alice's objects.
	u.signIn(carol)
	for _, p := range []string{scanURL, projectURL, repoURL, scanURL + "/replay"} {
		u.do("stranger "+p, chromedp.Navigate(p))
		h1 := get(u, "heading", chromedp.Text(chromedp.CSS("h1")))
		u.check(h1 == "Not found", "a stranger reads %s: %q", p, h1)
	}
}

// TestLiveResume checks that reconnects of the live event log resume
// after the last event shown, without duplicates.
func TestLiveResume(t *testing.T) {
	srv := startServer(t)
	u := newUI(t, srv.base)
	ctx := commands.WithRequest(context.Background(), commands.Request{Actor: "alice"})
	p, err := srv.cmd.CreateProject.Handle(ctx, commands.CreateProject{Name: "resume"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := srv.cmd.AddRepository.Handle(ctx, commands.AddRepository{ProjectID: p.Project.ID, Name: "r", Source: domain.Source{Kind: domain.SourceArchive}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.snaps.Upload(ctx, r.Repository.ID, "application/gzip", bytes.NewReader(tarGz(t, map[string]string{
		"cfg.py": "AWS_ACCESS_KEY_ID = \"" + fakeAWSKeyID + "\"\n"})), 0); err != nil {
		t.Fatal(err)
	}
	sc, err := srv.cmd.RequestScan.Handle(ctx, commands.RequestScan{RepositoryID: r.Repository.ID})
	if err != nil {
		t.Fatal(err)
	}
	id := sc.Scan.ID
	eventually(t, "scan read model", func() (bool, error) {
		_, err := srv.q.Scan(context.Background(), queries.Caller{Admin: true}, id)
		return err == nil, err
	})
	u.signIn(adminToken)
	u.do("open scan", chromedp.Navigate(srv.base+"/scans/"+id), chromedp.WaitVisible(chromedp.CSS(`#live-state[data-state="live"]`)))
	n1 := get(u, "count events", chromedp.Evaluate[int](`document.querySelectorAll('#event-log li').length`))
	for i := range 3 {
		u.do(fmt.Sprintf("reconnect %d", i), js(`window.vegaLive.reconnect()`),
			chromedp.WaitVisible(chromedp.CSS(`#live-state[data-state="live"]`)))
	}
	opens := get(u, "connections", chromedp.Evaluate[int](`window.vegaLive.opens()`))
	u.check(opens == 4, "%d connections opened, want 4 (one and three reconnects)", opens)
	// A second browser follows the activity feed on the overview.
	ov := newUI(t, srv.base)
	ov.signIn(adminToken)
	ov.do("overview live", chromedp.WaitVisible(chromedp.CSS(`#activity-hint[data-state="live"]`)))
	srv.gate.release()
	u.do("scan ends", chromedp.WaitReady(chromedp.CSS(`#main[data-scan-status="completed"]`)))
	ov.do("activity shows the completion", chromedp.WaitVisible(`//ol[@id="activity"]/li/strong[text()="ScanCompleted"]`))
	versions := get(u, "read log", chromedp.Evaluate[[]int](`[...document.querySelectorAll('#event-log li')].map(e => Number(e.dataset.version))`))
	u.check(len(versions) > n1, "no events arrived after the reconnects: %v", versions)
	for i := 1; i < len(versions); i++ {
		u.check(versions[i] == versions[i-1]+1, "the log skips or repeats a version: %v", versions)
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func unique(list []string) bool {
	seen := map[string]bool{}
	for _, v := range list {
		if seen[v] {
			return false
		}
		seen[v] = true
	}
	return true
}
