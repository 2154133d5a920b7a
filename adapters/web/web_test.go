package web_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/adapters/blob/fs"
	"github.com/vega-sec/vega/adapters/web"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/projections"
	pt "github.com/vega-sec/vega/projections/projectiontest"
	"github.com/vega-sec/vega/queries"
)

const adminToken = "vega_web_test_bootstrap_token_0123456789"

// Tokens of the seeded world plus those env adds.
const (
	aliceToken  = "secret-alice" // owner of p1
	bobToken    = "secret-bob2"  // viewer of p1
	carolToken  = "secret-carol" // owner of p2 only: a stranger to p1
	xssTitle    = `<script>alert("x")</script>`
	xssScanID   = "scx"
	xssRuleID   = `rule"><img src=x onerror=alert(1)>`
	seededScan  = "sc1"
	seededIssue = "i1"
)

// env is one dashboard over a seeded SQLite store with live projections.
type env struct {
	t      *testing.T
	store  *pt.Env
	cmd    *commands.Handlers
	runner *projections.Runner
	srv    *httptest.Server
	last   eventstore.Position
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store := pt.OpenSQLite(t)
	w := pt.Seed(t, store)
	at := pt.T0.Add(24 * time.Hour)
	store.Append(t, "admin", "access-bob", domain.TokenIssued{TokenID: "tk-bob2", Principal: pt.Bob, Name: "laptop", Hash: domain.HashToken(bobToken), At: at})
	store.Append(t, "admin", "access-carol", domain.TokenIssued{TokenID: "tk-carol", Principal: pt.Carol, Name: "laptop", Hash: domain.HashToken(carolToken), At: at})
	// A running scan of r1 whose finding's title and rule are markup.
	store.Append(t, pt.Alice, "scan-"+xssScanID, domain.ScanRequested{ScanID: xssScanID, ProjectID: "p1", RepositoryID: "r1", SnapshotID: "s2",
		Engines: []string{"builtin"}, Profile: domain.DefaultThreatProfile(), RequestedBy: pt.Alice, At: at})
	last := store.Append(t, "worker", "scan-"+xssScanID, domain.ScanClaimed{WorkerID: "w", Fence: 1, LeaseUntil: at.Add(time.Hour), At: at},
		domain.ScanStarted{Fence: 1, At: at}, domain.ScanProgressed{Fence: 1, Phase: "<b>phase</b>", Progress: 40, At: at},
		domain.FindingRecorded{Fence: 1, Finding: domain.Finding{ID: "fx", Fingerprint: "fpx", RuleID: xssRuleID, Title: xssTitle,
			Severity: domain.SeverityHigh, Engine: "builtin", File: "x.js", StartLine: 1, EndLine: 1, Snippet: "<script>", Confidence: 1}, At: at})
	_ = w
	cmd, err := commands.New(store.Store, commands.Options{})
	if err != nil {
		t.Fatalf("commands: %v", err)
	}
	runner := pt.Start(t, store.Config())
	pt.WaitFor(t, runner, last)
	q, err := queries.New(store.ReadDB, store.Dialect, store.Store, queries.Options{})
	if err != nil {
		t.Fatalf("queries: %v", err)
	}
	blobs, err := fs.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatalf("blobs: %v", err)
	}
	snaps, err := snapshot.New(cmd, blobs, snapshot.Config{TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("snapshots: %v", err)
	}
	tokens, err := web.NewHMACStreamTokens(bytes.Repeat([]byte("k"), 32), time.Minute)
	if err != nil {
		t.Fatalf("stream tokens: %v", err)
	}
	diffs, err := classify.NewReader(store.Store)
	if err != nil {
		t.Fatalf("diff reader: %v", err)
	}
	export, err := web.NewSARIFExport(diffs, nil, "test")
	if err != nil {
		t.Fatalf("sarif export: %v", err)
	}
	s, err := web.New(web.Deps{Commands: cmd, Queries: q, Events: store.Store, Consistency: runner, Uploads: snaps, StreamTokens: tokens,
		Diffs: diffs, SARIF: export},
		web.Config{BootstrapToken: adminToken, Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))})
	if err != nil {
		t.Fatalf("new web server: %v", err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, store: store, cmd: cmd, runner: runner, srv: srv, last: last}
}

