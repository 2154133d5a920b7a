package e2e_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Bounds of the API helpers.
const (
	// scanDeadline bounds the wait for a scan to reach a terminal state.
	scanDeadline = 45 * time.Second
	// pollEvery is the period of the state polls.
	pollEvery = 100 * time.Millisecond
	// requestTimeout bounds one plain API call.
	requestTimeout = 20 * time.Second
)

// client calls the API as one principal.
type client struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

func newClient(t *testing.T, base, token string) *client {
	return &client{t: t, base: strings.TrimRight(base, "/"), token: token, http: &http.Client{}}
}

// call sends a request and returns the status and body; a transport error
// fails the test.
func (c *client) call(method, path, contentType string, body io.Reader) (int, []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// json sends in as JSON (nil: no body), expects status want and decodes the
// answer into out (nil: ignored). It returns the raw answer.
func (c *client) json(method, path string, in any, want int, out any) []byte {
	c.t.Helper()
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			c.t.Fatal(err)
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	status, b := c.call(method, path, ct, body)
	if status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return b
}

// The API's objects, as far as the tests read them.
type (
	idOnly struct {
		ID string `json:"id"`
	}
	snapshot struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		Digest    string `json:"digest"`
		FileCount int64  `json:"file_count"`
		SizeBytes int64  `json:"size_bytes"`
	}
	scan struct {
		ID      string           `json:"id"`
		Status  string           `json:"status"`
		Partial bool             `json:"partial"`
		Engines []string         `json:"engines"`
		Counts  map[string]int64 `json:"counts"`
		Error   string           `json:"error"`
	}
	finding struct {
		RuleID    string `json:"rule_id"`
		Severity  string `json:"severity"`
		Engine    string `json:"engine"`
		File      string `json:"file"`
		StartLine int    `json:"start_line"`
		Snippet   string `json:"snippet"`
		IssueID   string `json:"issue_id"`
		Diff      string `json:"diff"`
	}
	event struct {
		StreamID string          `json:"stream_id"`
		Version  int64           `json:"version"`
		Type     string          `json:"type"`
		Data     json.RawMessage `json:"data"`
	}
	verify struct {
		Stream   string `json:"stream"`
		Events   int64  `json:"events"`
		Valid    bool   `json:"valid"`
		BrokenAt *int64 `json:"broken_at"`
	}
	page[T any] struct {
		Items      []T    `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
)

// all reads every page of a list route, returning the items and the raw
// bodies.
func all[T any](c *client, path string) ([]T, []byte) {
	c.t.Helper()
	var (
		items []T
		raw   []byte
	)
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	cursor := ""
	for range 1000 {
		var p page[T]
		raw = append(raw, c.json(http.MethodGet, path+sep+"limit=500&cursor="+url.QueryEscape(cursor), nil, http.StatusOK, &p)...)
		items = append(items, p.Items...)
		if p.NextCursor == "" {
			return items, raw
		}
		cursor = p.NextCursor
	}
	c.t.Fatalf("GET %s: more than 1000 pages", path)
	return nil, nil
}

// setupRepository creates a project and an archive repository and
// returns the repository's ID.
func (c *client) setupRepository(name string) string {
	c.t.Helper()
	var p, r idOnly
	c.json(http.MethodPost, "/api/v1/projects", map[string]string{"name": name, "description": "end-to-end test"}, http.StatusCreated, &p)
	c.json(http.MethodPost, "/api/v1/projects/"+p.ID+"/repositories",
		map[string]any{"name": name + "-app", "source": map[string]string{"kind": "archive"}}, http.StatusCreated, &r)
	return r.ID
}

// upload posts a tar.gz snapshot and returns it; it fails with a clear
// message while the upload route is missing.
func (c *client) upload(repositoryID string, archive []byte) snapshot {
	c.t.Helper()
	path := "/api/v1/repositories/" + repositoryID + "/snapshots"
	status, b := c.call(http.MethodPost, path, "application/gzip", bytes.NewReader(archive))
	if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
		c.t.Fatalf("POST %s answered %d: the snapshot upload route (API.md: POST /api/v1/repositories/{repository_id}/snapshots, raw tar.gz) is not served yet: %s", path, status, b)
	}
	if status != http.StatusCreated {
		c.t.Fatalf("POST %s: status %d, want 201: %s", path, status, b)
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		c.t.Fatalf("decode snapshot %s: %v", b, err)
	}
	return s
}

// requestScan requests a scan (engines nil: the profile's) and returns it.
func (c *client) requestScan(repositoryID string, engines []string) scan {
	c.t.Helper()
	body := map[string]any{}
	if engines != nil {
		body["engines"] = engines
	}
	var s scan
	c.json(http.MethodPost, "/api/v1/repositories/"+repositoryID+"/scans", body, http.StatusAccepted, &s)
	return s
}

func (c *client) scan(id string) scan {
	c.t.Helper()
	var s scan
	c.json(http.MethodGet, "/api/v1/scans/"+id, nil, http.StatusOK, &s)
	return s
}

// waitScan polls the scan until cond holds, failing after timeout with the
// last state seen.
func (c *client) waitScan(id string, timeout time.Duration, what string, cond func(scan) bool) scan {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := c.scan(id)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("scan %s: not %s within %s; last state %+v", id, what, timeout, s)
		}
		time.Sleep(pollEvery)
	}
}

func terminal(s scan) bool {
	switch s.Status {
	case "completed", "failed", "cancelled", "timed_out":
		return true
	}
	return false
}

// follow reads the scan's live feed until `event: end` and returns the
// event types in the order received.
func (c *client) follow(scanID string, timeout time.Duration) []string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/scans/"+scanID+"/events", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("open the live feed of scan %s: %v", scanID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("live feed of scan %s: status %d: %s", scanID, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		c.t.Errorf("live feed Content-Type %q", ct)
	}
	var types []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		typ, ok := strings.CutPrefix(sc.Text(), "event: ")
		if !ok {
			continue
		}
		if typ == "end" {
			return types
		}
		types = append(types, typ)
	}
	c.t.Fatalf("live feed of scan %s ended without `event: end` (%v) after %v", scanID, sc.Err(), types)
	return nil
}

// verifyStream checks the hash chain of one stream through the API.
func (c *client) verifyStream(stream string) verify {
	c.t.Helper()
	var v verify
	c.json(http.MethodGet, "/api/v1/audit/verify?stream="+url.QueryEscape(stream), nil, http.StatusOK, &v)
	if !v.Valid || v.BrokenAt != nil || v.Stream != stream {
		c.t.Errorf("audit verify %s: %+v, want valid", stream, v)
	}
	return v
}

// fakeAWSKeyID returns a fresh, random AWS-shaped access key ID (never the
// documentation's EXAMPLE key), so no key-like literal lives in this file.
func fakeAWSKeyID(t *testing.T) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "AKIA" + string(b)
}

// vulnerableApp returns a tar.gz of a small Python app under one top-level
// folder, with the AWS key ID planted in its settings and a SQL injection.
func vulnerableApp(t *testing.T, keyID string) []byte {
	t.Helper()
	files := []struct{ name, body string }{
		{"app/settings.py", "DEBUG = False\nAWS_ACCESS_KEY_ID = \"" + keyID + "\"\n"},
		{"app/db.py", "def find_user(conn, name):\n    cur = conn.cursor()\n    cur.execute(f\"SELECT * FROM users WHERE name = '{name}'\")\n    return cur.fetchall()\n"},
		{"app/README.md", "A small app.\n"},
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	now := time.Now()
	if err := tw.WriteHeader(&tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body)), ModTime: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// slowSARIFTool writes a shell script for VEGA_ENGINE_SARIF_COMMAND and
// returns the command line and the marker file. Its first run writes its
// PID to the marker and sleeps (a scan slow enough to cancel or to crash);
// every later run, seeing the marker, writes an empty SARIF 2.1.0 document
// at once.
func slowSARIFTool(t *testing.T, dir string) (command, marker string) {
	t.Helper()
	script := filepath.Join(dir, "slow-sarif.sh")
	marker = filepath.Join(dir, "sarif-started")
	const body = `#!/bin/sh
# $1: marker file, $2: SARIF output file
if [ ! -e "$1" ]; then
  echo $$ > "$1.tmp" && mv "$1.tmp" "$1"
  sleep 60
fi
printf '%s' '{"version":"2.1.0","$schema":"https://json.schemastore.org/sarif-2.1.0.json","runs":[{"tool":{"driver":{"name":"slow-tool","rules":[]}},"results":[]}]}' > "$2"
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("/bin/sh %s %s {output}", script, marker), marker
}

// waitTool waits for the sarif tool of a scan to start (its marker file
// to appear) and returns its PID; it fails at once if the scan ends first.
func (c *client) waitTool(scanID, marker string) int {
	c.t.Helper()
	deadline := time.Now().Add(scanDeadline)
	for {
		if b, err := os.ReadFile(marker); err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				c.t.Fatalf("marker %s: %v", marker, err)
			}
			return pid
		}
		if s := c.scan(scanID); terminal(s) {
			c.t.Fatalf("scan %s ended %s (%s) before its sarif tool started", scanID, s.Status, s.Error)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the sarif tool of scan %s did not start within %s", scanID, scanDeadline)
		}
		time.Sleep(pollEvery)
	}
}
