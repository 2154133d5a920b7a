package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"

	fsblob "github.com/vega-sec/vega/adapters/blob/fs"
	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/builtin"
	httpapi "github.com/vega-sec/vega/adapters/http"
	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/adapters/nats/bustest"
	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/commands/runner"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/internal/testkit"
	"github.com/vega-sec/vega/projections"
	pt "github.com/vega-sec/vega/projections/projectiontest"
	"github.com/vega-sec/vega/queries"
)

// waitTimeout bounds every wait of these tests for something to arrive: a
// deadline for failure, never a measure of speed.
const waitTimeout = 15 * time.Second

// adminToken is the bootstrap token of every test server.
const adminToken = "vega_test_bootstrap_token_0123456789"

// backend is one shape the suite runs on.
type backend struct {
	name string
	open func(t testing.TB) *pt.Env
	bus  func(t testing.TB) *nats.Conn
}

var (
	sqliteEmbedded = backend{"sqlite+embedded-nats", pt.OpenSQLite, bustest.ConnectEmbedded}
	postgresNATS   = backend{"postgres+external-nats", pt.OpenPostgres, bustest.ConnectExternal}
)

// clock is a settable clock, safe for concurrent use.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }
func (c *clock) fn() func() time.Time    { return c.now }
func newClock() *clock                   { return &clock{} }

// testSARIFMaxBytes is the importer's document limit in these tests, small
// enough that a 413 test sends little.
const testSARIFMaxBytes = 256 << 10

// env is one running API over real services.
type env struct {
	t       testing.TB
	store   *pt.Env
	cmd     *commands.Handlers
	blobs   *fsblob.Store
	engine  *builtin.Engine
	classes *classify.Classifier
	runner  *projections.Runner
	srv     *httpapi.Server
	base    string
	logs    *testkit.LogBuffer
	clock   *clock // the API's and the query side's clock
	stop    func()
	stopped chan error
}

// setup is what a test may change of an env.
type setup struct {
	cfg   httpapi.Config
	wrapQ func(httpapi.Queries) httpapi.Queries
	noBus bool
	bus   httpapi.CheckFunc // replaces the bus check when set
	// storeFeed feeds the Hub from the store (no bus).
	storeFeed bool
	// pages serves paths outside the API.
	pages http.Handler
}

// start runs the API over b's store and bus, with projections, the relay
// and the live feed, on a loopback port; everything stops at cleanup.
func start(t testing.TB, b backend, s setup) *env {
	t.Helper()
	store := b.open(t)
	cmd, err := commands.New(store.Store, commands.Options{})
	if err != nil {
		t.Fatalf("commands: %v", err)
	}
	runner := pt.Start(t, store.Config())
	clk := newClock()
	svc, err := queries.New(store.ReadDB, store.Dialect, store.Store, queries.Options{Clock: clk.fn()})
	if err != nil {
		t.Fatalf("queries: %v", err)
	}
	var q httpapi.Queries = svc
	if s.wrapQ != nil {
		q = s.wrapQ(q)
	}
	res := results(t, store, cmd)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	deps := httpapi.Deps{Commands: cmd, Queries: q, Events: store.Store, Consistency: runner, Projections: runner,
		Snapshots: res.snaps, Classifications: res.reader, SARIF: res.uploader, Rules: res.engine, Pages: s.pages}
	if !s.noBus {
		nc := b.bus(t)
		bcfg := bustest.Config(t)
		js := bustest.EnsureStream(t, nc, bcfg)
		relay, err := vnats.NewRelay(store.Store.(vnats.RelayStore), nc, bcfg, vnats.RelayOptions{RetryBase: 10 * time.Millisecond})
		if err != nil {
			t.Fatalf("relay: %v", err)
		}
		relayDone := make(chan struct{})
		go func() {
			defer close(relayDone)
			_ = relay.Run(ctx)
		}()
		t.Cleanup(func() { cancel(); <-relayDone })
		deps.Feed = httpapi.NewJetStreamFeed(js, bcfg.StreamName, bcfg.SubjectPrefix, store.Store, nil)
		deps.Bus = httpapi.JetStreamCheck(js)
	}
	if s.bus != nil {
		deps.Bus = s.bus
	}
	if s.storeFeed {
		deps.Feed = httpapi.NewStoreFeed(store.Store)
	}
	logs := &testkit.LogBuffer{}
	cfg := s.cfg
	cfg.BootstrapToken = adminToken
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Clock = clk.fn()
	srv, err := httpapi.New(deps, cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	e := &env{t: t, store: store, cmd: cmd, blobs: res.blobs, engine: res.engine, classes: res.classifier, runner: runner, srv: srv, base: "http://" + ln.Addr().String(), logs: logs,
		clock: clk, stopped: make(chan error, 1)}
	sctx, stop := context.WithCancel(ctx)
	e.stop = stop
	go func() { e.stopped <- srv.Serve(sctx, ln) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			stop()
			select {
			case <-e.stopped:
			case <-time.After(waitTimeout):
				t.Errorf("server did not stop")
			}
		})
		if strings.Contains(logs.String(), adminToken) {
			t.Errorf("the logs contain the bootstrap token")
		}
	})
	if !s.noBus || s.storeFeed {
		e.waitLive()
	}
	return e
}