// browser is one signed-in (or not) client with its own cookies.
type browser struct {
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is one answer.
type page struct {
	status int
	body   string
	header http.Header
}

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, body: string(body), header: resp.Header}
	if m := csrfMeta.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form; the CSRF token is added unless form has "csrf".
func (b *browser) post(path string, form url.Values) page {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) login(token string) {
	b.e.t.Helper()
	p := b.post("/login", url.Values{"token": {token}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		b.e.t.Fatalf("sign in: status %d, location %q; body %s", p.status, p.header.Get("Location"), p.body)
	}
	if home := b.get("/"); home.status != http.StatusOK {
		b.e.t.Fatalf("overview after sign-in: %d", home.status)
	}
}

func (e *env) signedIn(token string) *browser {
	e.t.Helper()
	b := e.browser()
	b.login(token)
	return b
}

func TestPagesNeedASession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	for _, path := range []string{"/", "/projects", "/projects/p1", "/repositories/r1", "/scans/sc1", "/scans/sc1/replay", "/issues/i1", "/issues", "/scans"} {
		p := b.get(path)
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s without a session: %d %q, want 303 to /login", path, p.status, p.header.Get("Location"))
		}
	}
	if p := b.post("/projects", url.Values{"name": {"x"}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Errorf("POST without a session: %d %q", p.status, p.header.Get("Location"))
	}
	if p := b.get("/login"); p.status != http.StatusOK || !strings.Contains(p.body, `name="token"`) || !strings.Contains(p.body, `<label for="token">`) {
		t.Errorf("login form: %d %s", p.status, p.body)
	}
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"unknown", "nope", http.StatusUnauthorized},
		{"revoked", "secret-bob", http.StatusUnauthorized},
		{"expired", "secret-admin", http.StatusUnauthorized},
		{"empty", "", http.StatusBadRequest},
	} {
		if p := e.browser().post("/login", url.Values{"token": {c.token}}); p.status != c.want || !strings.Contains(p.body, `role="alert"`) {
			t.Errorf("%s token: status %d, want %d", c.name, p.status, c.want)
		}
	}
	b := e.browser()
	p := b.post("/login", url.Values{"token": {aliceToken}, "next": {"/projects/p1"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/projects/p1" {
		t.Fatalf("sign in with next: %d %q", p.status, p.header.Get("Location"))
	}
	cookie := p.header.Get("Set-Cookie")
	for _, want := range []string{web.SessionCookie + "=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %q", cookie, want)
		}
	}
	if strings.Contains(cookie, aliceToken) {
		t.Errorf("the cookie carries the token itself")
	}
	if p := e.browser().post("/login", url.Values{"token": {aliceToken}, "next": {"//evil.example/"}}); p.header.Get("Location") != "/" {
		t.Errorf("open redirect: %q", p.header.Get("Location"))
	}
	if home := b.get("/"); !strings.Contains(home.body, "Signed in as <strong>alice</strong>") {
		t.Errorf("overview does not name alice: %s", home.body)
	}
	admin := e.signedIn(adminToken)
	if p := admin.get("/projects/p2"); p.status != http.StatusOK {
		t.Errorf("admin sees p2: %d", p.status)
	}
}

func TestSignOutAndRevocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.signedIn(aliceToken)
	u, _ := url.Parse(e.srv.URL)
	old := b.c.Jar.Cookies(u)
	if p := b.post("/logout", nil); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Fatalf("sign out: %d %q", p.status, p.header.Get("Location"))
	}
	if p := b.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("after sign-out the overview answers %d", p.status)
	}
	// A copy of the signed-out cookie is refused too.
	replay := e.browser()
	replay.c.Jar.SetCookies(u, old)
	if p := replay.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("a replayed signed-out cookie answers %d", p.status)
	}

	// Revoking the token ends its sessions at once.
	ctx := commands.WithRequest(context.Background(), commands.Request{Actor: "admin"})
	res, err := e.cmd.IssueToken.Handle(ctx, commands.IssueToken{Principal: pt.Alice, Name: "temp"})
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	pt.WaitFor(t, e.runner, res.Position)
	b2 := e.signedIn(res.Secret)
	rv, err := e.cmd.RevokeToken.Handle(ctx, commands.RevokeToken{Principal: pt.Alice, TokenID: res.Token.ID})
	if err != nil {
		t.Fatalf("revoke token: %v", err)
	}
	pt.WaitFor(t, e.runner, rv.Position)
	if p := b2.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("a session of a revoked token answers %d", p.status)
	}
	// A tampered cookie is no session.
	bad := e.browser()
	bad.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: "eyJoIjoiYSJ9.AAAA"}})
	if p := bad.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("a forged cookie answers %d", p.status)
	}
}

