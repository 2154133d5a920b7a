package httpapi_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	httpapi "github.com/vega-sec/vega/adapters/http"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

// fakeAWSKeyID and fakeAWSSecret are planted in uploaded snapshots (the
// builtin rules' own positive examples, no real credentials); neither may
// appear in any answer.
const (
	fakeAWSKeyID  = "AKIAVQJXXVBOTHD2WTFL"
	fakeAWSSecret = "4QhoxhLPAbQcEFUV2fsjGHb6HrlEOS47WgjKCu+0"
)

// testMaxSnapshotBytes is the snapshot limit of TestResultsAPI's server.
const testMaxSnapshotBytes = 64 << 10

// tarGz builds a tar.gz whose entries are under one top-level folder.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		hdr := &tar.Header{Name: "app/" + name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header: %v", err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatalf("tar write: %v", err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("tar close: %v", err)
	}
	if err := gz.Close(); err != nil {
		t.Fatalf("gzip close: %v", err)
	}
	return buf.Bytes()
}

type diffBody struct {
	BaseScanID string            `json:"base_scan_id"`
	New        []queries.Finding `json:"new"`
	Reopened   []queries.Finding `json:"reopened"`
	Fixed      []queries.Finding `json:"fixed"`
	Unchanged  int               `json:"unchanged"`
}