// resultDeps are the real services behind snapshots, diffs and SARIF.
type resultDeps struct {
	blobs      *fsblob.Store
	snaps      *snapshot.Service
	engine     *builtin.Engine
	uploader   *sarif.Uploader
	reader     *classify.Reader
	classifier *classify.Classifier
}

// results builds the snapshot service over a file blob store in a temp
// dir, the builtin engine, the SARIF uploader and the classifier and its
// reader, over store.
func results(t testing.TB, store *pt.Env, cmd *commands.Handlers) resultDeps {
	t.Helper()
	var d resultDeps
	var err error
	if d.blobs, err = fsblob.Open(t.TempDir(), nil); err != nil {
		t.Fatalf("blob store: %v", err)
	}
	t.Cleanup(func() { _ = d.blobs.Close() })
	if d.snaps, err = snapshot.New(cmd, d.blobs, snapshot.Config{TempDir: t.TempDir()}); err != nil {
		t.Fatalf("snapshot service: %v", err)
	}
	fp := testkit.Fingerprinter(t)
	if d.engine, err = builtin.New(fp); err != nil {
		t.Fatalf("builtin engine: %v", err)
	}
	im, err := sarif.NewImporter(fp, sarif.ImportOptions{Engine: domain.EngineSARIFUpload, Secrets: d.engine,
		Limits: sarif.Limits{MaxBytes: testSARIFMaxBytes}})
	if err != nil {
		t.Fatalf("sarif importer: %v", err)
	}
	if d.uploader, err = sarif.NewUploader(cmd, im, nil); err != nil {
		t.Fatalf("sarif uploader: %v", err)
	}
	if d.reader, err = classify.NewReader(store.Store); err != nil {
		t.Fatalf("classification reader: %v", err)
	}
	if d.classifier, err = classify.New(store.Store, classify.Options{}); err != nil {
		t.Fatalf("classifier: %v", err)
	}
	return d
}

// runScan claims scan scanID and runs it with the real runner and the
// builtin engine over its snapshot in the blob store, then waits for the
// read models to show its outcome.
func (e *env) runScan(scanID string) {
	e.t.Helper()
	lease, err := e.cmd.ClaimScan.Handle(sys(), commands.ClaimScan{ScanID: scanID, WorkerID: "w1"})
	if err != nil {
		e.t.Fatalf("claim: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err = runner.Run(ctx, scanID, runner.Deps{Handlers: e.cmd, Blobs: e.blobs, Fence: lease.Fence, TempDir: e.t.TempDir(),
		Engines: map[string]engine.Engine{builtin.Name: e.engine}})
	if err != nil {
		e.t.Fatalf("run scan %s: %v", scanID, err)
	}
	// The store's head may trail the runner's last append (PostgreSQL
	// hides positions behind any open transaction): wait for the scan
	// stream's last event instead.
	recs, err := e.store.Store.ReadStream(ctx, eventstore.NewStreamID(commands.CategoryScan, scanID), 1, 0)
	if err != nil || len(recs) == 0 {
		e.t.Fatalf("read scan %s: %d events, %v", scanID, len(recs), err)
	}
	pt.WaitFor(e.t, e.runner, recs[len(recs)-1].Position)
}

