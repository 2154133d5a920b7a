package e2e_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startDev runs `vega dev` on a free port and a fresh data dir, with extra
// settings, and returns a client holding the admin token it printed.
func startDev(t *testing.T, extra map[string]string) (*client, *proc) {
	t.Helper()
	env := baseEnv(t.TempDir())
	env["VEGA_DATA_DIR"] = t.TempDir()
	env["VEGA_HTTP_ADDR"] = "127.0.0.1:0"
	for k, v := range extra {
		env[k] = v
	}
	p := startProc(t, "vega dev", env, "dev")
	base := p.waitLine("vega: listening on ")
	token := p.waitLine("vega: admin token: ")
	if !strings.HasPrefix(base, "http://127.0.0.1:") || token == "" {
		t.Fatalf("vega dev printed listening %q and token %q", base, token)
	}
	return newClient(t, base, token), p
}

// TestDevScanEndToEnd: on one machine, an uploaded archive with a planted
// AWS key and a SQL injection is scanned to completion; the live feed ends
// after the terminal event; the findings name both, never the key; the
// scan's history is complete, in order, and its hash chain verifies.
func TestDevScanEndToEnd(t *testing.T) {
	t.Parallel()
	c, p := startDev(t, nil)
	key := fakeAWSKeyID(t)
	repo := c.setupRepository("dev-e2e")

	sn := c.upload(repo, vulnerableApp(t, key))
	if sn.Status != "captured" || !strings.HasPrefix(sn.Digest, "sha256:") || sn.FileCount != 3 {
		t.Errorf("snapshot %+v: want captured, a sha256 digest and 3 files", sn)
	}

	start := time.Now()
	s := c.requestScan(repo, nil)
	feed := c.follow(s.ID, scanDeadline)
	t.Logf("scan %s: %s from request to `event: end`", s.ID, time.Since(start).Round(time.Millisecond))
	if len(feed) == 0 || feed[len(feed)-1] != "ScanCompleted" {
		t.Errorf("live feed %v: want it to end with ScanCompleted", feed)
	}

	// The feed runs ahead of the read models: wait for them.
	got := c.waitScan(s.ID, scanDeadline, "finished in the read model", terminal)
	if got.Status != "completed" || got.Partial {
		t.Fatalf("scan %+v: want completed, not partial", got)
	}
	checkFindings(t, c, s.ID, key, "builtin")
	events := checkHistory(t, c, s.ID, key)
	for _, want := range []string{"ScanRequested", "ScanClaimed", "ScanStarted", "FindingRecorded", "ScanCompleted"} {
		if !slices.Contains(events, want) {
			t.Errorf("scan history %v lacks %s", events, want)
		}
	}
	c.verifyStream("repository-" + repo)
	checkResults(t, c, repo, s.ID, key)

	// A graceful stop ends the process cleanly and promptly.
	if err := signalStop(p); err != nil {
		t.Errorf("vega dev after SIGTERM: %v", err)
	}
}

