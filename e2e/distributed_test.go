package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vega-sec/vega/internal/pgtest"
)

// defaultNATSURL is used when VEGA_TEST_NATS_URL is unset.
const defaultNATSURL = "nats://127.0.0.1:4222"

// Timings of the distributed tests: a short lease and a fast reaper so
// that a lost runner is requeued in seconds, not minutes.
const (
	testLease        = 3 * time.Second // VEGA_SCAN_LEASE (the binary's minimum is 2s)
	testReapInterval = 250 * time.Millisecond
	bucket           = "vega-e2e"
)

// cluster is the distributed shape of one test: shared services, the
// settings every process shares, and the API.
type cluster struct {
	t   *testing.T
	env map[string]string // shared by every process
	api *client
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// natsURL returns the test NATS server's URL.
func natsURL() string {
	if u := os.Getenv("VEGA_TEST_NATS_URL"); u != "" {
		return u
	}
	return defaultNATSURL
}

// natsStream checks that the test NATS server answers with JetStream and
// deletes the test's stream when the test ends (after its processes).
func natsStream(t *testing.T, stream string) {
	t.Helper()
	url := natsURL()
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second), nats.Name("vega-e2e"))
	if err != nil {
		pgtest.Unavailable(t, "nats at "+url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		pgtest.Unavailable(t, "nats JetStream at "+url, err)
	}
	t.Cleanup(func() {
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Logf("delete NATS stream %s: %v", stream, err)
		}
	})
}

// fakeS3 serves an in-memory S3 with one bucket and returns the blob URL
// of that bucket.
func fakeS3(t *testing.T) string {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return "s3://" + bucket + "/e2e?endpoint=" + srv.URL + "&path_style=true&region=us-east-1"
}

// newCluster prepares the services (a PostgreSQL schema, a NATS stream and
// subject prefix, a fake S3), migrates the schema with `vega migrate` and
// starts `vega api`. extra settings go to every process.
func newCluster(t *testing.T, extra map[string]string) *cluster {
	t.Helper()
	suffix := randomHex(t, 6)
	stream := "VEGA_E2E_" + strings.ToUpper(suffix)
	natsStream(t, stream)
	dbURL := pgtest.Schema(t)
	env := map[string]string{
		"VEGA_DATABASE_URL":        dbURL,
		"VEGA_NATS_URL":            natsURL(),
		"VEGA_NATS_STREAM":         stream,
		"VEGA_NATS_SUBJECT_PREFIX": "vega.e2e." + suffix,
		"VEGA_BLOB_URL":            fakeS3(t),
		"AWS_ACCESS_KEY_ID":        "e2e-access-key",
		"AWS_SECRET_ACCESS_KEY":    "e2e-secret-key",
		"AWS_REGION":               "us-east-1",
		"VEGA_FINGERPRINT_KEY":     randomHex(t, 32),
		"VEGA_BOOTSTRAP_TOKEN":     "e2e-" + randomHex(t, 24),
		"VEGA_RUNNER_LAUNCHER":     "process",
		"VEGA_SCAN_LEASE":          testLease.String(),
		"VEGA_REAP_INTERVAL":       testReapInterval.String(),
	}
	for k, v := range extra {
		env[k] = v
	}
	c := &cluster{t: t, env: env}

	out := runVega(t, c.procEnv(nil), "migrate")
	if !strings.Contains(out, "postgres:") {
		t.Fatalf("vega migrate said %q", out)
	}
	api := startProc(t, "vega api", c.procEnv(map[string]string{"VEGA_HTTP_ADDR": "127.0.0.1:0"}), "api")
	base := api.waitLine("vega: listening on ")
	c.api = newClient(t, base, env["VEGA_BOOTSTRAP_TOKEN"])
	return c
}