// classify classifies a finished scan, as the classifier's consumer does
// after ScanCompleted, and waits for the read models.
func (e *env) classify(scanID string) classify.Result {
	e.t.Helper()
	res, err := e.classes.Classify(sys(), scanID)
	if err != nil {
		e.t.Fatalf("classify %s: %v", scanID, err)
	}
	if !res.Position.IsZero() {
		pt.WaitFor(e.t, e.runner, res.Position)
	}
	return res
}

// waitLive appends probe events (to a category no projection reads) until
// the Hub delivers one: the live feed is then running.
func (e *env) waitLive() {
	e.t.Helper()
	stream := eventstore.StreamID("probe-" + ulid.Make().String())
	sub := e.srv.Hub().SubscribeScan(stream, 100)
	defer sub.Close()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		_, err := e.store.Store.Append(context.Background(), stream, eventstore.Any,
			eventstore.NewEvent{ID: ulid.Make().String(), Type: "Probe", SchemaVersion: 1, Data: []byte(`{}`)})
		if err != nil {
			e.t.Fatalf("append probe: %v", err)
		}
		select {
		case <-sub.Ready():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	e.t.Fatalf("the live feed delivered nothing within %s", waitTimeout)
}

// call is one request.
type call struct {
	method, path, token string
	body                any // marshalled as JSON unless []byte or string
	header              map[string]string
}

// do sends c and returns the status and the body.
func (e *env) do(c call) (int, []byte, http.Header) {
	e.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := c.body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader: // sent chunked: no Content-Length
		rd = b
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("marshal: %v", err)
		}
		rd, ct = bytes.NewReader(j), "application/json"
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method, e.base+c.path, rd)
	if err != nil {
		e.t.Fatalf("request: %v", err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", c.method, c.path, err)
	}
	return resp.StatusCode, body, resp.Header
}

// must sends c, checks the status and decodes the body into out (when
// not nil).
func (e *env) must(c call, want int, out any) {
	e.t.Helper()
	got, body, _ := e.do(c)
	if got != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", c.method, c.path, got, want, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", c.method, c.path, body, err)
		}
	}
}

// fails sends c and checks the status and the error code of the body.
func (e *env) fails(c call, status int, code string) httpapi.ErrorDetail {
	e.t.Helper()
	got, body, hdr := e.do(c)
	var eb httpapi.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		e.t.Fatalf("%s %s: status %d, body %q is not an error body: %v", c.method, c.path, got, body, err)
	}
	if got != status || eb.Error.Code != code {
		e.t.Fatalf("%s %s: got %d %q (%s), want %d %q", c.method, c.path, got, eb.Error.Code, eb.Error.Message, status, code)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("%s %s: error Content-Type %q", c.method, c.path, ct)
	}
	return eb.Error
}

// user is a principal with a token.
type user struct {
	name, principal, token string
}

// newUser issues a token through the API as admin.
func (e *env) newUser(name string) user {
	e.t.Helper()
	var tok struct {
		ID, Principal, Token string
	}
	e.must(call{method: "POST", path: "/api/v1/tokens", token: adminToken, body: map[string]any{"name": name}}, 201, &tok)
	return user{name: name, principal: tok.Principal, token: tok.Token}
}

// ctx returns a command context acting as the system.
func sys() context.Context {
	return commands.WithRequest(context.Background(), commands.Request{Actor: "system:test"})
}

// captured records a captured snapshot of repository id through the
// command side (uploads are another issue's routes) and waits for it.
func (e *env) captured(repoID string) string {
	e.t.Helper()
	res, err := e.cmd.RecordSnapshotCaptured.Handle(sys(), commands.RecordSnapshotCaptured{RepositoryID: repoID,
		Capture: domain.Capture{Digest: "sha256:" + strings.Repeat("ab", 32), SizeBytes: 10, FileCount: 1}})
	if err != nil {
		e.t.Fatalf("capture snapshot: %v", err)
	}
	pt.WaitFor(e.t, e.runner, res.Position)
	return res.Snapshot.ID
}