func TestPagesRender(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.signedIn(aliceToken)
	for _, c := range []struct {
		path string
		want []string
	}{
		{"/", []string{"<h1>Overview</h1>", `href="/issues?severity=critical&amp;state=open&amp;triage=open%2Cunder_review"`,
			`href="/scans?status=running"`, `<svg class="trend"`, `<polyline`, "Recent scans", `id="activity"`, `data-live="/api/v1/events"`, "data-stream-token=\"vst_"}},
		{"/projects", []string{"alpha", `action="/projects"`}},
		{"/projects/p1", []string{"alpha", "Your role: <strong id=\"my-role\">owner</strong>", `href="/repositories/r1"`, "bob", "viewer", `id="grant-member"`, `id="add-repository"`}},
		{"/repositories/r1", []string{"api", `id="upload"`, `enctype="multipart/form-data"`, `id="threat-profile"`, "strict", `id="issue-list"`,
			"title of secrets.aws", "false positive", `href="/scans/sc1"`}},
		{"/repositories/r1?severity=low&state=open", []string{"title of crypto.md5"}},
		{"/scans/sc1", []string{`data-scan-status="completed"`, `<progress id="scan-progress" max="100" value="100">`, "title of secrets.aws",
			`data-count="critical">1<`, `id="event-log"`, "ScanCompleted", `href="/scans/sc1/replay"`, "Compared with the previous scan"}},
		{"/scans/sc1?severity=low", []string{"title of crypto.md5"}},
		{"/scans/sc2?group=rule", []string{`scope="rowgroup"`, "Rule secrets.aws"}},
		{"/scans/sc4", []string{`data-scan-status="requested"`, `data-live="/api/v1/scans/sc4/events"`, `id="cancel-scan"`}},
		{"/scans/sc1/replay", []string{`id="chain" class="ok" data-valid="true"`, `type="range"`, `id="prev-version"`}},
		{"/scans/sc1/replay?version=3", []string{`data-status="running"`, `id="next-version"`, `href="/scans/sc1/replay?version=2"`, "ScanStarted"}},
		{"/issues/i1", []string{"title of secrets.aws", "CWE-798", "secrets.aws", "false positive", `id="triage-form"`, "test key", `href="/scans/sc1"`}},
		{"/issues?severity=critical&state=open", []string{"alpha", "title of secrets.aws"}},
		{"/scans?status=completed", []string{"sc1"[0:3], "alpha"}},
	} {
		p := alice.get(c.path)
		if p.status != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", c.path, p.status, p.body)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(p.body, w) {
				t.Errorf("GET %s lacks %q", c.path, w)
			}
		}
		for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options"} {
			if p.header.Get(h) == "" {
				t.Errorf("GET %s lacks header %s", c.path, h)
			}
		}
	}
	// Filters hold in the URL: a low-only page does not list the critical one.
	if p := alice.get("/scans/sc1?severity=low"); strings.Contains(p.body, "title of secrets.aws</a>") {
		t.Errorf("the severity filter let a critical finding through")
	}
	if p := alice.get("/scans/sc1?limit=1"); !strings.Contains(p.body, `rel="next"`) {
		t.Errorf("a one-row page has no next link")
	}
	if p := alice.get("/scans/sc1?severity=nope"); p.status != http.StatusBadRequest {
		t.Errorf("bad filter: %d", p.status)
	}
	if p := alice.get("/scans/sc1/sarif"); p.status != http.StatusOK || p.header.Get("Content-Type") != "application/sarif+json" ||
		!strings.Contains(p.body, `"version": "2.1.0"`) && !strings.Contains(p.body, `"version":"2.1.0"`) || !strings.Contains(p.body, "secrets.aws") {
		t.Errorf("sarif download: %d %q %.200s", p.status, p.header.Get("Content-Type"), p.body)
	}
	if p := alice.get("/scans/sc1"); !strings.Contains(p.body, `href="/scans/sc1/sarif"`) {
		t.Errorf("no SARIF link on the scan page")
	}
	if p := alice.get("/scans/sc1/replay?version=999"); p.status != http.StatusBadRequest {
		t.Errorf("replay past the end: %d", p.status)
	}
	// A viewer sees no forms that need a higher role.
	bob := e.signedIn(bobToken)
	if p := bob.get("/repositories/r1"); p.status != http.StatusOK || strings.Contains(p.body, `id="upload"`) || strings.Contains(p.body, `id="threat-profile"`) {
		t.Errorf("viewer page: %d, shows editor forms", p.status)
	}
}