// TestDevCancelRunningScan: a scan whose sarif tool sleeps is cancelled
// while it runs; it ends cancelled, the tool's process is killed, and the
// history shows the request and the cancellation, and no completion.
func TestDevCancelRunningScan(t *testing.T) {
	t.Parallel()
	command, marker := slowSARIFTool(t, t.TempDir())
	c, _ := startDev(t, map[string]string{"VEGA_ENGINE_SARIF_COMMAND": command})
	repo := c.setupRepository("dev-cancel")
	c.upload(repo, vulnerableApp(t, fakeAWSKeyID(t)))

	s := c.requestScan(repo, []string{"builtin", "sarif"})
	toolPID := c.waitTool(s.ID, marker)
	c.waitScan(s.ID, scanDeadline, "running", func(s scan) bool { return s.Status == "running" })

	start := time.Now()
	var answer scan
	c.json(http.MethodPost, "/api/v1/scans/"+s.ID+"/cancel", nil, http.StatusAccepted, &answer)
	got := c.waitScan(s.ID, scanDeadline, "cancelled", terminal)
	t.Logf("scan %s: %s from cancel to %s", s.ID, time.Since(start).Round(time.Millisecond), got.Status)
	if got.Status != "cancelled" {
		t.Fatalf("scan %+v: want cancelled", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(toolPID) {
		if time.Now().After(deadline) {
			t.Fatalf("the sarif tool (pid %d) outlived the cancelled scan by 10s", toolPID)
		}
		time.Sleep(pollEvery)
	}

	events := checkHistory(t, c, s.ID, "")
	for _, want := range []string{"ScanCancelRequested", "ScanCancelled"} {
		if !slices.Contains(events, want) {
			t.Errorf("scan history %v lacks %s", events, want)
		}
	}
	if slices.Contains(events, "ScanCompleted") {
		t.Errorf("cancelled scan's history %v holds ScanCompleted", events)
	}
	// A finished scan cannot be cancelled again.
	if status, b := c.call(http.MethodPost, "/api/v1/scans/"+s.ID+"/cancel", "", nil); status != http.StatusConflict {
		t.Errorf("second cancel: status %d, want 409: %s", status, b)
	}
}

// signalStop sends SIGTERM to the process and waits for its exit.
func signalStop(p *proc) error {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	return p.wait(stopTimeout)
}

// checkFindings checks a completed scan of vulnerableApp: the key and the
// injection were found by engine, and the key appears in no finding.
func checkFindings(t *testing.T, c *client, scanID, key, engine string) {
	t.Helper()
	// The findings read model is a projection of its own: it may trail the
	// scans read model that already shows the scan completed.
	var (
		fs     []finding
		raw    []byte
		byRule map[string]finding
		start  = time.Now()
	)
	for {
		fs, raw = all[finding](c, "/api/v1/scans/"+scanID+"/findings")
		byRule = map[string]finding{}
		for _, f := range fs {
			byRule[f.RuleID] = f
		}
		_, aws := byRule["secrets.aws-access-key-id"]
		_, sql := byRule["injection.sql-python"]
		if aws && sql || time.Since(start) > scanDeadline {
			break
		}
		time.Sleep(pollEvery)
	}
	if lag := time.Since(start); lag > pollEvery {
		t.Logf("findings of completed scan %s appeared %s after its status (separate projections)", scanID, lag.Round(time.Millisecond))
	}
	aws, ok := byRule["secrets.aws-access-key-id"]
	if !ok {
		t.Errorf("findings %+v: no secrets.aws-access-key-id", fs)
	} else if aws.File != "settings.py" || aws.StartLine != 2 || aws.Engine != engine || aws.Severity != "high" {
		t.Errorf("AWS key finding %+v: want settings.py line 2, engine %s, high", aws, engine)
	}
	sql, ok := byRule["injection.sql-python"]
	if !ok {
		t.Errorf("findings %+v: no injection.sql-python", fs)
	} else if sql.File != "db.py" || sql.StartLine != 3 {
		t.Errorf("SQL injection finding %+v: want db.py line 3", sql)
	}
	if strings.Contains(string(raw), key) || strings.Contains(string(raw), key[4:]) {
		t.Errorf("the planted key appears in the findings JSON:\n%s", raw)
	}
	var s scan
	c.json(http.MethodGet, "/api/v1/scans/"+scanID, nil, http.StatusOK, &s)
	if s.Counts["high"] < 2 {
		t.Errorf("scan counts %v: want at least 2 high", s.Counts)
	}
}

// checkHistory reads the scan's events: versions 1…n without gaps, one
// terminal event, the key (if any) nowhere, and a hash chain that verifies
// over all of them. The classifier may still append ScanClassified after
// the terminal event: the list and the verification are read again until
// they agree. It returns the event types in order.
func checkHistory(t *testing.T, c *client, scanID, key string) []string {
	t.Helper()
	var (
		evs      []event
		raw      []byte
		deadline = time.Now().Add(scanDeadline)
	)
	for {
		evs, raw = all[event](c, "/api/v1/scans/"+scanID+"/events")
		v := c.verifyStream("scan-" + scanID)
		if v.Events == int64(len(evs)) {
			break
		}
		if v.Events < int64(len(evs)) || time.Now().After(deadline) {
			t.Fatalf("audit verify counted %d events of scan %s, the list has %d", v.Events, scanID, len(evs))
		}
		time.Sleep(pollEvery)
	}
	types := make([]string, len(evs))
	terminals := 0
	for i, e := range evs {
		types[i] = e.Type
		if e.Version != int64(i+1) || e.StreamID != "scan-"+scanID {
			t.Errorf("event %d: stream %s version %d, want scan-%s version %d", i, e.StreamID, e.Version, scanID, i+1)
		}
		switch e.Type {
		case "ScanCompleted", "ScanFailed", "ScanCancelled", "ScanTimedOut":
			terminals++
		}
	}
	if terminals != 1 {
		t.Errorf("scan %s history has %d terminal events, want 1: %v", scanID, terminals, types)
	}
	if key != "" && strings.Contains(string(raw), key) {
		t.Errorf("the planted key appears in the scan's events")
	}
	return types
}

// checkResults checks what a first completed scan of vulnerableApp
// exports once the classifier has run (until then the diff and the SARIF
// export answer 409 "not classified yet, retry"): the repository's open
// issues, the scan's diff (everything new) and its SARIF (without the
// key).
func checkResults(t *testing.T, c *client, repositoryID, scanID, key string) {
	t.Helper()
	type issue struct {
		RuleID string `json:"rule_id"`
		State  string `json:"state"`
		Triage string `json:"triage"`
	}
	deadline := time.Now().Add(scanDeadline)
	for {
		issues, _ := all[issue](c, "/api/v1/repositories/"+repositoryID+"/issues?state=open")
		rules := map[string]bool{}
		for _, is := range issues {
			if is.State == "open" && is.Triage == "open" {
				rules[is.RuleID] = true
			}
		}
		if rules["secrets.aws-access-key-id"] && rules["injection.sql-python"] {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("open issues %+v: want the AWS key and the SQL injection within %s", issues, scanDeadline)
			return
		}
		time.Sleep(pollEvery)
	}

	var diff struct {
		BaseScanID string    `json:"base_scan_id"`
		New        []finding `json:"new"`
		Unchanged  int       `json:"unchanged"`
	}
	if err := json.Unmarshal(c.classified("/api/v1/scans/"+scanID+"/diff"), &diff); err != nil {
		t.Fatalf("diff: %v", err)
	}
	if diff.BaseScanID != "" || len(diff.New) < 2 || diff.Unchanged != 0 {
		t.Errorf("diff of a first scan %+v: want no base and every finding new", diff)
	}

	b := c.classified("/api/v1/scans/" + scanID + "/sarif")
	var doc struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []json.RawMessage `json:"results"`
		} `json:"runs"`
	}
	if json.Unmarshal(b, &doc) != nil || doc.Version != "2.1.0" || len(doc.Runs) == 0 || len(doc.Runs[0].Results) < 2 {
		t.Errorf("SARIF export: want a SARIF 2.1.0 run of at least 2 results: %.300s", b)
	}
	if strings.Contains(string(b), key) {
		t.Errorf("the planted key appears in the SARIF export")
	}
}

// classified GETs a route that answers 409 until the scan is classified,
// retrying until it answers 200 or scanDeadline passes.
func (c *client) classified(path string) []byte {
	c.t.Helper()
	deadline := time.Now().Add(scanDeadline)
	for {
		status, b := c.call(http.MethodGet, path, "", nil)
		switch {
		case status == http.StatusOK:
			return b
		case status != http.StatusConflict || time.Now().After(deadline):
			c.t.Fatalf("GET %s: status %d, want 200: %s", path, status, b)
		}
		time.Sleep(pollEvery)
	}
}