// run drives a scan through claim, start, progress, findings and
// completion with the command side, as a runner would.
func (e *env) run(scanID string, findings ...domain.Finding) {
	e.t.Helper()
	lease, err := e.cmd.ClaimScan.Handle(sys(), commands.ClaimScan{ScanID: scanID, WorkerID: "w1"})
	if err != nil {
		e.t.Fatalf("claim: %v", err)
	}
	f := lease.Fence
	steps := []func() (commands.Result, error){
		func() (commands.Result, error) {
			r, err := e.cmd.StartScan.Handle(sys(), commands.StartScan{ScanID: scanID, Fence: f})
			return r.Result, err
		},
		func() (commands.Result, error) {
			r, err := e.cmd.ProgressScan.Handle(sys(), commands.ProgressScan{ScanID: scanID, Fence: f, Phase: "builtin", Progress: 50})
			return r.Result, err
		},
		func() (commands.Result, error) {
			if len(findings) == 0 {
				return commands.Result{}, nil
			}
			r, err := e.cmd.RecordFindings.Handle(sys(), commands.RecordFindings{ScanID: scanID, Fence: f, Findings: findings})
			return r.Result, err
		},
		func() (commands.Result, error) {
			r, err := e.cmd.CompleteScan.Handle(sys(), commands.CompleteScan{ScanID: scanID, Fence: f})
			return r.Result, err
		},
	}
	var last eventstore.Position
	for i, step := range steps {
		r, err := step()
		if err != nil {
			e.t.Fatalf("scan step %d: %v", i, err)
		}
		if !r.Position.IsZero() {
			last = r.Position
		}
	}
	pt.WaitFor(e.t, e.runner, last)
}

func finding(rule string, sev domain.Severity, file string) domain.Finding {
	return domain.Finding{Fingerprint: "fp-" + rule + file, RuleID: rule, Title: "title " + rule, Severity: sev,
		Engine: "builtin", File: file, StartLine: 1, EndLine: 2, Snippet: "x = \"****\"", Confidence: 0.9}
}

// sseEvent is one parsed event of a stream (or a comment).
type sseEvent struct {
	id, event, data, comment string
}

// stream is an open SSE connection read by a goroutine.
type stream struct {
	t      testing.TB
	resp   *http.Response
	events chan sseEvent
	done   chan struct{}
	cancel context.CancelFunc
}

// openStream opens an SSE request; it fails the test unless the status
// is 200.
func (e *env) openStream(path, token string, header map[string]string) *stream {
	e.t.Helper()
	s, status, body := e.tryStream(path, token, header)
	if status != 200 {
		e.t.Fatalf("GET %s (SSE): status %d, body %s", path, status, body)
	}
	return s
}

// tryStream opens an SSE request and returns the stream on 200, else the
// status and the body.
func (e *env) tryStream(path, token string, header map[string]string) (*stream, int, []byte) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.base+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != 200 {
		defer cancel()
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, body
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	s := &stream{t: e.t, resp: resp, events: make(chan sseEvent, 1000), done: make(chan struct{}), cancel: cancel}
	go s.read()
	e.t.Cleanup(s.close)
	return s, 200, nil
}

func (s *stream) read() {
	defer close(s.done)
	defer close(s.events)
	sc := bufio.NewScanner(s.resp.Body)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				s.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			ev.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

// next returns the next event that is not a comment.
func (s *stream) next() sseEvent {
	s.t.Helper()
	for {
		ev := s.nextAny()
		if ev.comment == "" {
			return ev
		}
	}
}

// nextAny returns the next event or comment.
func (s *stream) nextAny() sseEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatalf("stream ended")
		}
		return ev
	case <-time.After(waitTimeout):
		s.t.Fatalf("no event within %s", waitTimeout)
	}
	return sseEvent{}
}

// ended waits for the server to close the stream, and fails if an event
// (other than a heartbeat) arrives first.
func (s *stream) ended() {
	s.t.Helper()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			if ev.comment == "" {
				s.t.Fatalf("event %+v after the stream should have ended", ev)
			}
		case <-time.After(waitTimeout):
			s.t.Fatalf("stream not closed within %s", waitTimeout)
		}
	}
}