func TestEscaping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.signedIn(aliceToken)
	for _, path := range []string{"/scans/" + xssScanID, "/scans/" + xssScanID + "?group=rule", "/scans/" + xssScanID + "/replay",
		"/scans/" + xssScanID + "?rule=" + url.QueryEscape(xssRuleID)} {
		p := alice.get(path)
		if p.status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, p.status)
		}
		for _, raw := range []string{xssTitle, `<img src=x`, "<b>phase</b>", "<script>alert"} {
			if strings.Contains(p.body, raw) {
				t.Errorf("GET %s contains raw %q", path, raw)
			}
		}
		if !strings.Contains(p.body, "&lt;script&gt;") && !strings.Contains(p.body, `&#34;x&#34;`) {
			t.Errorf("GET %s does not show the title as text", path)
		}
	}
	if p := alice.get("/scans/" + xssScanID); !strings.Contains(p.body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Errorf("the title is not escaped text")
	}
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	carol := e.signedIn(carolToken)
	for _, path := range []string{"/projects/p1", "/repositories/r1", "/scans/sc1", "/scans/sc1/replay", "/scans/sc1/sarif", "/issues/i1", "/scans/nope", "/no/such/page"} {
		if p := carol.get(path); p.status != http.StatusNotFound || !strings.Contains(p.body, "Not found") {
			t.Errorf("stranger GET %s: %d", path, p.status)
		}
	}
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/scans/sc4/cancel", nil},
		{"/issues/i1/triage", url.Values{"status": {"wont_fix"}}},
		{"/projects/p1/members", url.Values{"principal": {"eve"}, "role": {"owner"}}},
		{"/projects/p1/repositories", url.Values{"name": {"x"}, "kind": {"archive"}}},
		{"/repositories/r1/scans", nil},
		{"/triage", url.Values{"scope": {"scan"}, "scope_id": {"sc1"}, "target": {"filter"}, "status": {"wont_fix"}}},
	} {
		if p := carol.post(c.path, c.form); p.status != http.StatusNotFound {
			t.Errorf("stranger POST %s: %d", c.path, p.status)
		}
	}
	bob := e.signedIn(bobToken)
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/scans/sc4/cancel", nil},
		{"/issues/i1/triage", url.Values{"status": {"wont_fix"}}},
		{"/projects/p1/members", url.Values{"principal": {"eve"}, "role": {"owner"}}},
		{"/repositories/r1/threat-profile", url.Values{"name": {"x"}}},
		{"/triage", url.Values{"scope": {"repository"}, "scope_id": {"r1"}, "target": {"filter"}, "status": {"wont_fix"}}},
	} {
		if p := bob.post(c.path, c.form); p.status != http.StatusForbidden || !strings.Contains(p.body, "Not allowed") {
			t.Errorf("viewer POST %s: %d", c.path, p.status)
		}
	}
	// A project owner cannot reach another project's issue by tampering a
	// bulk form.
	if p := carol.post("/triage", url.Values{"scope": {"repository"}, "scope_id": {"r3"}, "target": {"selected"}, "issue": {"i1"}, "status": {"wont_fix"}}); p.status != http.StatusNotFound {
		t.Errorf("tampered bulk triage: %d", p.status)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.signedIn(aliceToken)
	for name, form := range map[string]url.Values{
		"missing": {"csrf": {""}, "name": {"x"}},
		"wrong":   {"csrf": {"AAAA"}, "name": {"x"}},
	} {
		if p := alice.post("/projects", form); p.status != http.StatusForbidden {
			t.Errorf("%s CSRF token: %d", name, p.status)
		}
	}
	// Another session's token is not this one's.
	other := e.signedIn(aliceToken)
	if p := alice.post("/projects", url.Values{"csrf": {other.csrf}, "name": {"x"}}); p.status != http.StatusForbidden {
		t.Errorf("another session's CSRF token: %d", p.status)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/projects", strings.NewReader(url.Values{"csrf": {alice.csrf}, "name": {"x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if p := alice.do(req); p.status != http.StatusForbidden {
		t.Errorf("cross-origin POST: %d", p.status)
	}
	if p := alice.post("/projects", url.Values{"name": {"made"}}); p.status != http.StatusSeeOther {
		t.Errorf("a POST with the right token: %d %s", p.status, p.body)
	}
}

func TestFormsChangeThings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.signedIn(aliceToken)

	p := alice.post("/projects", url.Values{"name": {"gamma <b>"}, "description": {"third"}})
	loc := p.header.Get("Location")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/projects/") {
		t.Fatalf("create project: %d %q %s", p.status, loc, p.body)
	}
	if pg := alice.get(loc); !strings.Contains(pg.body, "gamma &lt;b&gt;") || !strings.Contains(pg.body, "Project created.") {
		t.Errorf("new project page: %s", pg.body)
	}
	p = alice.post(loc+"/repositories", url.Values{"name": {"svc"}, "kind": {"archive"}})
	repo := p.header.Get("Location")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(repo, "/repositories/") {
		t.Fatalf("add repository: %d %s", p.status, p.body)
	}
	if p := alice.post(repo+"/scans", nil); p.status != http.StatusConflict {
		t.Errorf("scan without a snapshot: %d", p.status)
	}
	if p := alice.post(loc+"/members", url.Values{"principal": {"dave"}, "role": {"editor"}}); p.status != http.StatusSeeOther {
		t.Errorf("grant: %d %s", p.status, p.body)
	}
	if pg := alice.get(loc); !strings.Contains(pg.body, "<td>dave</td><td>editor</td>") {
		t.Errorf("the granted member is not listed")
	}
	if p := alice.post(loc+"/members", url.Values{"principal": {"dave"}, "role": {"god"}}); p.status != http.StatusBadRequest {
		t.Errorf("bad role: %d", p.status)
	}

	// Upload an archive through the multipart form, then request a scan.
	up := alice.upload(repo+"/snapshots", "src.tar.gz", tarGz(t, map[string]string{"app/main.go": "package main\n"}))
	if up.status != http.StatusSeeOther {
		t.Fatalf("upload: %d %s", up.status, up.body)
	}
	if pg := alice.get(repo); !strings.Contains(pg.body, "Snapshot captured: 1 files") || !strings.Contains(pg.body, "<td>captured</td>") {
		t.Errorf("the repository page does not show the snapshot: %s", pg.body)
	}
	if up := alice.upload(repo+"/snapshots", "notes.txt", []byte("hello")); up.status != http.StatusUnsupportedMediaType && up.status != http.StatusBadRequest {
		t.Errorf("a text upload: %d", up.status)
	}
	p = alice.post(repo+"/scans", nil)
	scan := p.header.Get("Location")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(scan, "/scans/") {
		t.Fatalf("request scan: %d %s", p.status, p.body)
	}
	if pg := alice.get(scan); !strings.Contains(pg.body, `data-scan-status="requested"`) {
		t.Errorf("new scan page status")
	}
	if p := alice.post(scan+"/cancel", nil); p.status != http.StatusSeeOther {
		t.Errorf("cancel: %d %s", p.status, p.body)
	}
	if pg := alice.get(scan); !strings.Contains(pg.body, `data-scan-status="cancelled"`) {
		t.Errorf("cancelled scan page status")
	}
	if p := alice.post(scan+"/cancel", nil); p.status != http.StatusConflict {
		t.Errorf("cancel twice: %d", p.status)
	}
	if p := alice.post(repo+"/threat-profile", url.Values{"name": {"p"}, "categories": {"secrets", "crypto"}, "min_severity": {"high"}, "engines": {"builtin"}}); p.status != http.StatusSeeOther {
		t.Errorf("threat profile: %d %s", p.status, p.body)
	}
	if pg := alice.get(repo); !strings.Contains(pg.body, "(version 1)") || !strings.Contains(pg.body, "<dd>secrets, crypto</dd>") {
		t.Errorf("profile not shown")
	}
}

