package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	httpapi "github.com/vega-sec/vega/adapters/http"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/queries"
)

// fixture is a project of alice (owner) with carol (editor), bob
// (viewer), a repository with a snapshot, and eve, a stranger.
type fixture struct {
	alice, bob, carol, eve user
	project                queries.Project
	repo                   queries.Repository
}

func newFixture(t *testing.T, e *env) *fixture {
	t.Helper()
	f := &fixture{alice: e.newUser("alice"), bob: e.newUser("bob"), carol: e.newUser("carol"), eve: e.newUser("eve")}
	e.must(call{method: "POST", path: "/api/v1/projects", token: f.alice.token, body: map[string]any{"name": "p"}}, 201, &f.project)
	for who, role := range map[user]string{f.carol: "editor", f.bob: "viewer"} {
		e.must(call{method: "POST", path: "/api/v1/projects/" + f.project.ID + "/members", token: f.alice.token,
			body: map[string]any{"principal": who.principal, "role": role}}, 200, nil)
	}
	e.must(call{method: "POST", path: "/api/v1/projects/" + f.project.ID + "/repositories", token: f.alice.token,
		body: map[string]any{"name": "r", "source": map[string]any{"kind": "archive"}}}, 201, &f.repo)
	e.captured(f.repo.ID)
	return f
}

func (f *fixture) scan(t *testing.T, e *env) string {
	t.Helper()
	var sc queries.Scan
	e.must(call{method: "POST", path: "/api/v1/repositories/" + f.repo.ID + "/scans", token: f.carol.token, body: map[string]any{}}, 202, &sc)
	return sc.ID
}

// wantEvent checks an event's id and type.
func wantEvent(t *testing.T, ev sseEvent, id, typ string) {
	t.Helper()
	if ev.id != id || ev.event != typ {
		t.Fatalf("got event id %q type %q (%s), want id %q type %q", ev.id, ev.event, ev.data, id, typ)
	}
}

// TestScanFeed: replay, live through the bus, resume without duplicates,
// end after the terminal event; on both shapes.
func TestScanFeed(t *testing.T) {
	t.Parallel()
	for _, b := range []backend{sqliteEmbedded, postgresNATS} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			scanFeed(t, start(t, b, setup{}))
		})
	}
	t.Run("sqlite+store-feed", func(t *testing.T) {
		t.Parallel()
		scanFeed(t, start(t, sqliteEmbedded, setup{noBus: true, storeFeed: true}))
	})
}