// procEnv is the environment of one process: the shared settings, a home
// and a data dir of its own, and extra.
func (c *cluster) procEnv(extra map[string]string) map[string]string {
	env := baseEnv(c.t.TempDir())
	env["VEGA_DATA_DIR"] = c.t.TempDir()
	for k, v := range c.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// startWorker starts a `vega worker` and waits until it runs.
func (c *cluster) startWorker(name string) *proc {
	c.t.Helper()
	w := startProc(c.t, name, c.procEnv(nil), "worker")
	w.waitLine("vega: running")
	return w
}

// fenceOf reads the fence of an event's data (0 when it has none).
func fenceOf(t *testing.T, e event) uint64 {
	t.Helper()
	var d struct {
		Fence uint64 `json:"fence"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatalf("event %s %d: data %s: %v", e.Type, e.Version, e.Data, err)
	}
	return d.Fence
}

// TestDistributedScan: `vega api` and `vega worker` as separate processes
// on PostgreSQL, external NATS and S3 run an uploaded archive's scan to
// completion in a child `vega runner`.
func TestDistributedScan(t *testing.T) {
	t.Parallel()
	start := time.Now()
	cl := newCluster(t, nil)
	cl.startWorker("vega worker")
	t.Logf("cluster up in %s", time.Since(start).Round(time.Millisecond))
	c := cl.api
	key := fakeAWSKeyID(t)
	repo := c.setupRepository("dist-e2e")
	sn := c.upload(repo, vulnerableApp(t, key))
	if sn.Status != "captured" || sn.FileCount != 3 {
		t.Errorf("snapshot %+v: want captured with 3 files", sn)
	}

	start = time.Now()
	s := c.requestScan(repo, nil)
	feed := c.follow(s.ID, scanDeadline)
	t.Logf("scan %s: %s from request to `event: end`", s.ID, time.Since(start).Round(time.Millisecond))
	if len(feed) == 0 || feed[len(feed)-1] != "ScanCompleted" {
		t.Errorf("live feed %v: want it to end with ScanCompleted", feed)
	}
	// The feed runs ahead of the read models: wait for them.
	if got := c.waitScan(s.ID, scanDeadline, "finished in the read model", terminal); got.Status != "completed" || got.Partial {
		t.Fatalf("scan %+v: want completed, not partial", got)
	}
	checkFindings(t, c, s.ID, key, "builtin")
	checkHistory(t, c, s.ID, key)

	evs, _ := all[event](c, "/api/v1/scans/"+s.ID+"/events")
	launched := 0
	for _, e := range evs {
		if e.Type != "RunnerLaunched" {
			continue
		}
		launched++
		var d struct {
			Launcher string `json:"launcher"`
			JobID    string `json:"job_id"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if _, err := strconv.Atoi(d.JobID); d.Launcher != "process" || err != nil {
			t.Errorf("RunnerLaunched %s: want the process launcher and a PID", e.Data)
		}
	}
	if launched != 1 {
		t.Errorf("%d RunnerLaunched events, want 1", launched)
	}
}

// TestDistributedWorkerCrash: the worker (and its runner, and the runner's
// tool) is killed with SIGKILL while a scan runs; a new worker's reaper
// requeues the scan once the lease expires, and the new attempt completes
// it. The history holds exactly one ScanCompleted, every event of the
// dead attempt comes before its ScanRequeued, and the chain verifies.
func TestDistributedWorkerCrash(t *testing.T) {
	t.Parallel()
	command, marker := slowSARIFTool(t, t.TempDir())
	cl := newCluster(t, map[string]string{"VEGA_ENGINE_SARIF_COMMAND": command})
	w1 := cl.startWorker("vega worker 1")
	c := cl.api
	key := fakeAWSKeyID(t)
	repo := c.setupRepository("dist-crash")
	c.upload(repo, vulnerableApp(t, key))

	s := c.requestScan(repo, []string{"builtin", "sarif"})
	toolPID := c.waitTool(s.ID, marker)
	c.waitScan(s.ID, scanDeadline, "running", func(s scan) bool { return s.Status == "running" })
	runnerPID := 0
	evs, _ := all[event](c, "/api/v1/scans/"+s.ID+"/events")
	for _, e := range evs {
		if e.Type == "RunnerLaunched" {
			var d struct {
				JobID string `json:"job_id"`
			}
			_ = json.Unmarshal(e.Data, &d)
			runnerPID, _ = strconv.Atoi(d.JobID)
		}
	}
	if runnerPID == 0 || !alive(runnerPID) {
		t.Fatalf("no live runner process recorded for scan %s (pid %d)", s.ID, runnerPID)
	}

	w1.kill()
	killed := time.Now()
	for _, pid := range []int{runnerPID, toolPID} {
		deadline := time.Now().Add(5 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d survived the SIGKILL of the worker and its runner", pid)
			}
			time.Sleep(pollEvery)
		}
	}
	if got := c.scan(s.ID); got.Status != "running" {
		t.Fatalf("scan %+v right after the crash: want still running (nothing else may end it)", got)
	}

	cl.startWorker("vega worker 2")
	// Lease expiry + a reap + a claim + a fresh run; generous on a busy
	// machine.
	budget := testLease + scanDeadline
	got := c.waitScan(s.ID, budget, "finished after the crash (requeued by the reaper once the lease expired, then run again; "+
		"if it stays running, the runner's renewals probably used the default 2m lease: VEGA_SCAN_LEASE must reach `vega runner` children)", terminal)
	t.Logf("scan %s: %s from SIGKILL to %s", s.ID, time.Since(killed).Round(time.Millisecond), got.Status)
	if got.Status != "completed" {
		t.Fatalf("scan %+v after the crash: want completed", got)
	}
	checkFindings(t, c, s.ID, key, "builtin")
	fs, _ := all[finding](c, "/api/v1/scans/"+s.ID+"/findings")
	seen := map[string]int{}
	for _, f := range fs {
		seen[f.RuleID+"@"+f.File]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("finding %s listed %d times: the dead attempt's findings were not discarded", k, n)
		}
	}

	types := checkHistory(t, c, s.ID, key)
	evs, _ = all[event](c, "/api/v1/scans/"+s.ID+"/events")
	requeuedAt, requeuedFence := -1, uint64(0)
	for i, e := range evs {
		if e.Type == "ScanRequeued" {
			if requeuedAt >= 0 {
				t.Errorf("more than one ScanRequeued: %v", types)
			}
			requeuedAt, requeuedFence = i, fenceOf(t, e)
		}
	}
	if requeuedAt < 0 || requeuedFence != 1 {
		t.Fatalf("history %v: want one ScanRequeued of fence 1 (got index %d, fence %d)", types, requeuedAt, requeuedFence)
	}
	for i, e := range evs {
		f := fenceOf(t, e)
		if i > requeuedAt && f == requeuedFence && e.Type != "LLMUsageRecorded" {
			t.Errorf("event %d %s of the dead attempt (fence %d) comes after its ScanRequeued (event %d)", i, e.Type, f, requeuedAt)
		}
		if e.Type == "ScanCompleted" && f <= requeuedFence {
			t.Errorf("ScanCompleted has fence %d, want a later attempt than %d", f, requeuedFence)
		}
	}
	if n := count(types, "ScanCompleted"); n != 1 {
		t.Errorf("%d ScanCompleted, want 1", n)
	}
	if n := count(types, "ScanClaimed"); n != 2 {
		t.Errorf("%d ScanClaimed, want 2 (the dead attempt and the new one): %v", n, types)
	}
}

func count(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}