// sarifDoc is what the tests read of an exported SARIF log.
type sarifDoc struct {
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID       string `json:"id"`
					FullDesc struct {
						Text string `json:"text"`
					} `json:"fullDescription"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID        string `json:"ruleId"`
			BaselineState string `json:"baselineState"`
		} `json:"results"`
	} `json:"runs"`
}

// TestResultsAPI drives snapshots, scans run by the real runner with the
// builtin engine, classification, diffs, SARIF export and upload, and
// issue triage end to end over both backends.
func TestResultsAPI(t *testing.T) {
	t.Parallel()
	for _, b := range []backend{sqliteEmbedded, postgresNATS} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, b, setup{cfg: httpapi.Config{MaxSnapshotBytes: testMaxSnapshotBytes, Version: "9.9.9"}})
			resultsFlow(t, e)
		})
	}
}

func resultsFlow(t *testing.T, e *env) {
	alice, bob, carol := e.newUser("alice"), e.newUser("bob"), e.newUser("carol")
	var p queries.Project
	e.must(call{method: "POST", path: "/api/v1/projects", token: alice.token, body: map[string]any{"name": "results"}}, 201, &p)
	for who, role := range map[user]string{bob: "viewer", carol: "editor"} {
		e.must(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/members", token: alice.token,
			body: map[string]any{"principal": who.principal, "role": role}}, 200, nil)
	}
	var repo, gitRepo queries.Repository
	e.must(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/repositories", token: carol.token,
		body: map[string]any{"name": "api", "source": map[string]any{"kind": "archive"}}}, 201, &repo)
	e.must(call{method: "POST", path: "/api/v1/projects/" + p.ID + "/repositories", token: carol.token,
		body: map[string]any{"name": "web", "source": map[string]any{"kind": "git", "url": "https://example.com/web.git"}}}, 201, &gitRepo)
	snapPath := "/api/v1/repositories/" + repo.ID + "/snapshots"
	gz := map[string]string{"Content-Type": "application/gzip"}

	// Snapshots: an archive with two planted AWS credentials is captured
	// (201) and readable at once by another client.
	first := tarGz(t, map[string]string{
		"config/aws.ini": "[default]\naws_access_key_id=" + fakeAWSKeyID + "\naws_secret_access_key = " + fakeAWSSecret + "\n",
		"main.go":        "package main\n\nfunc main() {}\n",
	})
	var snap queries.Snapshot
	e.must(call{method: "POST", path: snapPath, token: carol.token, body: first, header: gz}, 201, &snap)
	if snap.Status != domain.SnapshotStatusCaptured || snap.RepositoryID != repo.ID || !strings.HasPrefix(snap.Digest, "sha256:") ||
		snap.FileCount != 2 || snap.SizeBytes <= 0 || snap.CapturedAt == "" {
		t.Fatalf("uploaded snapshot %+v", snap)
	}
	var readBack queries.Snapshot
	e.must(call{method: "GET", path: "/api/v1/snapshots/" + snap.ID, token: bob.token}, 200, &readBack)
	if readBack != snap {
		t.Errorf("read back %+v, want %+v", readBack, snap)
	}
	e.must(call{method: "GET", path: "/api/v1/repositories/" + repo.ID, token: bob.token}, 200, &repo)
	if repo.LatestSnapshotID != snap.ID {
		t.Errorf("latest snapshot %q, want %q", repo.LatestSnapshotID, snap.ID)
	}
	// application/x-gzip is a tar.gz too.
	var again queries.Snapshot
	e.must(call{method: "POST", path: snapPath, token: carol.token, body: first,
		header: map[string]string{"Content-Type": "application/x-gzip"}}, 201, &again)
	if again.Digest != snap.Digest || again.ID == snap.ID {
		t.Errorf("same archive again: %+v, first %+v", again, snap)
	}

	// Refusals: content type, content, size (declared and streamed), kind.
	e.fails(call{method: "POST", path: snapPath, token: carol.token, body: first,
		header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type")
	if d := e.fails(call{method: "POST", path: snapPath, token: carol.token, body: []byte("this is not gzip"), header: gz},
		400, "invalid_argument"); d.Field != "archive" || d.Message == "" {
		t.Errorf("bad archive: %+v", d)
	}
	noise := make([]byte, testMaxSnapshotBytes*3)
	_, _ = rand.Read(noise)
	if d := e.fails(call{method: "POST", path: snapPath, token: carol.token, body: noise, header: gz}, 413, "payload_too_large"); !strings.Contains(d.Message, "65536") {
		t.Errorf("declared too large: %q does not name the limit", d.Message)
	}
	e.fails(call{method: "POST", path: snapPath, token: carol.token, body: bytes.NewReader(noise), header: gz}, 413, "payload_too_large")
	if d := e.fails(call{method: "POST", path: "/api/v1/repositories/" + gitRepo.ID + "/snapshots", token: carol.token, body: first,
		header: map[string]string{"Content-Type": "application/zip"}}, 400, "invalid_argument"); d.Field != "source.kind" {
		t.Errorf("archive to a git repository: field %q", d.Field)
	}
	if d := e.fails(call{method: "POST", path: snapPath, token: carol.token, body: map[string]any{"ref": "main"}}, 400, "invalid_argument"); d.Field != "source.kind" {
		t.Errorf("git ref to an archive repository: field %q", d.Field)
	}
	e.fails(call{method: "POST", path: snapPath, token: bob.token, body: first, header: gz}, 403, "forbidden")
	var snaps page[queries.Snapshot]
	e.must(call{method: "GET", path: snapPath, token: bob.token}, 200, &snaps)
	if len(snaps.Items) != 2 {
		t.Errorf("refused uploads left snapshots: %+v", snaps.Items)
	}

	// A git capture is requested (202, pending) for the worker.
	var pending queries.Snapshot
	e.must(call{method: "POST", path: "/api/v1/repositories/" + gitRepo.ID + "/snapshots", token: carol.token,
		body: map[string]any{"ref": "main"}}, 202, &pending)
	if pending.Status != domain.SnapshotStatusPending || pending.Ref != "main" || pending.RepositoryID != gitRepo.ID {
		t.Errorf("git snapshot %+v", pending)
	}
	e.fails(call{method: "POST", path: "/api/v1/repositories/" + gitRepo.ID + "/snapshots", token: carol.token,
		body: map[string]any{"ref": "main", "depth": 1}}, 400, "invalid_argument")

	// Scan 1, run by the real runner: findings, redacted.
	var sc1 queries.Scan
	e.must(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: carol.token,
		body: map[string]any{"snapshot_id": snap.ID}}, 202, &sc1)
	if d := e.fails(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/diff", token: bob.token}, 409, "conflict"); !strings.Contains(d.Message, "requested") {
		t.Errorf("diff of a requested scan: %q", d.Message)
	}
	e.runScan(sc1.ID)
	var f1 page[queries.Finding]
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/findings?limit=500", token: bob.token}, 200, &f1)
	rules := map[string]bool{}
	for _, f := range f1.Items {
		rules[f.RuleID] = true
	}
	if !rules["secrets.aws-access-key-id"] || !rules["secrets.aws-secret-access-key"] {
		t.Fatalf("scan 1 findings lack the planted keys: %+v", f1.Items)
	}
	if d := e.fails(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/diff", token: bob.token}, 409, "conflict"); !strings.Contains(d.Message, "not classified") {
		t.Errorf("diff of an unclassified completed scan: %q", d.Message)
	}

	// Classified: the first scan's diff has no base and everything new, in
	// the findings list's shape.
	e.classify(sc1.ID)
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/findings?limit=500", token: bob.token}, 200, &f1)
	byID := map[string]queries.Finding{}
	for _, f := range f1.Items {
		byID[f.ID] = f
	}
	var d1 diffBody
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/diff", token: bob.token}, 200, &d1)
	if d1.BaseScanID != "" || len(d1.New) != len(f1.Items) || len(d1.Reopened) != 0 || len(d1.Fixed) != 0 || d1.Unchanged != 0 {
		t.Fatalf("first diff %+v", d1)
	}
	for _, f := range d1.New {
		if want := byID[f.ID]; f != want || f.Diff != domain.DiffNew || f.IssueID == "" || f.Triage != "open" {
			t.Errorf("diff finding\n%+v\nwant the findings list's\n%+v", f, want)
		}
	}
	_, rawDiff, _ := e.do(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/diff", token: bob.token})
	_, rawFindings, _ := e.do(call{method: "GET", path: "/api/v1/scans/" + sc1.ID + "/findings", token: bob.token})
	var rd map[string][]map[string]any
	var rf struct{ Items []map[string]any }
	_ = json.Unmarshal(rawDiff, &rd)
	_ = json.Unmarshal(rawFindings, &rf)
	if len(rd["new"]) == 0 || len(rf.Items) == 0 || strings.Join(keys(rd["new"][0]), ",") != strings.Join(keys(rf.Items[0]), ",") {
		t.Errorf("diff finding keys %v, findings list keys %v", keys(rd["new"][0]), keys(rf.Items[0]))
	}

	// SARIF export: 2.1.0, the builtin rules' text, baselineState new,
	// valid against the official schema (when it is beside the checkout).
	doc1 := e.sarif(sc1.ID, bob.token)
	var s1 sarifDoc
	if err := json.Unmarshal(doc1, &s1); err != nil {
		t.Fatalf("sarif: %v", err)
	}
	if s1.Version != "2.1.0" || len(s1.Runs) != 1 || s1.Runs[0].Tool.Driver.Name != "Vega" || len(s1.Runs[0].Results) != len(f1.Items) {
		t.Fatalf("sarif %+v", s1)
	}
	for _, r := range s1.Runs[0].Results {
		if r.BaselineState != "new" {
			t.Errorf("result %s baselineState %q, want new", r.RuleID, r.BaselineState)
		}
	}
	described := false
	for _, r := range s1.Runs[0].Tool.Driver.Rules {
		described = described || r.ID == "secrets.aws-access-key-id" && strings.Contains(r.FullDesc.Text, "AWS access key ID")
	}
	if !described {
		t.Errorf("the builtin rule's description is not exported: %+v", s1.Runs[0].Tool.Driver.Rules)
	}
	validateSARIF(t, doc1)

	// Scan 2 of a snapshot without the secret key: the key's issue is
	// fixed, the key ID's unchanged, nothing new.
	second := tarGz(t, map[string]string{
		"config/aws.ini": "[default]\naws_access_key_id=" + fakeAWSKeyID + "\n",
		"main.go":        "package main\n\nfunc main() {}\n",
	})
	var snap2 queries.Snapshot
	e.must(call{method: "POST", path: snapPath, token: carol.token, body: bytes.NewReader(second), header: gz}, 201, &snap2)
	var sc2 queries.Scan
	e.must(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: carol.token, body: map[string]any{}}, 202, &sc2)
	if sc2.SnapshotID != snap2.ID {
		t.Fatalf("scan 2 of snapshot %s, want the latest %s", sc2.SnapshotID, snap2.ID)
	}
	e.runScan(sc2.ID)
	e.classify(sc2.ID)
	var f2 page[queries.Finding]
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc2.ID + "/findings?limit=500", token: bob.token}, 200, &f2)
	var d2 diffBody
	e.must(call{method: "GET", path: "/api/v1/scans/" + sc2.ID + "/diff", token: bob.token}, 200, &d2)
	if d2.BaseScanID != sc1.ID || len(d2.New) != 0 || len(d2.Reopened) != 0 || d2.Unchanged != len(f2.Items) || len(d2.Fixed) == 0 {
		t.Fatalf("second diff %+v (scan 2 has %d findings)", d2, len(f2.Items))
	}
	fixedRules := map[string]bool{}
	for _, f := range d2.Fixed {
		fixedRules[f.RuleID] = true
		if f.ScanID != sc1.ID || byID[f.ID].Fingerprint != f.Fingerprint {
			t.Errorf("fixed finding %+v is not scan 1's last finding", f)
		}
	}
	if !fixedRules["secrets.aws-secret-access-key"] || fixedRules["secrets.aws-access-key-id"] {
		t.Errorf("fixed rules %v", fixedRules)
	}
	var s2 sarifDoc
	_ = json.Unmarshal(e.sarif(sc2.ID, bob.token), &s2)
	for _, r := range s2.Runs[0].Results {
		if r.BaselineState != "unchanged" {
			t.Errorf("scan 2 result %s baselineState %q, want unchanged", r.RuleID, r.BaselineState)
		}
	}

	// Issues: list and filters, one with its history, triage.
	issuesPath := "/api/v1/repositories/" + repo.ID + "/issues"
	var all, fixed, open page[queries.Issue]
	e.must(call{method: "GET", path: issuesPath + "?limit=500", token: bob.token}, 200, &all)
	e.must(call{method: "GET", path: issuesPath + "?state=fixed", token: bob.token}, 200, &fixed)
	e.must(call{method: "GET", path: issuesPath + "?state=open&triage=open", token: bob.token}, 200, &open)
	if len(all.Items) != len(f1.Items) || len(fixed.Items) != len(d2.Fixed) || len(open.Items) != len(all.Items)-len(fixed.Items) {
		t.Fatalf("issues: all %d, fixed %d, open %d; diff fixed %d", len(all.Items), len(fixed.Items), len(open.Items), len(d2.Fixed))
	}
	if d := e.fails(call{method: "GET", path: issuesPath + "?state=closed", token: bob.token}, 400, "invalid_argument"); d.Field != "state" {
		t.Errorf("field %q", d.Field)
	}
	var target queries.Issue
	for _, is := range open.Items {
		if is.RuleID == "secrets.aws-access-key-id" {
			target = is
		}
	}
	if target.ID == "" || target.FirstSeenScanID != sc1.ID || target.LastSeenScanID != sc2.ID || target.State != domain.IssueStateOpen {
		t.Fatalf("issue of the key ID: %+v in %+v", target, open.Items)
	}
	issuePath := "/api/v1/issues/" + target.ID
	var is queries.Issue
	e.must(call{method: "GET", path: issuePath, token: bob.token}, 200, &is)
	if len(is.History) == 0 || is.History[0].State != "open" || is.Triage != domain.TriageOpen {
		t.Errorf("issue %+v", is)
	}
	e.must(call{method: "POST", path: issuePath + "/triage", token: carol.token,
		body: map[string]any{"status": "false_positive", "note": "a test fixture"}}, 200, &is)
	last := is.History[len(is.History)-1]
	if is.Triage != domain.TriageFalsePositive || last.Triage != "false_positive" || last.Note != "a test fixture" || last.Actor != carol.principal {
		t.Errorf("triaged issue %+v", is)
	}
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	e.must(call{method: "POST", path: issuePath + "/triage", token: carol.token,
		body: map[string]any{"status": "accepted_risk", "note": "rotating", "expires_at": expires.Format(time.RFC3339)}}, 200, &is)
	if is.Triage != domain.TriageAcceptedRisk || is.ExpiresAt == "" {
		t.Errorf("accepted risk %+v", is)
	}
	if got, err := time.Parse(time.RFC3339Nano, is.ExpiresAt); err != nil || !got.Equal(expires) {
		t.Errorf("expires_at %q, want %s", is.ExpiresAt, expires)
	}
	var other queries.Issue
	e.must(call{method: "GET", path: issuePath, token: bob.token}, 200, &other)
	if other.Triage != domain.TriageAcceptedRisk || len(other.History) != len(is.History) {
		t.Errorf("read back %+v, want %+v", other, is)
	}
	var accepted page[queries.Issue]
	e.must(call{method: "GET", path: issuesPath + "?triage=accepted_risk", token: bob.token}, 200, &accepted)
	if len(accepted.Items) != 1 || accepted.Items[0].ID != target.ID {
		t.Errorf("accepted_risk issues %+v", accepted.Items)
	}
	// Past its expiry an accepted risk reads open.
	e.clock.advance(2 * time.Hour)
	e.must(call{method: "GET", path: issuePath, token: bob.token}, 200, &other)
	e.must(call{method: "GET", path: issuesPath + "?triage=accepted_risk", token: bob.token}, 200, &accepted)
	e.clock.advance(-2 * time.Hour)
	if other.Triage != domain.TriageOpen || len(accepted.Items) != 0 {
		t.Errorf("expired accepted risk reads %q; accepted list %+v", other.Triage, accepted.Items)
	}
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"accepted_risk without expiry", map[string]any{"status": "accepted_risk"}, "expires_at"},
		{"accepted_risk in the past", map[string]any{"status": "accepted_risk", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"},
		{"expiry without accepted_risk", map[string]any{"status": "wont_fix", "expires_at": expires.Format(time.RFC3339)}, "expires_at"},
		{"expiry not a time", map[string]any{"status": "accepted_risk", "expires_at": "next week"}, "expires_at"},
		{"unknown status", map[string]any{"status": "ignored"}, "status"},
		{"unknown field", map[string]any{"status": "open", "reason": "x"}, "reason"},
	} {
		d := e.fails(call{method: "POST", path: issuePath + "/triage", token: carol.token, body: tc.body}, 400, "invalid_argument")
		if d.Field != tc.field {
			t.Errorf("%s: field %q, want %q", tc.name, d.Field, tc.field)
		}
	}
	e.fails(call{method: "POST", path: issuePath + "/triage", token: bob.token, body: map[string]any{"status": "open"}}, 403, "forbidden")
	e.fails(call{method: "GET", path: "/api/v1/issues/01JNOSUCHISSUE000000000000", token: bob.token}, 404, "not_found")

	// SARIF upload: a scan requested for it takes Vega's own export and
	// completes with its results as findings.
	var up queries.Scan
	e.must(call{method: "POST", path: "/api/v1/repositories/" + repo.ID + "/scans", token: carol.token,
		body: map[string]any{"engines": []string{"sarif-upload"}}}, 202, &up)
	sarifPath := "/api/v1/scans/" + up.ID + "/sarif"
	sarifCT := map[string]string{"Content-Type": httpapi.SARIFMediaType}
	e.fails(call{method: "POST", path: sarifPath, token: carol.token, body: doc1, header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type")
	if d := e.fails(call{method: "POST", path: sarifPath, token: carol.token, body: []byte(`{"version": "1.0"}`), header: sarifCT}, 400, "invalid_argument"); d.Field != "body" || !strings.Contains(d.Message, "SARIF") {
		t.Errorf("invalid SARIF: %+v", d)
	}
	big := append(append([]byte(`{"version":"2.1.0","runs":[],"x":"`), bytes.Repeat([]byte("a"), testSARIFMaxBytes)...), `"}`...)
	e.fails(call{method: "POST", path: sarifPath, token: carol.token, body: big, header: sarifCT}, 413, "payload_too_large")
	e.fails(call{method: "POST", path: "/api/v1/scans/" + sc1.ID + "/sarif", token: carol.token, body: doc1, header: sarifCT}, 409, "conflict")
	e.fails(call{method: "POST", path: sarifPath, token: bob.token, body: doc1, header: sarifCT}, 403, "forbidden")
	var done queries.Scan
	e.must(call{method: "POST", path: sarifPath, token: carol.token, body: doc1, header: sarifCT}, 202, &done)
	if done.ID != up.ID || done.Status != domain.ScanStateCompleted {
		t.Fatalf("uploaded scan %+v", done)
	}
	var fu page[queries.Finding]
	e.must(call{method: "GET", path: "/api/v1/scans/" + up.ID + "/findings?limit=500", token: bob.token}, 200, &fu)
	if len(fu.Items) != len(f1.Items) {
		t.Errorf("uploaded findings %d, want %d", len(fu.Items), len(f1.Items))
	}
	for _, f := range fu.Items {
		if f.Engine != domain.EngineSARIFUpload {
			t.Errorf("uploaded finding engine %q", f.Engine)
		}
	}
	e.fails(call{method: "POST", path: sarifPath, token: carol.token, body: doc1, header: sarifCT}, 409, "conflict")
	e.classify(up.ID)
	e.must(call{method: "GET", path: "/api/v1/scans/" + up.ID + "/diff", token: bob.token}, 200, &d1)

	// No answer or log line carries a planted secret.
	for _, path := range []string{"/api/v1/scans/" + sc1.ID + "/findings", "/api/v1/scans/" + sc1.ID + "/diff", "/api/v1/scans/" + sc2.ID + "/diff",
		"/api/v1/scans/" + sc1.ID + "/sarif", "/api/v1/scans/" + up.ID + "/findings", issuesPath} {
		_, body, _ := e.do(call{method: "GET", path: path, token: bob.token})
		if containsAny(string(body), fakeAWSKeyID, fakeAWSSecret) {
			t.Errorf("GET %s shows a planted secret", path)
		}
	}
	if containsAny(e.logs.String(), fakeAWSKeyID, fakeAWSSecret) {
		t.Errorf("the logs show a planted secret")
	}
}

// sarif GETs a scan's SARIF export and checks its media type.
func (e *env) sarif(scanID, token string) []byte {
	e.t.Helper()
	status, body, hdr := e.do(call{method: "GET", path: "/api/v1/scans/" + scanID + "/sarif", token: token})
	if status != 200 || hdr.Get("Content-Type") != httpapi.SARIFMediaType {
		e.t.Fatalf("GET sarif: %d %q %s", status, hdr.Get("Content-Type"), body)
	}
	return body
}

// sarifSchema is the official OASIS schema, kept beside the checkout
// (never copied into it).
var sarifSchema = filepath.Join("..", "..", "..", "shared", "testdata", "sarif-schema-2.1.0.json")

// validateSARIF checks doc against the official schema when it is there
// (adapters/sarif's tests insist on it).
func validateSARIF(t *testing.T, doc []byte) {
	t.Helper()
	if _, err := os.Stat(sarifSchema); err != nil {
		t.Logf("SARIF schema %s not found: the export is checked as JSON only", sarifSchema)
		return
	}
	sch, err := jsonschema.NewCompiler().Compile(sarifSchema)
	if err != nil {
		t.Fatalf("compile %s: %v", sarifSchema, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("the export is not JSON: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("the export does not match the SARIF 2.1.0 schema: %v", err)
	}
}
