package llm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vega-sec/vega/adapters/llm"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/internal/fakellm"
	"github.com/vega-sec/vega/internal/testkit"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	providerKey = "sk-planted-provider-key-4f9c2e7a1b"
	model       = "gpt-4o-mini"
	digest      = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// world is one test's real SQLite store, command handlers, fake provider
// and proxy on loopback.
type world struct {
	t     *testing.T
	store eventstore.Store
	h     *commands.Handlers
	clock *testkit.Clock
	ctx   context.Context
	fake  *fakellm.Server
	proxy *llm.Proxy
	srv   *httptest.Server
	logs  *testkit.LogBuffer
}

func newWorld(t *testing.T, tweak ...func(*llm.ProxyConfig)) *world {
	t.Helper()
	store := testkit.SQLiteStore(t)
	c := testkit.NewClock(t0)
	logs := &testkit.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := testkit.Handlers(t, store, commands.Options{Clock: c.Now, Logger: log, LeaseDuration: time.Hour})
	fake, err := fakellm.Start(providerKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	cfg := llm.ProxyConfig{ProviderURL: fake.URL(), ProviderAPIKey: providerKey}
	for _, f := range tweak {
		f(&cfg)
	}
	p, err := llm.NewProxy(cfg, llm.ProxyDeps{Store: store, Handlers: h, Clock: c.Now, Logger: log, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("new proxy: %v", err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &world{t: t, store: store, h: h, clock: c, ctx: commands.WithRequest(t.Context(), commands.Request{Actor: "alice"}),
		fake: fake, proxy: p, srv: srv, logs: logs}
}

func must[R any](t *testing.T) func(R, error) R {
	t.Helper()
	return func(r R, err error) R {
		t.Helper()
		if err != nil {
			t.Fatalf("command failed: %v", err)
		}
		return r
	}
}

// scan returns a running scan with the budget and a token for it, valid
// for an hour.
func (w *world) scan(budget domain.LLMBudget) (scanID, token string) {
	t := w.t
	t.Helper()
	p := must[commands.ProjectResult](t)(w.h.CreateProject.Handle(w.ctx, commands.CreateProject{Name: "Payments"})).Project.ID
	repo := must[commands.RepositoryResult](t)(w.h.AddRepository.Handle(w.ctx, commands.AddRepository{
		ProjectID: p, Name: "api", Source: domain.Source{Kind: domain.SourceArchive}})).Repository.ID
	must[commands.ThreatProfileResult](t)(w.h.DefineThreatProfile.Handle(w.ctx, commands.DefineThreatProfile{
		RepositoryID: repo, Profile: domain.ThreatProfile{Engines: []string{"ai"}, LLMBudget: budget}}))
	must[commands.SnapshotResult](t)(w.h.RecordSnapshotCaptured.Handle(w.ctx, commands.RecordSnapshotCaptured{
		RepositoryID: repo, Capture: domain.Capture{Digest: digest, SizeBytes: 10, FileCount: 1}}))
	scanID = must[commands.ScanResult](t)(w.h.RequestScan.Handle(w.ctx, commands.RequestScan{RepositoryID: repo})).Scan.ID
	c := must[commands.LeaseResult](t)(w.h.ClaimScan.Handle(w.ctx, commands.ClaimScan{ScanID: scanID, WorkerID: "worker-1"}))
	token, err := llm.NewMinter(w.h, w.clock.Now).Mint(w.ctx, scanID, c.Fence, w.clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	must[commands.ScanResult](t)(w.h.StartScan.Handle(w.ctx, commands.StartScan{ScanID: scanID, Fence: c.Fence}))
	return scanID, token
}

// reply is one proxy answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// apiError decodes the proxy's error body.
func (r reply) apiError(t *testing.T) llm.APIError {
	t.Helper()
	var e struct {
		Error llm.APIError `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return e.Error
}

func chatBody(content string, extra map[string]any) map[string]any {
	b := map[string]any{"model": model, "messages": []any{map[string]any{"role": "user", "content": content}}}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// send posts body (a map or raw bytes) to the proxy's chat endpoint.
func (w *world) send(ctx context.Context, token string, body any, header map[string]string) (reply, error) {
	var data []byte
	switch b := body.(type) {
	case []byte:
		data = b
	default:
		data, _ = json.Marshal(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.srv.URL+"/v1/chat/completions", bytes.NewReader(data))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: got}, err
}

func (w *world) post(token string, body any, header map[string]string) reply {
	w.t.Helper()
	r, err := w.send(w.t.Context(), token, body, header)
	if err != nil {
		w.t.Fatalf("post: %v", err)
	}
	return r
}

// flush records pending usage.
func (w *world) flush() {
	w.t.Helper()
	if err := w.proxy.Flush(w.t.Context()); err != nil {
		w.t.Fatalf("flush: %v", err)
	}
}

// load folds the scan.
func (w *world) load(scanID string) *domain.Scan {
	w.t.Helper()
	s, _, err := w.h.Streams.Scans.Load(w.t.Context(), scanID)
	if err != nil {
		w.t.Fatalf("load scan: %v", err)
	}
	return s
}

// count returns how many events of type typ the scan's stream holds.
func (w *world) count(scanID, typ string) int {
	w.t.Helper()
	recs, err := w.store.ReadStream(w.t.Context(), w.h.Streams.Scans.StreamID(scanID), 1, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Type == typ {
			n++
		}
	}
	return n
}

// waitUsage flushes until the scan's recorded requests reach n: a handler
// settles after its client went away, so the test waits for it (bounded).
func (w *world) waitUsage(scanID string, n int64) *domain.Scan {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.flush()
		s := w.load(scanID)
		if s.LLMUsage.Requests >= n {
			return s
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("usage requests = %d, want %d", s.LLMUsage.Requests, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantCode(t *testing.T, r reply, status int, code string) llm.APIError {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d (%s), want %d", r.status, r.body, status)
	}
	e := r.apiError(t)
	if e.Code != code {
		t.Fatalf("code = %q (%s), want %q", e.Code, e.Message, code)
	}
	return e
}

// sseContent concatenates the content deltas of an SSE body and reports
// whether it carried a usage chunk and ended with [DONE].
func sseContent(t *testing.T, body []byte) (content string, usage, done bool) {
	t.Helper()
	var sb strings.Builder
	for _, line := range strings.Split(string(body), "\n") {
		payload, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if payload == "[DONE]" {
			done = true
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *struct{} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(payload), &c); err != nil {
			t.Fatalf("chunk %q: %v", payload, err)
		}
		if c.Usage != nil {
			usage = true
		}
		for _, ch := range c.Choices {
			sb.WriteString(ch.Delta.Content)
		}
	}
	return sb.String(), usage, done
}

func estimate(t *testing.T, body map[string]any) int64 {
	t.Helper()
	data, _ := json.Marshal(body)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return llm.EstimateInputTokens(m)
}