func TestTriage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.signedIn(aliceToken)
	if p := alice.post("/issues/i4/triage", url.Values{"status": {"under_review"}, "note": {"looking <now>"}}); p.status != http.StatusSeeOther {
		t.Fatalf("triage: %d %s", p.status, p.body)
	}
	pg := alice.get("/issues/i4")
	for _, w := range []string{`<dd id="issue-triage">under review</dd>`, "triage → under review", "looking &lt;now&gt;", "<td>alice</td>"} {
		if !strings.Contains(pg.body, w) {
			t.Errorf("issue page lacks %q", w)
		}
	}
	if p := alice.post("/issues/i4/triage", url.Values{"status": {"accepted_risk"}}); p.status != http.StatusBadRequest {
		t.Errorf("accepted risk without expiry: %d", p.status)
	}
	if p := alice.post("/issues/i4/triage", url.Values{"status": {"accepted_risk"}, "expires_at": {time.Now().AddDate(0, 1, 0).Format("2006-01-02")}}); p.status != http.StatusSeeOther {
		t.Errorf("accepted risk: %d %s", p.status, p.body)
	}

	// Bulk: the selected rows of a scan's findings.
	p := alice.post("/triage", url.Values{"scope": {"scan"}, "scope_id": {"sc2"}, "target": {"selected"}, "issue": {"i1", "i3"},
		"status": {"wont_fix"}, "return": {"/scans/sc2?severity=low"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/scans/sc2?severity=low" {
		t.Fatalf("bulk selected: %d %q %s", p.status, p.header.Get("Location"), p.body)
	}
	if pg := alice.get("/scans/sc2"); !strings.Contains(pg.body, "Triaged 2 issues as wont fix.") || strings.Count(pg.body, `<td class="triage">wont fix</td>`) != 2 {
		t.Errorf("bulk selected result: %s", pg.body)
	}
	// Bulk: every issue matching a filter, over all pages (one row a page).
	p = alice.post("/triage", url.Values{"scope": {"repository"}, "scope_id": {"r1"}, "target": {"filter"}, "triage": {"wont_fix"},
		"status": {"open"}, "note": {"reopen all"}, "return": {"/repositories/r1"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("bulk filter: %d %s", p.status, p.body)
	}
	if pg := alice.get("/repositories/r1?triage=wont_fix"); !strings.Contains(pg.body, "Triaged 2 issues as open.") || !strings.Contains(pg.body, "No issues match.") {
		t.Errorf("bulk filter left wont_fix issues: %s", pg.body)
	}
	if p := alice.post("/triage", url.Values{"scope": {"scan"}, "scope_id": {"sc2"}, "target": {"selected"}, "status": {"open"}}); p.status != http.StatusBadRequest {
		t.Errorf("bulk with nothing selected: %d", p.status)
	}
}

func TestAssets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	for _, c := range []struct{ path, ctype, want string }{
		{"/static/app.js", "text/javascript", "import"},
		{"/static/live.js", "text/javascript", "EventSource"},
		{"/static/bulk.js", "text/javascript", "export function enhanceBulk"},
		{"/static/replay.js", "text/javascript", "export function enhanceReplay"},
		{"/static/style.css", "text/css", ":focus-visible"},
	} {
		p := b.get(c.path)
		if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), c.ctype) || !strings.Contains(p.body, c.want) {
			t.Errorf("GET %s: %d %q", c.path, p.status, p.header.Get("Content-Type"))
		}
	}
	if p := b.get("/static/"); p.status != http.StatusNotFound {
		t.Errorf("directory listing: %d", p.status)
	}
}

func TestStreamToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.signedIn(aliceToken)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/stream-token", strings.NewReader("scan_id=sc4"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", alice.csrf)
	p := alice.do(req)
	if p.status != http.StatusOK || !strings.Contains(p.body, `"token":"vst_`) || !strings.Contains(p.body, `/api/v1/scans/sc4/events`) {
		t.Errorf("stream token: %d %s", p.status, p.body)
	}
	carol := e.signedIn(carolToken)
	if p := carol.post("/stream-token", url.Values{"scan_id": {"sc4"}}); p.status != http.StatusNotFound {
		t.Errorf("stranger's stream token: %d", p.status)
	}
}

func (b *browser) upload(path, name string, data []byte) page {
	b.e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("csrf", b.csrf)
	fw, _ := mw.CreateFormFile("archive", name)
	_, _ = fw.Write(data)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
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

// testLog sends the server log to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
