package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

// TestAPI drives every route this package serves, and every error code
// it answers, over real stores, projections, queries and buses: SQLite
// with the embedded NATS server, and PostgreSQL with the external NATS
// server (skipped loudly when unreachable, failed with CI=true).
func TestAPI(t *testing.T) {
	t.Parallel()
	for _, b := range []backend{sqliteEmbedded, postgresNATS} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, b, setup{})
			apiFlow(t, e)
		})
	}
}

type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func apiFlow(t *testing.T, e *env) {
	// Operations.
	e.must(call{method: "GET", path: "/healthz"}, 200, nil)
	var ready map[string]any
	e.must(call{method: "GET", path: "/readyz"}, 200, &ready)
	_, metricsBody, _ := e.do(call{method: "GET", path: "/metrics"})
	if !strings.Contains(string(metricsBody), "vega_http_requests_total") {
		t.Errorf("/metrics lacks vega_http_requests_total")
	}
	var doc map[string]any
	e.must(call{method: "GET", path: "/openapi.json"}, 200, &doc)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v", doc["openapi"])
	}

	// Authentication.
	e.fails(call{method: "GET", path: "/api/v1/projects"}, 401, "unauthenticated")
	e.fails(call{method: "GET", path: "/api/v1/projects", token: "vega_nope"}, 401, "unauthenticated")
	e.fails(call{method: "GET", path: "/api/v1/projects", header: map[string]string{"Authorization": "Basic " + adminToken}}, 401, "unauthenticated")
	e.fails(call{method: "GET", path: "/api/v1/nothing", token: adminToken}, 404, "not_found")

	// Tokens (admin only).
	alice, bob, carol, dave := e.newUser("alice"), e.newUser("bob"), e.newUser("carol"), e.newUser("dave")
	var toks page[map[string]any]
	e.must(call{method: "GET", path: "/api/v1/tokens?limit=500", token: adminToken}, 200, &toks)
	if len(toks.Items) != 4 {
		t.Errorf("tokens: %d, want 4", len(toks.Items))
	}
	for _, tk := range toks.Items {
		for _, secret := range []string{"token", "hash"} {
			if _, ok := tk[secret]; ok {
				t.Errorf("token list shows %q: %v", secret, tk)
			}
		}
	}
	e.fails(call{method: "GET", path: "/api/v1/tokens", token: alice.token}, 403, "forbidden")
	e.fails(call{method: "POST", path: "/api/v1/tokens", token: alice.token, body: map[string]any{"name": "x"}}, 403, "forbidden")
	e.fails(call{method: "DELETE", path: "/api/v1/tokens/" + dave.principal, token: alice.token}, 403, "forbidden")
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if d := e.fails(call{method: "POST", path: "/api/v1/tokens", token: adminToken, body: map[string]any{"name": "old", "expires_at": past}}, 400, "invalid_argument"); d.Field != "expires_at" {
		t.Errorf("field = %q, want expires_at", d.Field)
	}
	e.fails(call{method: "POST", path: "/api/v1/tokens", token: adminToken, body: map[string]any{"name": ""}}, 400, "invalid_argument")
	e.must(call{method: "DELETE", path: "/api/v1/tokens/" + dave.principal, token: adminToken}, 204, nil)
	e.fails(call{method: "GET", path: "/api/v1/projects", token: dave.token}, 401, "unauthenticated")
	e.fails(call{method: "DELETE", path: "/api/v1/tokens/" + dave.principal, token: adminToken}, 409, "conflict")
	e.fails(call{method: "DELETE", path: "/api/v1/tokens/01JNOSUCHTOKEN0000000000000", token: adminToken}, 404, "not_found")
	// A token past its expiry (the query side's clock moves on).
	var short struct{ Token string }
	soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	e.must(call{method: "POST", path: "/api/v1/tokens", token: adminToken, body: map[string]any{"name": "short", "expires_at": soon}}, 201, &short)
	e.must(call{method: "GET", path: "/api/v1/projects", token: short.Token}, 200, nil)
	e.clock.advance(2 * time.Hour)
	e.fails(call{method: "GET", path: "/api/v1/projects", token: short.Token}, 401, "unauthenticated")
	e.clock.advance(-2 * time.Hour)
	eve := e.newUser("eve") // a stranger to every project

	// Projects: create, then read it at once from another client
	// (read-your-own-writes), list, members.
	var p queries.Project
	e.must(call{method: "POST", path: "/api/v1/projects", token: alice.token, body: map[string]any{"name": "alpha", "description": "first"}}, 201, &p)
	if p.ID == "" || p.Name != "alpha" || p.Archived {
		t.Fatalf("created project %+v", p)
	}
	var got queries.Project
	e.must(call{method: "GET", path: "/api/v1/projects/" + p.ID, token: adminToken}, 200, &got)
	if got != p {
		t.Errorf("read back %+v, want %+v", got, p)
	}
	var projects page[queries.Project]
	e.must(call{method: "GET", path: "/api/v1/projects", token: alice.token}, 200, &projects)
	if len(projects.Items) != 1 || projects.Items[0].ID != p.ID || projects.NextCursor != "" {
		t.Errorf("alice's projects %+v", projects)
	}
	e.must(call{method: "GET", path: "/api/v1/projects", token: eve.token}, 200, &projects)
	if len(projects.Items) != 0 {
		t.Errorf("eve sees %+v", projects.Items)
	}
	e.fails(call{method: "POST", path: "/api/v1/projects", token: alice.token, body: map[string]any{"name": " "}}, 400, "invalid_argument")
	for _, m := range []struct {
		who  user
		role string
	}{{bob, "viewer"}, {carol, "editor"}} {
		var mem queries.Member
		e.must(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/members", token: alice.token,
			body: map[string]any{"principal": m.who.principal, "role": m.role}}, 200, &mem)
		if mem.Principal != m.who.principal || string(mem.Role) != m.role || mem.ProjectID != p.ID {
			t.Errorf("member %+v", mem)
		}
	}
	e.fails(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/members", token: alice.token,
		body: map[string]any{"principal": bob.principal, "role": "viewer"}}, 409, "conflict")
	e.fails(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/members", token: alice.token,
		body: map[string]any{"principal": bob.principal, "role": "boss"}}, 400, "invalid_argument")
	e.fails(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/members", token: carol.token,
		body: map[string]any{"principal": eve.principal, "role": "viewer"}}, 403, "forbidden")
	var members page[queries.Member]
	e.must(call{method: "GET", path: "/api/v1/projects/" + p.ID + "/members?limit=2", token: bob.token}, 200, &members)
	if len(members.Items) != 2 || members.NextCursor == "" {
		t.Errorf("members page 1: %+v", members)
	}
	e.must(call{method: "GET", path: "/api/v1/projects/" + p.ID + "/members?limit=2&cursor=" + members.NextCursor, token: bob.token}, 200, &members)
	if len(members.Items) != 1 || members.NextCursor != "" {
		t.Errorf("members page 2: %+v", members)
	}

	// Repositories, snapshots, threat profiles.
	var repo queries.Repository
	e.must(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/repositories", token: carol.token,
		body: map[string]any{"name": "api", "source": map[string]any{"kind": "archive"}}}, 201, &repo)
	if repo.ProjectID != p.ID || repo.Source.Kind != domain.SourceArchive {
		t.Fatalf("repository %+v", repo)
	}
	if d := e.fails(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/repositories", token: carol.token,
		body: map[string]any{"name": "web", "source": map[string]any{"kind": "git", "url": "ext::sh -c evil"}}}, 400, "invalid_argument"); d.Field != "source.url" {
		t.Errorf("field %q, want source.url", d.Field)
	}
	var repos page[queries.Repository]
	e.must(call{method: "GET", path: "/api/v1/projects/" + p.ID + "/repositories", token: bob.token}, 200, &repos)
	if len(repos.Items) != 1 || repos.Items[0].ID != repo.ID {
		t.Errorf("repositories %+v", repos)
	}
	e.must(call{method: "GET", path: "/api/v1/repositories/" + repo.ID, token: bob.token}, 200, nil)
	var profile domain.ThreatProfile
	e.must(call{method: "GET", path: "/api/v1/repositories/" + repo.ID + "/threat-profile", token: bob.token}, 200, &profile)
	if profile.Version != 0 || len(profile.Categories) != 4 || profile.MinSeverity != domain.SeverityLow ||
		len(profile.Engines) != 1 || profile.Engines[0] != "builtin" || len(profile.Include) != 1 || profile.Include[0] != "**" {
		t.Errorf("default profile %+v", profile)
	}
	e.fails(call{method: "PUT", path: "/api/v1/repositories/" + repo.ID + "/threat-profile", token: bob.token, body: map[string]any{"name": "x"}}, 403, "forbidden")
	e.must(call{method: "PUT", path: "/api/v1/repositories/" + repo.ID + "/threat-profile", token: carol.token,
		body: map[string]any{"name": "strict", "min_severity": "medium", "categories": []string{"secrets", "crypto"}}}, 200, &profile)
	if profile.Version != 1 || profile.Name != "strict" || profile.MinSeverity != domain.SeverityMedium {
		t.Errorf("defined profile %+v", profile)
	}
	if d := e.fails(call{method: "PUT", path: "/api/v1/repositories/" + repo.ID + "/threat-profile", token: carol.token,
		body: map[string]any{"categories": []string{"magic"}}}, 400, "invalid_argument"); d.Field != "categories[0]" {
		t.Errorf("field %q", d.Field)
	}
	if d := e.fails(call{method: "PUT", path: "/api/v1/repositories/" + repo.ID + "/threat-profile", token: carol.token,
		body: map[string]any{"version": 7}}, 400, "invalid_argument"); d.Field != "version" {
		t.Errorf("unknown field named %q, want version", d.Field)
	}
	snapID := e.captured(repo.ID)
	var snaps page[queries.Snapshot]
	e.must(call{method: "GET", path: "/api/v1/repositories/" + repo.ID + "/snapshots", token: bob.token}, 200, &snaps)
	if len(snaps.Items) != 1 || snaps.Items[0].ID != snapID || snaps.Items[0].Status != domain.SnapshotStatusCaptured {
		t.Errorf("snapshots %+v", snaps)
	}
	e.must(call{method: "GET", path: "/api/v1/snapshots/" + snapID, token: bob.token}, 200, nil)

	// Scans: request (202), list newest first, run, findings, cancel.
	var sc1, sc2 queries.Scan
	e.fails(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: bob.token, body: map[string]any{}}, 403, "forbidden")
	e.must(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: carol.token, body: map[string]any{}}, 202, &sc1)
	if sc1.Status != domain.ScanStateRequested || sc1.SnapshotID != snapID || sc1.ProjectID != p.ID {
		t.Fatalf("scan %+v", sc1)
	}
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc1.ID, token: bob.token}, 200, &sc2)
	if sc2.ID != sc1.ID {
		t.Errorf("read back %+v", sc2)
	}
	e.fails(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: carol.token,
		body: map[string]any{"engines": []string{"Bad Engine"}}}, 400, "invalid_argument")
	e.fails(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: carol.token,
		body: map[string]any{"snapshot_id": "01JNOSUCHSNAPSHOT000000000"}}, 404, "not_found")
	e.must(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: carol.token, body: `{"engines":["builtin"]}`}, 202, &sc2)
	var scans page[queries.Scan]
	e.must(call{method: "GET", path: "/api/v1/repositories/" + repo.ID + "/scans", token: bob.token}, 200, &scans)
	if len(scans.Items) != 2 || scans.Items[0].ID != sc2.ID || scans.Items[1].ID != sc1.ID {
		t.Errorf("scans not newest first: %+v", scans.Items)
	}
	e.run(sc1.ID, finding("secrets.aws", domain.SeverityCritical, "a.go"), finding("crypto.md5", domain.SeverityLow, "b.go"))
	var findings page[queries.Finding]
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/findings", token: bob.token}, 200, &findings)
	if len(findings.Items) != 2 || findings.Items[0].Severity != domain.SeverityCritical {
		t.Errorf("findings %+v", findings.Items)
	}
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/findings?severity=low,info", token: bob.token}, 200, &findings)
	if len(findings.Items) != 1 || findings.Items[0].RuleID != "crypto.md5" {
		t.Errorf("filtered findings %+v", findings.Items)
	}
	if d := e.fails(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/findings?severity=urgent", token: bob.token}, 400, "invalid_argument"); d.Field != "severity" {
		t.Errorf("field %q", d.Field)
	}
	e.fails(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/findings?diff=old", token: bob.token}, 400, "invalid_argument")
	e.fails(call{method: "POST", path: "/api/v1/scans/" + sc1.ID + "/cancel", token: carol.token}, 409, "conflict")
	e.fails(call{method: "POST", path: "/api/v1/scans/" + sc2.ID + "/cancel", token: bob.token}, 403, "forbidden")
	var cancelled queries.Scan
	e.must(call{method: "POST", path: "/api/v1/scans/" + sc2.ID + "/cancel", token: carol.token}, 202, &cancelled)
	if cancelled.Status != domain.ScanStateCancelled {
		t.Errorf("cancelled scan %+v", cancelled)
	}

	// Events, replay, audit.
	var evs page[queries.Event]
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/events", token: bob.token}, 200, &evs)
	if len(evs.Items) < 5 || evs.Items[0].Type != "ScanRequested" || evs.Items[0].Version != 1 || evs.Items[0].StreamID != "scan-"+sc1.ID {
		t.Fatalf("events %+v", evs.Items)
	}
	last := evs.Items[len(evs.Items)-1]
	var live queries.Scan
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc1.ID, token: bob.token}, 200, &live)
	type replay struct {
		AsOf struct {
			Version    int64  `json:"version"`
			RecordedAt string `json:"recorded_at"`
		} `json:"as_of"`
		Scan   queries.Scan    `json:"scan"`
		Events []queries.Event `json:"events"`
	}
	var rp replay
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/replay?version=1", token: bob.token}, 200, &rp)
	if rp.AsOf.Version != 1 || rp.Scan.Status != domain.ScanStateRequested || len(rp.Events) != 1 || rp.Scan.ID != sc1.ID {
		t.Errorf("replay at version 1: %+v", rp)
	}
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/replay?at=" + last.RecordedAt, token: bob.token}, 200, &rp)
	if fmt.Sprint(rp.Scan) != fmt.Sprint(live) {
		t.Errorf("replay of the whole stream\n%+v\nwant the live scan\n%+v", rp.Scan, live)
	}
	var rawLive, rawReplay map[string]any
	_, lb, _ := e.do(call{method: "GET", path: "/api/v1/scans/" + sc1.ID, token: bob.token})
	_, rb, _ := e.do(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/replay", token: bob.token})
	_ = json.Unmarshal(lb, &rawLive)
	var wrapped map[string]json.RawMessage
	_ = json.Unmarshal(rb, &wrapped)
	_ = json.Unmarshal(wrapped["scan"], &rawReplay)
	if fmt.Sprint(keys(rawLive)) != fmt.Sprint(keys(rawReplay)) {
		t.Errorf("replay's scan has keys %v, GET /scans has %v", keys(rawReplay), keys(rawLive))
	}
	e.fails(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/replay?version=999", token: bob.token}, 400, "invalid_argument")
	e.fails(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/replay?version=1&at=" + last.RecordedAt, token: bob.token}, 400, "invalid_argument")
	e.fails(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/replay?at=yesterday", token: bob.token}, 400, "invalid_argument")
	e.fails(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/replay?at=2000-01-01T00:00:00Z", token: bob.token}, 404, "not_found")
	type verify struct {
		Stream   string `json:"stream"`
		Events   int64  `json:"events"`
		Valid    bool   `json:"valid"`
		BrokenAt *int64 `json:"broken_at"`
	}
	var v verify
	e.must(call{method: "GET", path: "/api/v1/audit/verify?stream=scan-" + sc1.ID, token: bob.token}, 200, &v)
	if !v.Valid || v.BrokenAt != nil || v.Events != int64(len(evs.Items)) || v.Stream != "scan-"+sc1.ID {
		t.Errorf("verify %+v", v)
	}
	e.must(call{method: "GET", path: "/api/v1/audit/verify?stream=project-" + p.ID, token: bob.token}, 200, &v)
	e.fails(call{method: "GET", path: "/api/v1/audit/verify?stream=access-" + alice.principal, token: alice.token}, 404, "not_found")
	e.must(call{method: "GET", path: "/api/v1/audit/verify?stream=access-" + alice.principal, token: adminToken}, 200, &v)
	e.fails(call{method: "GET", path: "/api/v1/audit/verify?stream=scan-" + sc1.ID, token: eve.token}, 404, "not_found")
	e.fails(call{method: "GET", path: "/api/v1/audit/verify?stream=nonsense", token: bob.token}, 400, "invalid_argument")
	e.fails(call{method: "GET", path: "/api/v1/audit/verify?stream=scan-01JNOSUCHSCAN0000000000000", token: adminToken}, 404, "not_found")

	// Dashboard and activity.
	var dash queries.Dashboard
	e.must(call{method: "GET", path: "/api/v1/dashboard", token: bob.token}, 200, &dash)
	if dash.Projects != 1 || dash.Repositories != 1 || dash.Scans["completed"] != 1 || dash.Scans["cancelled"] != 1 {
		t.Errorf("dashboard %+v", dash)
	}
	var act page[queries.Event]
	e.must(call{method: "GET", path: "/api/v1/events?limit=500", token: bob.token}, 200, &act)
	if len(act.Items) == 0 || act.Items[0].Type != "ProjectCreated" {
		t.Errorf("activity %+v", act.Items)
	}
	e.must(call{method: "GET", path: "/api/v1/events", token: eve.token}, 200, &act)
	if len(act.Items) != 0 {
		t.Errorf("eve's activity %+v", act.Items)
	}

	// Lists, bodies, content types.
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "cursor=garbage"} {
		if d := e.fails(call{method: "GET", path: "/api/v1/projects?" + q, token: alice.token}, 400, "invalid_argument"); d.Field == "" {
			t.Errorf("%s: no field", q)
		}
	}
	e.fails(call{method: "POST", path: "/api/v1/projects", token: alice.token, body: []byte(`{"name":"x"}`),
		header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type")
	e.fails(call{method: "POST", path: "/api/v1/projects", token: alice.token, body: `{"name":"x","colour":"red"}`}, 400, "invalid_argument")
	e.fails(call{method: "POST", path: "/api/v1/projects", token: alice.token, body: `{"name":`}, 400, "invalid_argument")
	e.fails(call{method: "POST", path: "/api/v1/projects", token: alice.token, body: `{"name":"a"} {"name":"b"}`}, 400, "invalid_argument")
	big := `{"name":"x","description":"` + strings.Repeat("a", 1<<20) + `"}`
	e.fails(call{method: "POST", path: "/api/v1/projects", token: alice.token, body: big}, 413, "payload_too_large")

	// Archive (owner), then no new scans; remove a repository (editor).
	e.fails(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/archive", token: carol.token}, 403, "forbidden")
	var archived queries.Project
	e.must(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/archive", token: alice.token}, 200, &archived)
	if !archived.Archived {
		t.Errorf("archive: %+v", archived)
	}
	e.fails(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: carol.token, body: map[string]any{}}, 409, "conflict")
	e.fails(call{method: "DELETE", path: "/api/v1/repositories/" + repo.ID, token: bob.token}, 403, "forbidden")
	e.must(call{method: "DELETE", path: "/api/v1/repositories/" + repo.ID, token: carol.token}, 204, nil)
	e.fails(call{method: "GET", path: "/api/v1/repositories/" + repo.ID, token: alice.token}, 404, "not_found")
	e.must(call{method: "GET", path: "/api/v1/repositories/" + repo.ID, token: adminToken}, 200, nil)
	e.fails(call{method: "DELETE", path: "/api/v1/repositories/" + repo.ID, token: adminToken}, 404, "not_found")

	// Members: owners remove; anyone may leave; the last owner stays.
	e.fails(call{method: "DELETE", path: "/api/v1/projects/" + p.ID + "/members/" + carol.principal, token: bob.token}, 403, "forbidden")
	e.must(call{method: "DELETE", path: "/api/v1/projects/" + p.ID + "/members/" + bob.principal, token: bob.token}, 204, nil)
	e.fails(call{method: "GET", path: "/api/v1/projects/" + p.ID, token: bob.token}, 404, "not_found")
	e.fails(call{method: "DELETE", path: "/api/v1/projects/" + p.ID + "/members/" + alice.principal, token: alice.token}, 409, "conflict")
	e.fails(call{method: "DELETE", path: "/api/v1/projects/" + p.ID + "/members/" + eve.principal, token: alice.token}, 404, "not_found")

	// Request IDs: taken from the client when sane, else made.
	_, _, hdr := e.do(call{method: "GET", path: "/healthz", header: map[string]string{"X-Request-ID": "abc-123"}})
	if hdr.Get("X-Request-ID") != "abc-123" {
		t.Errorf("X-Request-ID %q", hdr.Get("X-Request-ID"))
	}
	_, _, hdr = e.do(call{method: "GET", path: "/healthz", header: map[string]string{"X-Request-ID": "bad id\twith tab"}})
	if id := hdr.Get("X-Request-ID"); len(id) != 26 {
		t.Errorf("generated X-Request-ID %q is not a ULID", id)
	}
	logs := e.logs.String()
	for _, secret := range []string{alice.token, carol.token} {
		if strings.Contains(logs, secret) {
			t.Errorf("a token appears in the logs")
		}
	}
	if !strings.Contains(logs, `"route":"/api/v1/scans/{scan_id}/findings"`) || !strings.Contains(logs, `"principal":"`+bob.principal+`"`) {
		t.Errorf("access logs lack route patterns or principals")
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

// TestAuditDetectsTampering: a stored event changed behind the store's
// back breaks the chain at its version.
func TestAuditDetectsTampering(t *testing.T) {
	t.Parallel()
	e := start(t, sqliteEmbedded, setup{noBus: true})
	alice := e.newUser("alice")
	var p queries.Project
	e.must(call{method: "POST", path: "/api/v1/projects", token: alice.token, body: map[string]any{"name": "p"}}, 201, &p)
	for _, n := range []string{"x", "y", "z"} {
		e.must(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/members", token: alice.token,
			body: map[string]any{"principal": n, "role": "viewer"}}, 200, nil)
	}
	type verify struct {
		Events   int64  `json:"events"`
		Valid    bool   `json:"valid"`
		BrokenAt *int64 `json:"broken_at"`
	}
	var v verify
	e.must(call{method: "GET", path: "/api/v1/audit/verify?stream=project-" + p.ID, token: alice.token}, 200, &v)
	if !v.Valid || v.BrokenAt != nil || v.Events != 5 {
		t.Fatalf("before tampering: %+v", v)
	}
	for _, q := range []string{`DROP TRIGGER events_no_update`,
		`UPDATE events SET data = '{"principal":"x","role":"owner","at":"2020-01-01T00:00:00Z"}' WHERE stream_id = 'project-` + p.ID + `' AND version = 3`} {
		if _, err := e.store.DB.Exec(q); err != nil {
			t.Fatalf("tamper: %v", err)
		}
	}
	e.must(call{method: "GET", path: "/api/v1/audit/verify?stream=project-" + p.ID, token: alice.token}, 200, &v)
	if v.Valid || v.BrokenAt == nil || *v.BrokenAt != 3 || v.Events != 5 {
		t.Fatalf("after tampering: %+v", v)
	}
}
