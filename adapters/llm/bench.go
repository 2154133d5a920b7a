package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore/sqlite"
	"github.com/vega-sec/vega/internal/fakellm"
)

// benchBody is the chat request of BenchProxyOverhead: a short prompt, as
// the overhead is per request, not per byte.
const benchBody = `{"model":"gpt-4o-mini","max_tokens":64,"messages":[{"role":"system","content":"You are a security auditor."},{"role":"user","content":"Audit this line: eval(input())"}]}`

// BenchProxyOverhead measures what the proxy adds to one chat-completions
// call. It starts a fake provider and a proxy on loopback over an embedded
// SQLite store in a temporary directory (removed at the end), with one
// running scan and its token, then times n calls through the proxy and n
// direct calls to the fake provider, interleaved so that both see the same
// machine load. It returns the p50 and p99 of each; the overhead is the
// difference (target: at most 5 ms at p99).
func BenchProxyOverhead(ctx context.Context, n int) (p50, p99, directP50, directP99 time.Duration, err error) {
	if n < 1 {
		return 0, 0, 0, 0, errors.New("bench proxy overhead: n must be at least 1")
	}
	dir, err := os.MkdirTemp("", "vega-llm-bench-")
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bench proxy overhead: %w", err)
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "vega.db"))
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bench proxy overhead: %w", err)
	}
	defer store.Close()
	h, err := commands.New(store, commands.Options{LeaseDuration: time.Hour})
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bench proxy overhead: %w", err)
	}
	const key = "sk-bench-provider-key"
	fake, err := fakellm.Start(key)
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bench proxy overhead: %w", err)
	}
	defer fake.Close()
	p, err := NewProxy(ProxyConfig{ProviderURL: fake.URL(), ProviderAPIKey: key,
		DefaultBudget: domain.LLMBudget{MaxTokens: 1 << 40, MaxCostUSD: 1e9, MaxRequests: 1 << 40, MaxConcurrent: 64}},
		ProxyDeps{Store: store, Handlers: h})
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bench proxy overhead: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = p.Run(runCtx) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bench proxy overhead: %w", err)
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	token, err := benchScan(ctx, h)
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bench proxy overhead: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	call := func(url, auth string) (time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(benchBody)))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+auth)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return d, err
	}
	proxyURL := "http://" + ln.Addr().String() + "/v1/chat/completions"
	directURL := fake.URL() + "/chat/completions"
	// Warm both paths: connections, the scan's fold, the first flush.
	for range 10 {
		if _, err := call(proxyURL, token); err != nil {
			return 0, 0, 0, 0, fmt.Errorf("bench proxy overhead: warm-up: %w", err)
		}
		if _, err := call(directURL, key); err != nil {
			return 0, 0, 0, 0, fmt.Errorf("bench proxy overhead: warm-up: %w", err)
		}
	}
	viaProxy, direct := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	for range n {
		d, err := call(proxyURL, token)
		if err != nil {
			return 0, 0, 0, 0, fmt.Errorf("bench proxy overhead: via proxy: %w", err)
		}
		viaProxy = append(viaProxy, d)
		if d, err = call(directURL, key); err != nil {
			return 0, 0, 0, 0, fmt.Errorf("bench proxy overhead: direct: %w", err)
		}
		direct = append(direct, d)
	}
	p50, p99 = percentiles(viaProxy)
	directP50, directP99 = percentiles(direct)
	return p50, p99, directP50, directP99, nil
}

// benchScan creates a running scan and mints its token.
func benchScan(ctx context.Context, h *commands.Handlers) (string, error) {
	ctx = commands.WithRequest(ctx, commands.Request{Actor: "system:bench"})
	pr, err := h.CreateProject.Handle(ctx, commands.CreateProject{Name: "bench"})
	if err != nil {
		return "", err
	}
	rr, err := h.AddRepository.Handle(ctx, commands.AddRepository{ProjectID: pr.Project.ID, Name: "bench",
		Source: domain.Source{Kind: domain.SourceArchive}})
	if err != nil {
		return "", err
	}
	digest := "sha256:" + fmt.Sprintf("%064x", 1)
	if _, err := h.RecordSnapshotCaptured.Handle(ctx, commands.RecordSnapshotCaptured{RepositoryID: rr.Repository.ID,
		Capture: domain.Capture{Digest: digest, SizeBytes: 1, FileCount: 1}}); err != nil {
		return "", err
	}
	sr, err := h.RequestScan.Handle(ctx, commands.RequestScan{RepositoryID: rr.Repository.ID})
	if err != nil {
		return "", err
	}
	lr, err := h.ClaimScan.Handle(ctx, commands.ClaimScan{ScanID: sr.Scan.ID, WorkerID: "bench"})
	if err != nil {
		return "", err
	}
	token, err := MintScanToken(ctx, h, sr.Scan.ID, lr.Fence, time.Now().Add(time.Hour))
	if err != nil {
		return "", err
	}
	if _, err := h.StartScan.Handle(ctx, commands.StartScan{ScanID: sr.Scan.ID, Fence: lr.Fence}); err != nil {
		return "", err
	}
	return token, nil
}

// percentiles returns the p50 and p99 of ds (sorted in place).
func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.5) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return at(0.50), at(0.99)
}
