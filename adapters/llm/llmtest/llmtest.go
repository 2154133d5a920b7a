// Package llmtest starts, for tests of LLM clients (the ai and agent
// engines), the real LLM proxy over a real SQLite store in a temporary
// directory, in front of the fake provider, on loopback, with a running
// scan and its token.
package llmtest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vega-sec/vega/adapters/llm"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/sqlite"
	"github.com/vega-sec/vega/internal/fakellm"
)

// ProviderKey is the fake provider's key, held by the proxy only.
const ProviderKey = "sk-llmtest-provider-key-31c7"

// World is one test's proxy, provider and scan.
type World struct {
	Store    eventstore.Store
	Handlers *commands.Handlers
	Fake     *fakellm.Server
	Proxy    *llm.Proxy
	// ProxyURL is the proxy's base URL, ending in /v1.
	ProxyURL string
	ScanID   string
	Token    string
	Profile  domain.ThreatProfile
	t        testing.TB
}

// Start builds a World whose scan has the profile (Engines defaults to ai
// and agent) and is running, with a token valid for an hour. Everything is
// torn down with the test.
func Start(t testing.TB, profile domain.ThreatProfile) *World {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "vega.db"), sqlite.WithPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	h, err := commands.New(store, commands.Options{LeaseDuration: time.Hour})
	if err != nil {
		t.Fatalf("handlers: %v", err)
	}
	fake, err := fakellm.Start(ProviderKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	p, err := llm.NewProxy(llm.ProxyConfig{ProviderURL: fake.URL(), ProviderAPIKey: ProviderKey},
		llm.ProxyDeps{Store: store, Handlers: h, Logger: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("new proxy: %v", err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	if profile.Engines == nil {
		profile.Engines = []string{domain.EngineAI, domain.EngineAgent}
	}
	w := &World{Store: store, Handlers: h, Fake: fake, Proxy: p, ProxyURL: srv.URL + "/v1", t: t}
	w.ScanID, w.Token, w.Profile = w.scan(profile)
	return w
}

func (w *World) scan(profile domain.ThreatProfile) (string, string, domain.ThreatProfile) {
	t := w.t
	t.Helper()
	ctx := commands.WithRequest(t.Context(), commands.Request{Actor: "alice"})
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("set up scan: %v", err)
		}
	}
	pr, err := w.Handlers.CreateProject.Handle(ctx, commands.CreateProject{Name: "p"})
	check(err)
	rr, err := w.Handlers.AddRepository.Handle(ctx, commands.AddRepository{ProjectID: pr.Project.ID, Name: "r", Source: domain.Source{Kind: domain.SourceArchive}})
	check(err)
	tp, err := w.Handlers.DefineThreatProfile.Handle(ctx, commands.DefineThreatProfile{RepositoryID: rr.Repository.ID, Profile: profile})
	check(err)
	_, err = w.Handlers.RecordSnapshotCaptured.Handle(ctx, commands.RecordSnapshotCaptured{RepositoryID: rr.Repository.ID,
		Capture: domain.Capture{Digest: "sha256:ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd", SizeBytes: 1, FileCount: 1}})
	check(err)
	sr, err := w.Handlers.RequestScan.Handle(ctx, commands.RequestScan{RepositoryID: rr.Repository.ID})
	check(err)
	lr, err := w.Handlers.ClaimScan.Handle(ctx, commands.ClaimScan{ScanID: sr.Scan.ID, WorkerID: "w"})
	check(err)
	token, err := llm.MintScanToken(ctx, w.Handlers, sr.Scan.ID, lr.Fence, time.Now().Add(time.Hour))
	check(err)
	_, err = w.Handlers.StartScan.Handle(ctx, commands.StartScan{ScanID: sr.Scan.ID, Fence: lr.Fence})
	check(err)
	return sr.Scan.ID, token, tp.Profile
}

// Scan folds the world's scan after flushing the proxy's usage.
func (w *World) Scan() *domain.Scan {
	w.t.Helper()
	if err := w.Proxy.Flush(w.t.Context()); err != nil {
		w.t.Fatalf("flush: %v", err)
	}
	s, _, err := w.Handlers.Streams.Scans.Load(w.t.Context(), w.ScanID)
	if err != nil {
		w.t.Fatalf("load scan: %v", err)
	}
	return s
}

// Events returns every event in the store.
func (w *World) Events() []eventstore.RecordedEvent {
	w.t.Helper()
	evs, _, err := w.Store.ReadAll(w.t.Context(), eventstore.Query{Limit: 100_000})
	if err != nil {
		w.t.Fatal(err)
	}
	return evs
}
