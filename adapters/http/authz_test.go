package httpapi_test

import (
	"fmt"
	"testing"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

// TestAuthorizationMatrix: on every route that takes an ID, a stranger
// gets 404 (another project's objects do not exist for it); viewers read;
// editors also write repositories, profiles, snapshots, scans, SARIF
// uploads and triage; owners also manage members and archive; admins do
// anything; tokens are for admins only.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	e := start(t, sqliteEmbedded, setup{noBus: true})
	owner, editor, viewer, stranger := e.newUser("owner"), e.newUser("editor"), e.newUser("viewer"), e.newUser("stranger")
	var p queries.Project
	e.must(call{method: "POST", path: "/api/v1/projects", token: owner.token, body: map[string]any{"name": "p"}}, 201, &p)
	for who, role := range map[user]string{editor: "editor", viewer: "viewer"} {
		e.must(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/members", token: owner.token,
			body: map[string]any{"principal": who.principal, "role": role}}, 200, nil)
	}
	var repo queries.Repository
	e.must(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/repositories", token: owner.token,
		body: map[string]any{"name": "r", "source": map[string]any{"kind": "archive"}}}, 201, &repo)
	snap := e.captured(repo.ID)
	var sc, done, up queries.Scan
	e.must(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: owner.token, body: map[string]any{}}, 202, &sc)
	// A completed, classified scan (diffs) with an issue (triage), and a
	// scan awaiting a SARIF upload.
	e.must(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: owner.token, body: map[string]any{}}, 202, &done)
	leak := finding("secrets.aws", domain.SeverityCritical, "a.go")
	e.run(done.ID, leak)
	e.classify(done.ID)
	issue := domain.IssueID(repo.ID, leak.Fingerprint)
	e.must(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: owner.token,
		body: map[string]any{"engines": []string{"sarif-upload"}}}, 202, &up)

	// min is the weakest role that may use the route; "" means admins only.
	type route struct {
		method, path string
		body         any
		min          string
	}
	routes := []route{
		{"GET", "/api/v1/projects/" + p.ID, nil, "viewer"},
		{"GET", "/api/v1/projects/" + p.ID + "/members", nil, "viewer"},
		{"POST", "/api/v1/projects/" + p.ID + "/members", map[string]any{"principal": "someone", "role": "viewer"}, "owner"},
		{"DELETE", "/api/v1/projects/" + p.ID + "/members/" + owner.principal, nil, "owner"},
		{"POST", "/api/v1/projects/" + p.ID + "/archive", nil, "owner"},
		{"POST", "/api/v1/projects/" + p.ID + "/repositories", map[string]any{"name": "x", "source": map[string]any{"kind": "archive"}}, "editor"},
		{"GET", "/api/v1/projects/" + p.ID + "/repositories", nil, "viewer"},
		{"GET", "/api/v1/repositories/" + repo.ID, nil, "viewer"},
		{"DELETE", "/api/v1/repositories/" + repo.ID, nil, "editor"},
		{"GET", "/api/v1/repositories/" + repo.ID + "/snapshots", nil, "viewer"},
		{"GET", "/api/v1/snapshots/" + snap, nil, "viewer"},
		{"PUT", "/api/v1/repositories/" + repo.ID + "/threat-profile", map[string]any{"name": "x"}, "editor"},
		{"GET", "/api/v1/repositories/" + repo.ID + "/threat-profile", nil, "viewer"},
		{"POST", "/api/v1/repositories/" + repo.ID + "/scans", map[string]any{}, "editor"},
		{"GET", "/api/v1/repositories/" + repo.ID + "/scans", nil, "viewer"},
		{"GET", "/api/v1/scans/" + sc.ID, nil, "viewer"},
		{"POST", "/api/v1/scans/" + sc.ID + "/cancel", nil, "editor"},
		{"GET", "/api/v1/scans/" + sc.ID + "/findings", nil, "viewer"},
		{"GET", "/api/v1/scans/" + sc.ID + "/events", nil, "viewer"},
		{"GET", "/api/v1/scans/" + sc.ID + "/replay", nil, "viewer"},
		{"GET", "/api/v1/scans/" + done.ID + "/diff", nil, "viewer"},
		{"GET", "/api/v1/scans/" + done.ID + "/sarif", nil, "viewer"},
		{"POST", "/api/v1/scans/" + up.ID + "/sarif", map[string]any{"version": "2.1.0", "runs": []any{}}, "editor"},
		{"POST", "/api/v1/repositories/" + repo.ID + "/snapshots", map[string]any{"ref": "main"}, "editor"},
		{"GET", "/api/v1/repositories/" + repo.ID + "/issues", nil, "viewer"},
		{"GET", "/api/v1/issues/" + issue, nil, "viewer"},
		{"POST", "/api/v1/issues/" + issue + "/triage", map[string]any{"status": "under_review"}, "editor"},
		{"GET", "/api/v1/audit/verify?stream=scan-" + sc.ID, nil, "viewer"},
		{"GET", "/api/v1/audit/verify?stream=repository-" + repo.ID, nil, "viewer"},
		{"POST", "/api/v1/stream-tokens", map[string]any{"scan_id": sc.ID}, "viewer"},
		{"GET", "/api/v1/tokens", nil, ""},
		{"POST", "/api/v1/tokens", map[string]any{"name": "x"}, ""},
		{"DELETE", "/api/v1/tokens/" + stranger.principal, nil, ""},
	}
	rank := map[string]int{"viewer": 1, "editor": 2, "owner": 3}
	callers := []struct {
		u    user
		role string
	}{{stranger, ""}, {viewer, "viewer"}, {editor, "editor"}}
	for _, r := range routes {
		for _, c := range callers {
			t.Run(fmt.Sprintf("%s %s as %s", r.method, r.path, c.u.name), func(t *testing.T) {
				cl := call{method: r.method, path: r.path, token: c.u.token, body: r.body}
				switch {
				case r.min == "":
					e.fails(cl, 403, "forbidden")
				case c.role == "":
					e.fails(cl, 404, "not_found")
				case rank[c.role] < rank[r.min]:
					e.fails(cl, 403, "forbidden")
				default:
					// Reads succeed; writes this role may make are exercised
					// in TestAPI, and are not repeated here so that the
					// matrix leaves the objects as they are.
					if r.method == "GET" {
						e.must(cl, 200, nil)
					}
				}
			})
		}
	}
	// The owner's and admin's rights on the writes the matrix did not make.
	e.must(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/members", token: owner.token,
		body: map[string]any{"principal": "someone", "role": "viewer"}}, 200, nil)
	e.must(call{method: "PUT", path: "/api/v1/repositories/" + repo.ID + "/threat-profile", token: editor.token, body: map[string]any{"name": "x"}}, 200, nil)
	e.must(call{method: "POST", path: "/api/v1/scans/" + sc.ID + "/cancel", token: editor.token}, 202, nil)
	e.must(call{method: "POST", path: "/api/v1/issues/" + issue + "/triage", token: editor.token, body: map[string]any{"status": "under_review"}}, 200, nil)
	archive := tarGz(t, map[string]string{"README": "hello\n"})
	e.must(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/snapshots", token: editor.token, body: archive,
		header: map[string]string{"Content-Type": "application/zip"}}, 400, nil) // a tar.gz is not a zip
	e.must(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/snapshots", token: editor.token, body: archive,
		header: map[string]string{"Content-Type": "application/gzip"}}, 201, nil)
	e.must(call{method: "POST", path: "/api/v1/scans/" + up.ID + "/sarif", token: editor.token, body: e.sarif(done.ID, viewer.token),
		header: map[string]string{"Content-Type": "application/sarif+json"}}, 202, nil)
	e.must(call{method: "POST", path: "/api/v1/issues/" + issue + "/triage", token: adminToken, body: map[string]any{"status": "open"}}, 200, nil)
	e.must(call{method: "DELETE", path: "/api/v1/projects/" + p.ID + "/members/someone", token: adminToken}, 204, nil)
	e.must(call{method: "GET", path: "/api/v1/audit/verify?stream=access-" + owner.principal, token: adminToken}, 200, nil)
	e.fails(call{method: "GET", path: "/api/v1/audit/verify?stream=access-" + owner.principal, token: owner.token}, 404, "not_found")
	e.must(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/archive", token: adminToken}, 200, nil)
}