func scanFeed(t *testing.T, e *env) {
	f := newFixture(t, e)
	id := f.scan(t, e)
	path := "/api/v1/scans/" + id + "/events"

	s1 := e.openStream(path, f.bob.token, nil)
	ev := s1.next()
	wantEvent(t, ev, "1", "ScanRequested")
	var data queries.Event
	if err := json.Unmarshal([]byte(ev.data), &data); err != nil || data.StreamID != "scan-"+id || data.Version != 1 || data.Actor != f.carol.principal {
		t.Fatalf("data %s (%v)", ev.data, err)
	}

	lease, err := e.cmd.ClaimScan.Handle(sys(), commands.ClaimScan{ScanID: id, WorkerID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	wantEvent(t, s1.next(), "2", "ScanClaimed") // live, through the bus

	// A client that saw version 1 resumes: replay from 2, no duplicate.
	s2 := e.openStream(path, f.bob.token, map[string]string{"Last-Event-ID": "1"})
	wantEvent(t, s2.next(), "2", "ScanClaimed")

	if _, err := e.cmd.StartScan.Handle(sys(), commands.StartScan{ScanID: id, Fence: lease.Fence}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := e.cmd.ProgressScan.Handle(sys(), commands.ProgressScan{ScanID: id, Fence: lease.Fence, Phase: "p", Progress: 10 * i}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.cmd.CompleteScan.Handle(sys(), commands.CompleteScan{ScanID: id, Fence: lease.Fence}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*stream{s1, s2} {
		wantEvent(t, s.next(), "3", "ScanStarted")
		for v := 4; v <= 6; v++ {
			wantEvent(t, s.next(), strconv.Itoa(v), "ScanProgressed")
		}
		wantEvent(t, s.next(), "7", "ScanCompleted")
		end := s.next()
		if end.event != "end" || end.data != "{}" || end.id != "" {
			t.Fatalf("end event %+v", end)
		}
		s.ended()
	}

	// A finished scan: replay after ?after=5, then end.
	s3 := e.openStream(path+"?after=5", f.bob.token, nil)
	wantEvent(t, s3.next(), "6", "ScanProgressed")
	wantEvent(t, s3.next(), "7", "ScanCompleted")
	if ev := s3.next(); ev.event != "end" {
		t.Fatalf("want end, got %+v", ev)
	}
	s3.ended()

	// A client that saw the terminal event gets "end" at once.
	s4 := e.openStream(path, f.bob.token, map[string]string{"Last-Event-ID": "7"})
	if ev := s4.next(); ev.event != "end" {
		t.Fatalf("want end, got %+v", ev)
	}
	s4.ended()

	e.fails(call{method: "GET", path: path + "?after=x", token: f.bob.token, header: map[string]string{"Accept": "text/event-stream"}}, 400, "invalid_argument")
	e.fails(call{method: "GET", path: path, token: f.eve.token, header: map[string]string{"Accept": "text/event-stream"}}, 404, "not_found")
}

func TestScanFeedHeartbeat(t *testing.T) {
	t.Parallel()
	e := start(t, sqliteEmbedded, setup{cfg: httpapi.Config{SSEHeartbeat: 20 * time.Millisecond}})
	f := newFixture(t, e)
	s := e.openStream("/api/v1/scans/"+f.scan(t, e)+"/events", f.bob.token, nil)
	wantEvent(t, s.nextAny(), "1", "ScanRequested")
	if ev := s.nextAny(); ev.comment != "heartbeat" {
		t.Fatalf("want a heartbeat comment, got %+v", ev)
	}
}

// TestScanFeedOverflow: a client whose queue is full when the Hub has
// another event gets "overflow" with the last id it was sent, and is
// disconnected; another client goes on.
func TestScanFeedOverflow(t *testing.T) {
	t.Parallel()
	e := start(t, sqliteEmbedded, setup{cfg: httpapi.Config{SSEQueue: 2}})
	f := newFixture(t, e)
	a, b := f.scan(t, e), f.scan(t, e)
	sa := e.openStream("/api/v1/scans/"+a+"/events", f.bob.token, nil)
	sb := e.openStream("/api/v1/scans/"+b+"/events", f.bob.token, nil)
	wantEvent(t, sa.next(), "1", "ScanRequested")
	wantEvent(t, sb.next(), "1", "ScanRequested")
	// Three events in one delivery into a queue of two: the slow client
	// overflows, whatever the timing.
	var burst []eventstore.RecordedEvent
	for v := int64(2); v <= 4; v++ {
		burst = append(burst, eventstore.RecordedEvent{StreamID: eventstore.StreamID("scan-" + a), Version: v, Type: "ScanProgressed",
			Data: []byte(`{}`), RecordedAt: time.Now()})
	}
	e.srv.Hub().Publish(context.Background(), burst...)
	ov := sa.next()
	if ov.event != "overflow" || ov.data != `{"last_id":1}` {
		t.Fatalf("want overflow, got %+v", ov)
	}
	sa.ended()
	// The other client is unaffected.
	e.must(call{method: "POST", path: "/api/v1/scans/" + b + "/cancel", token: f.carol.token}, 202, nil)
	wantEvent(t, sb.next(), "2", "ScanCancelled")
	if ev := sb.next(); ev.event != "end" {
		t.Fatalf("want end, got %+v", ev)
	}
	// The overflowed client resumes where it was.
	sa2 := e.openStream("/api/v1/scans/"+a+"/events", f.bob.token, map[string]string{"Last-Event-ID": "1"})
	e.must(call{method: "POST", path: "/api/v1/scans/" + a + "/cancel", token: f.carol.token}, 202, nil)
	wantEvent(t, sa2.next(), "2", "ScanCancelled")
}

func TestFeedCaps(t *testing.T) {
	t.Parallel()
	e := start(t, sqliteEmbedded, setup{cfg: httpapi.Config{SSEMaxPerPrincipal: 1, SSEMaxConns: 2}})
	f := newFixture(t, e)
	path := "/api/v1/scans/" + f.scan(t, e) + "/events"
	sse := map[string]string{"Accept": "text/event-stream"}
	s1 := e.openStream(path, f.alice.token, nil)
	e.fails(call{method: "GET", path: path, token: f.alice.token, header: sse}, 429, "rate_limited")
	e.fails(call{method: "GET", path: "/api/v1/events", token: f.alice.token, header: sse}, 429, "rate_limited")
	e.openStream(path, f.bob.token, nil)
	e.fails(call{method: "GET", path: path, token: f.carol.token, header: sse}, 429, "rate_limited")
	// Closing a stream frees its slot (once the server noticed).
	s1.close()
	deadline := time.Now().Add(waitTimeout)
	for {
		s, status, body := e.tryStream(path, f.carol.token, nil)
		if status == 200 {
			wantEvent(t, s.next(), "1", "ScanRequested")
			break
		}
		if status != 429 || time.Now().After(deadline) {
			t.Fatalf("status %d %s", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStreamTokens(t *testing.T) {
	t.Parallel()
	e := start(t, sqliteEmbedded, setup{})
	f := newFixture(t, e)
	a, b := f.scan(t, e), f.scan(t, e)
	var tok struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	e.must(call{method: "POST", path: "/api/v1/stream-tokens", token: f.bob.token, body: map[string]any{"scan_id": a}}, 201, &tok)
	exp, err := time.Parse(time.RFC3339, tok.ExpiresAt)
	if err != nil || exp.Before(time.Now().Add(4*time.Minute)) || exp.After(time.Now().Add(6*time.Minute)) {
		t.Fatalf("expires_at %q (%v): want about 5 minutes from now", tok.ExpiresAt, err)
	}
	sse := map[string]string{"Accept": "text/event-stream"}
	s := e.openStream("/api/v1/scans/"+a+"/events?access_token="+tok.Token, "", nil)
	wantEvent(t, s.next(), "1", "ScanRequested")

	e.fails(call{method: "GET", path: "/api/v1/scans/" + b + "/events?access_token=" + tok.Token, header: sse}, 401, "unauthenticated")
	e.fails(call{method: "GET", path: "/api/v1/events?access_token=" + tok.Token, header: sse}, 401, "unauthenticated")
	e.fails(call{method: "GET", path: "/api/v1/scans/" + a + "?access_token=" + tok.Token}, 401, "unauthenticated")
	e.fails(call{method: "GET", path: "/api/v1/scans/" + a + "/events?access_token=" + tok.Token}, 401, "unauthenticated")
	e.fails(call{method: "GET", path: "/api/v1/scans/" + a + "/events?access_token=" + tok.Token + "x", header: sse}, 401, "unauthenticated")
	e.fails(call{method: "GET", path: "/api/v1/scans/" + a + "/events?access_token=" + tok.Token, token: "vega_wrong", header: sse}, 401, "unauthenticated")
	e.fails(call{method: "POST", path: "/api/v1/stream-tokens", token: f.eve.token, body: map[string]any{"scan_id": a}}, 404, "not_found")
	e.fails(call{method: "POST", path: "/api/v1/stream-tokens", token: f.bob.token, body: map[string]any{"scan_id": 7}}, 400, "invalid_argument")

	var act struct{ Token string }
	e.must(call{method: "POST", path: "/api/v1/stream-tokens", token: f.bob.token, body: map[string]any{}}, 201, &act)
	e.openStream("/api/v1/events?access_token="+act.Token, "", nil)
	e.fails(call{method: "GET", path: "/api/v1/scans/" + a + "/events?access_token=" + act.Token, header: sse}, 401, "unauthenticated")

	e.clock.advance(6 * time.Minute)
	if d := e.fails(call{method: "GET", path: "/api/v1/scans/" + a + "/events?access_token=" + tok.Token, header: sse}, 401, "unauthenticated"); d.Message != "the access token has expired" {
		t.Errorf("message %q", d.Message)
	}
}

// TestActivityFeed: live events of the caller's projects only, resumable
// with the opaque cursor, which is the JSON list's cursor too.
func TestActivityFeed(t *testing.T) {
	t.Parallel()
	for _, b := range []backend{sqliteEmbedded, postgresNATS} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			activityFeed(t, start(t, b, setup{}))
		})
	}
}

func activityFeed(t *testing.T, e *env) {
	f := newFixture(t, e)
	s := e.openStream("/api/v1/events", f.bob.token, nil)
	var other queries.Project
	e.must(call{method: "POST", path: "/api/v1/projects", token: f.eve.token, body: map[string]any{"name": "eve's"}}, 201, &other)
	var r2 queries.Repository
	e.must(call{method: "POST", path: "/api/v1/projects/" + f.project.ID + "/repositories", token: f.carol.token,
		body: map[string]any{"name": "r2", "source": map[string]any{"kind": "archive"}}}, 201, &r2)
	ev := s.next()
	if ev.event != "RepositoryAdded" || ev.id == "" {
		t.Fatalf("want RepositoryAdded, got %+v", ev)
	}
	var data queries.Event
	if err := json.Unmarshal([]byte(ev.data), &data); err != nil || data.StreamID != "repository-"+r2.ID {
		t.Fatalf("data %s (%v)", ev.data, err)
	}
	e.must(call{method: "PUT", path: "/api/v1/repositories/" + r2.ID + "/threat-profile", token: f.carol.token, body: map[string]any{"name": "tp"}}, 200, nil)
	if got := s.next(); got.event != "ThreatProfileDefined" {
		t.Fatalf("want ThreatProfileDefined, got %+v", got)
	}
	// The SSE id is the JSON list's cursor after that event.
	var all page[queries.Event]
	e.must(call{method: "GET", path: "/api/v1/events?limit=500", token: f.bob.token}, 200, &all)
	idx := -1
	for i, it := range all.Items {
		if it.StreamID == "repository-"+r2.ID && it.Type == "RepositoryAdded" {
			idx = i
		}
		if it.StreamID == "project-"+other.ID {
			t.Fatalf("bob's activity list shows eve's project")
		}
	}
	var upTo page[queries.Event]
	e.must(call{method: "GET", path: "/api/v1/events?limit=" + strconv.Itoa(idx+1), token: f.bob.token}, 200, &upTo)
	if upTo.NextCursor != ev.id {
		t.Errorf("SSE id %q, JSON cursor %q", ev.id, upTo.NextCursor)
	}
	// Resume after it: the next event of bob's projects, no duplicate.
	for _, hdr := range []map[string]string{{"Last-Event-ID": ev.id}, nil} {
		path := "/api/v1/events"
		if hdr == nil {
			path += "?after=" + ev.id
		}
		r := e.openStream(path, f.bob.token, hdr)
		got := r.next()
		if got.event != "ThreatProfileDefined" {
			t.Fatalf("resumed stream starts with %+v", got)
		}
	}
	e.fails(call{method: "GET", path: "/api/v1/events", token: f.bob.token,
		header: map[string]string{"Accept": "text/event-stream", "Last-Event-ID": "42"}}, 400, "invalid_argument")
	// eve's stream sees her project's events only.
	se := e.openStream("/api/v1/events", f.eve.token, nil)
	e.must(call{method: "POST", path: "/api/v1/projects/" + f.project.ID + "/archive", token: f.alice.token}, 200, nil)
	e.must(call{method: "POST", path: "/api/v1/projects/" + other.ID + "/archive", token: f.eve.token}, 200, nil)
	got := se.next()
	if got.event != "ProjectArchived" || !jsonHas(got.data, "project-"+other.ID) {
		t.Fatalf("eve got %+v", got)
	}
}

func jsonHas(data, stream string) bool {
	var ev queries.Event
	return json.Unmarshal([]byte(data), &ev) == nil && ev.StreamID == stream
}

func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	e := start(t, sqliteEmbedded, setup{})
	f := newFixture(t, e)
	s := e.openStream("/api/v1/scans/"+f.scan(t, e)+"/events", f.bob.token, nil)
	wantEvent(t, s.next(), "1", "ScanRequested")
	e.stop()
	s.ended()
	select {
	case err := <-e.stopped:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		e.stopped <- nil
	case <-time.After(waitTimeout):
		t.Fatalf("Serve did not return")
	}
}

// panicky is the real query service with a Dashboard that panics and a
// ListProjects that fails as a driver would.
type panicky struct{ httpapi.Queries }

func (panicky) Dashboard(context.Context, queries.Caller) (queries.Dashboard, error) {
	panic("secret-detail of the panic")
}

func (panicky) ListProjects(context.Context, queries.Caller, queries.ListOptions) (queries.Page[queries.Project], error) {
	return queries.Page[queries.Project]{}, errors.New("pq: password authentication failed for secret-user")
}

func TestInternalErrorsLeakNothing(t *testing.T) {
	t.Parallel()
	e := start(t, sqliteEmbedded, setup{noBus: true, wrapQ: func(q httpapi.Queries) httpapi.Queries { return panicky{q} }})
	for _, path := range []string{"/api/v1/dashboard", "/api/v1/projects"} {
		_, body, _ := e.do(call{method: "GET", path: path, token: adminToken})
		d := e.fails(call{method: "GET", path: path, token: adminToken}, 500, "internal")
		if d.Message != "internal error" || containsAny(string(body), "secret", "panic", "pq:", "goroutine") {
			t.Errorf("%s: body %s", path, body)
		}
	}
	logs := e.logs.String()
	if !containsAny(logs, "secret-detail of the panic") || !containsAny(logs, "secret-user") {
		t.Errorf("internal errors were not logged")
	}
}

// slow is the real query service with a Dashboard that waits for its
// context to end.
type slow struct{ httpapi.Queries }

func (slow) Dashboard(ctx context.Context, _ queries.Caller) (queries.Dashboard, error) {
	<-ctx.Done()
	return queries.Dashboard{}, ctx.Err()
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	down := func(context.Context) error { return errors.New("nats: no servers available") }
	e := start(t, sqliteEmbedded, setup{noBus: true, bus: down, cfg: httpapi.Config{RequestTimeout: 50 * time.Millisecond},
		wrapQ: func(q httpapi.Queries) httpapi.Queries { return slow{q} }})
	var ready struct {
		Status  string   `json:"status"`
		Reasons []string `json:"reasons"`
	}
	e.must(call{method: "GET", path: "/readyz"}, 503, &ready)
	if ready.Status != "unavailable" || len(ready.Reasons) != 1 || ready.Reasons[0] != "message bus does not answer" {
		t.Errorf("readyz %+v", ready)
	}
	e.fails(call{method: "GET", path: "/readyz"}, 503, "unavailable")
	// A request that runs out of time is answered 503.
	e.fails(call{method: "GET", path: "/api/v1/dashboard", token: adminToken}, 503, "unavailable")
	status, body, _ := e.do(call{method: "PATCH", path: "/api/v1/projects", token: adminToken})
	if status != 405 || !containsAny(string(body), `"method_not_allowed"`) {
		t.Errorf("PATCH: %d %s", status, body)
	}
}

// TestScanFeedNoLossNoDuplicates: clients that connect while a runner
// writes each see every version exactly once, in order, then "end".
func TestScanFeedNoLossNoDuplicates(t *testing.T) {
	t.Parallel()
	e := start(t, sqliteEmbedded, setup{})
	f := newFixture(t, e)
	id := f.scan(t, e)
	path := "/api/v1/scans/" + id + "/events"
	lease, err := e.cmd.ClaimScan.Handle(sys(), commands.ClaimScan{ScanID: id, WorkerID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cmd.StartScan.Handle(sys(), commands.StartScan{ScanID: id, Fence: lease.Fence}); err != nil {
		t.Fatal(err)
	}
	const progress = 30
	var streams []*stream
	for i := 0; i < progress; i++ {
		if i%6 == 0 {
			streams = append(streams, e.openStream(path, f.bob.token, nil))
		}
		if _, err := e.cmd.ProgressScan.Handle(sys(), commands.ProgressScan{ScanID: id, Fence: lease.Fence, Phase: "p", Progress: i % 100}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.cmd.CompleteScan.Handle(sys(), commands.CompleteScan{ScanID: id, Fence: lease.Fence}); err != nil {
		t.Fatal(err)
	}
	last := 3 + progress + 1 // requested, claimed, started, progress…, completed
	for i, s := range streams {
		for v := 1; v <= last; v++ {
			ev := s.next()
			if ev.id != strconv.Itoa(v) {
				t.Fatalf("client %d: got id %q (%s), want %d", i, ev.id, ev.event, v)
			}
		}
		if ev := s.next(); ev.event != "end" {
			t.Fatalf("client %d: want end, got %+v", i, ev)
		}
		s.ended()
	}
}
