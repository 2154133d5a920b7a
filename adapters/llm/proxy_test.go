package llm_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vega-sec/vega/adapters/llm"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/internal/fakellm"
)

func TestChatNonStreamingReconcilesUsage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scanID, token := w.scan(domain.LLMBudget{})
	w.fake.Always(fakellm.Reply{Content: "hello there", PromptTokens: 100, CompletionTokens: 20})

	r := w.post(token, chatBody("hi", nil), map[string]string{"X-Client-Trace": "abc"})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "hello there") {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	got := w.fake.Received()
	if len(got) != 1 {
		t.Fatalf("provider got %d requests, want 1", len(got))
	}
	if a := got[0].Header.Get("Authorization"); a != "Bearer "+providerKey {
		t.Errorf("provider saw Authorization %q, want the operator's key", a)
	}
	if got[0].Header.Get("X-Client-Trace") != "" {
		t.Error("a client header reached the provider")
	}
	if n := got[0].MaxTokens(); n != llm.DefaultMaxOutputTokens {
		t.Errorf("max_tokens sent = %d, want the default %d", n, llm.DefaultMaxOutputTokens)
	}
	w.flush()
	s := w.load(scanID)
	price, _ := llm.DefaultPrices().Lookup(model)
	want := domain.LLMUsage{InputTokens: 100, OutputTokens: 20, CostUSD: price.Cost(100, 20), Requests: 1}
	if s.LLMUsage != want {
		t.Fatalf("usage = %+v, want %+v", s.LLMUsage, want)
	}
}

func TestChatStreaming(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		clientUsage bool
	}{{"client did not ask for usage", false}, {"client asked for usage", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			scanID, token := w.scan(domain.LLMBudget{})
			w.fake.Always(fakellm.Reply{Content: "a streamed answer in chunks", Chunks: 4, PromptTokens: 50, CompletionTokens: 7})
			extra := map[string]any{"stream": true, "max_tokens": 300}
			if tc.clientUsage {
				extra["stream_options"] = map[string]any{"include_usage": true}
			}
			r := w.post(token, chatBody("stream please", extra), nil)
			if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("status %d type %q body %s", r.status, r.header.Get("Content-Type"), r.body)
			}
			content, usage, done := sseContent(t, r.body)
			if content != "a streamed answer in chunks" || !done {
				t.Fatalf("content %q done %v", content, done)
			}
			if usage != tc.clientUsage {
				t.Errorf("usage chunk relayed = %v, want %v", usage, tc.clientUsage)
			}
			sent := w.fake.Received()[0].Chat
			opts, _ := sent["stream_options"].(map[string]any)
			if opts["include_usage"] != true {
				t.Errorf("provider saw stream_options %v, want include_usage forced", sent["stream_options"])
			}
			if n := w.fake.Received()[0].MaxTokens(); n != 300 {
				t.Errorf("max_tokens sent = %d, want 300", n)
			}
			w.flush()
			if u := w.load(scanID).LLMUsage; u.InputTokens != 50 || u.OutputTokens != 7 || u.Requests != 1 {
				t.Fatalf("usage = %+v, want 50 in, 7 out, 1 request", u)
			}
		})
	}
}

func TestClientCancelSettlesAtInputCost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply fakellm.Reply
		extra map[string]any
	}{
		{"slow answer", fakellm.Reply{Delay: time.Minute}, nil},
		{"stream cut mid-way", fakellm.Reply{Content: strings.Repeat("x", 40), Chunks: 8, ChunkDelay: time.Minute}, map[string]any{"stream": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			scanID, token := w.scan(domain.LLMBudget{})
			w.fake.Always(tc.reply)
			body := chatBody("a question that will be abandoned", tc.extra)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				_, err := w.send(ctx, token, body, nil)
				done <- err
			}()
			select {
			case <-w.fake.Arrivals():
			case <-time.After(10 * time.Second):
				t.Fatal("the provider never got the request")
			}
			cancel()
			if err := <-done; err == nil {
				t.Fatal("cancelled request succeeded")
			}
			s := w.waitUsage(scanID, 1)
			wantIn := estimate(t, body)
			if tc.extra["stream"] == true { // the proxy adds stream_options before estimating; messages are what count
				wantIn = estimate(t, body)
			}
			price, _ := llm.DefaultPrices().Lookup(model)
			if want := (domain.LLMUsage{InputTokens: wantIn, CostUSD: price.Cost(wantIn, 0), Requests: 1}); s.LLMUsage != want {
				t.Fatalf("usage = %+v, want the input cost %+v", s.LLMUsage, want)
			}
		})
	}
}

func TestUpstreamFailures(t *testing.T) {
	t.Parallel()
	const detail = "pg at 10.9.8.7 exploded, trace id 77"
	for _, tc := range []struct {
		name   string
		reply  fakellm.Reply
		status int
		code   string
	}{
		{"500", fakellm.Reply{Status: 500, Body: `{"error":{"message":"` + detail + `"}}`}, http.StatusBadGateway, llm.CodeUpstreamError},
		{"503", fakellm.Reply{Status: 503, Body: detail}, http.StatusBadGateway, llm.CodeUpstreamError},
		{"429", fakellm.Reply{Status: 429, Body: detail}, http.StatusServiceUnavailable, llm.CodeUpstreamRateLimited},
		{"400", fakellm.Reply{Status: 400, Body: detail}, http.StatusBadRequest, llm.CodeUpstreamRejected},
		{"malformed JSON", fakellm.Reply{Body: `{"choices": [ ` + detail}, http.StatusBadGateway, llm.CodeBadUpstreamResponse},
		{"not a completion", fakellm.Reply{Body: `{"detail": "` + detail + `"}`}, http.StatusBadGateway, llm.CodeBadUpstreamResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			scanID, token := w.scan(domain.LLMBudget{})
			w.fake.Always(tc.reply)
			r := w.post(token, chatBody("hi", nil), nil)
			wantCode(t, r, tc.status, tc.code)
			if strings.Contains(string(r.body), "10.9.8.7") || strings.Contains(w.logs.String(), "10.9.8.7") {
				t.Fatalf("upstream details leaked: %s", r.body)
			}
			if s := w.waitUsage(scanID, 1); s.LLMUsage.Requests != 1 {
				t.Fatalf("usage = %+v, want the call counted", s.LLMUsage)
			}
		})
	}
}

func TestRequestValidation(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *llm.ProxyConfig) { c.Prices = llm.Prices{model: {Input: 1, Output: 1}} })
	_, token := w.scan(domain.LLMBudget{})
	for _, tc := range []struct {
		name  string
		body  any
		code  string
		param string
	}{
		{"not JSON", []byte("{nope"), llm.CodeInvalidRequest, ""},
		{"array", []byte("[]"), llm.CodeInvalidRequest, ""},
		{"no model", map[string]any{"messages": []any{map[string]any{"role": "user", "content": "x"}}}, llm.CodeInvalidRequest, "model"},
		{"no messages", map[string]any{"model": model}, llm.CodeInvalidRequest, "messages"},
		{"n > 1", chatBody("x", map[string]any{"n": 3}), llm.CodeInvalidRequest, "n"},
		{"bad max_tokens", chatBody("x", map[string]any{"max_tokens": -5}), llm.CodeInvalidRequest, "max_tokens"},
		{"stream not bool", chatBody("x", map[string]any{"stream": "yes"}), llm.CodeInvalidRequest, "stream"},
		{"unpriced model", map[string]any{"model": "mystery-1", "messages": []any{map[string]any{"role": "user", "content": "x"}}}, llm.CodeModelNotAllowed, "model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := wantCode(t, w.post(token, tc.body, nil), http.StatusBadRequest, tc.code)
			if e.Param != tc.param {
				t.Fatalf("param = %q, want %q", e.Param, tc.param)
			}
		})
	}
	if n := len(w.fake.Received()); n != 0 {
		t.Fatalf("provider got %d invalid requests", n)
	}
}

func TestUpstreamOverrideRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, token := w.scan(domain.LLMBudget{})
	for _, tc := range []struct {
		name   string
		extra  map[string]any
		header map[string]string
	}{
		{"base_url", map[string]any{"base_url": "http://evil.example"}, nil},
		{"api_base", map[string]any{"api_base": "http://evil.example"}, nil},
		{"api_key", map[string]any{"api_key": "sk-mine"}, nil},
		{"provider", map[string]any{"provider": "evil"}, nil},
		{"extra_headers", map[string]any{"extra_headers": map[string]any{"X-Upstream": "http://evil"}}, nil},
		{"Authorization field", map[string]any{"Authorization": "Bearer x"}, nil},
		{"upstream_url", map[string]any{"upstream_url": "http://evil"}, nil},
		{"X-Upstream header", nil, map[string]string{"X-Upstream": "http://evil.example"}},
		{"X-Provider-Url header", nil, map[string]string{"X-Provider-Url": "http://evil.example"}},
		{"X-Api-Key header", nil, map[string]string{"X-Api-Key": "sk-mine"}},
		{"OpenAI-Organization header", nil, map[string]string{"OpenAI-Organization": "org-x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, w.post(token, chatBody("x", tc.extra), tc.header), http.StatusBadRequest, llm.CodeUpstreamOverride)
		})
	}
	if n := len(w.fake.Received()); n != 0 {
		t.Fatalf("provider got %d requests that tried to steer it", n)
	}
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scanA, tokenA := w.scan(domain.LLMBudget{})
	scanB, tokenB := w.scan(domain.LLMBudget{})
	secretA := tokenA[strings.LastIndexByte(tokenA, '.')+1:]
	ok := func(token string) {
		t.Helper()
		if r := w.post(token, chatBody("x", nil), nil); r.status != http.StatusOK {
			t.Fatalf("valid token: status %d %s", r.status, r.body)
		}
	}
	deny := func(name, token string) {
		t.Helper()
		r := w.post(token, chatBody("x", nil), nil)
		wantCode(t, r, http.StatusUnauthorized, llm.CodeInvalidToken)
		if strings.Contains(string(r.body), scanA) || strings.Contains(string(r.body), scanB) {
			t.Errorf("%s: 401 names a scan", name)
		}
	}
	ok(tokenA)
	ok(tokenB)
	deny("no token", "")
	deny("garbage", "sk-something")
	deny("another scan's secret", llm.TokenPrefix+scanB+"."+secretA)
	deny("tampered secret", tokenA[:len(tokenA)-2]+"xx")
	deny("unknown scan", llm.TokenPrefix+"01JUNKNOWNSCAN0000000000000."+secretA)
	if _, err := llm.NewMinter(w.h, w.clock.Now).Mint(w.ctx, scanA, 99, w.clock.Now().Add(time.Hour)); err == nil {
		t.Fatal("minted a token with a stale fence")
	}

	// Revoked: the scan ends; the proxy notices within its cache TTL.
	s := w.load(scanB)
	must[commands.ScanResult](t)(w.h.CompleteScan.Handle(w.ctx, commands.CompleteScan{ScanID: scanB, Fence: s.Fence}))
	w.clock.Advance(llm.DefaultAuthCacheTTL + time.Second)
	deny("revoked (scan completed)", tokenB)
	ok(tokenA)

	// Expired: the token outlives nothing, even a running scan.
	w.clock.Advance(time.Hour)
	deny("expired", tokenA)
}

func TestModels(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, token := w.scan(domain.LLMBudget{})
	get := func(token string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, w.srv.URL+"/v1/models", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := w.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get(token); st != http.StatusOK || !strings.Contains(body, "gpt-4o-mini") {
		t.Fatalf("models: %d %s", st, body)
	}
	if st, _ := get(""); st != http.StatusUnauthorized {
		t.Fatalf("models without token: %d", st)
	}
}

func TestNoProviderConfigured(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *llm.ProxyConfig) { c.ProviderURL, c.ProviderAPIKey = "", "" })
	_, token := w.scan(domain.LLMBudget{})
	wantCode(t, w.post(token, chatBody("x", nil), nil), http.StatusServiceUnavailable, llm.CodeProviderUnavailable)
}

func TestBudgetLimits(t *testing.T) {
	t.Parallel()
	t.Run("max_requests", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		scanID, token := w.scan(domain.LLMBudget{MaxRequests: 2})
		for range 2 {
			if r := w.post(token, chatBody("x", nil), nil); r.status != http.StatusOK {
				t.Fatalf("within budget: %d %s", r.status, r.body)
			}
		}
		for range 3 {
			e := wantCode(t, w.post(token, chatBody("x", nil), nil), http.StatusTooManyRequests, llm.CodeBudgetExceeded)
			if e.Limit != llm.LimitRequests {
				t.Fatalf("limit = %q", e.Limit)
			}
		}
		w.flush()
		if n := w.count(scanID, "ScanBudgetExceeded"); n != 1 {
			t.Fatalf("ScanBudgetExceeded recorded %d times, want once", n)
		}
		if n := len(w.fake.Received()); n != 2 {
			t.Fatalf("provider got %d requests, want 2", n)
		}
	})
	t.Run("max_tokens clamps then refuses", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		scanID, token := w.scan(domain.LLMBudget{MaxTokens: 1000})
		w.fake.Always(fakellm.Reply{UseMaxTokens: true})
		body := chatBody("count the tokens", map[string]any{"max_tokens": 5000})
		if r := w.post(token, body, nil); r.status != http.StatusOK {
			t.Fatalf("first: %d %s", r.status, r.body)
		}
		sent := w.fake.Received()[0]
		if want := 1000 - int(estimate(t, body)); sent.MaxTokens() != want {
			t.Fatalf("max_tokens sent = %d, want clamped to %d", sent.MaxTokens(), want)
		}
		e := wantCode(t, w.post(token, body, nil), http.StatusTooManyRequests, llm.CodeBudgetExceeded)
		if e.Limit != llm.LimitTokens {
			t.Fatalf("limit = %q", e.Limit)
		}
		w.flush()
		s := w.load(scanID)
		if tot := s.LLMUsage.InputTokens + s.LLMUsage.OutputTokens; tot > 1000 || !s.BudgetExceeded || s.BudgetLimit != llm.LimitTokens {
			t.Fatalf("usage %+v exceeded %v %q", s.LLMUsage, s.BudgetExceeded, s.BudgetLimit)
		}
		if n := w.count(scanID, "ScanBudgetExceeded"); n != 1 {
			t.Fatalf("ScanBudgetExceeded recorded %d times", n)
		}
	})
	t.Run("max_cost_usd", func(t *testing.T) {
		t.Parallel()
		// 0.01 dollars a token: one dollar buys 100 tokens.
		w := newWorld(t, func(c *llm.ProxyConfig) { c.Prices = llm.Prices{model: {Input: 10_000, Output: 10_000}} })
		scanID, token := w.scan(domain.LLMBudget{MaxCostUSD: 1})
		w.fake.Always(fakellm.Reply{UseMaxTokens: true})
		if r := w.post(token, chatBody("hi", nil), nil); r.status != http.StatusOK {
			t.Fatalf("first: %d %s", r.status, r.body)
		}
		e := wantCode(t, w.post(token, chatBody("hi", nil), nil), http.StatusTooManyRequests, llm.CodeBudgetExceeded)
		if e.Limit != llm.LimitCost {
			t.Fatalf("limit = %q", e.Limit)
		}
		w.flush()
		if s := w.load(scanID); s.LLMUsage.CostUSD > 1+1e-9 || !s.BudgetExceeded {
			t.Fatalf("usage %+v exceeded %v", s.LLMUsage, s.BudgetExceeded)
		}
	})
	t.Run("max_concurrent", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		scanID, token := w.scan(domain.LLMBudget{MaxConcurrent: 2})
		w.fake.Always(fakellm.Reply{Delay: time.Minute})
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { _, _ = w.send(ctx, token, chatBody("slow", nil), nil) })
		}
		for range 2 {
			select {
			case <-w.fake.Arrivals():
			case <-time.After(10 * time.Second):
				t.Fatal("requests never reached the provider")
			}
		}
		r := w.post(token, chatBody("third", nil), nil)
		e := wantCode(t, r, http.StatusTooManyRequests, llm.CodeConcurrencyLimit)
		if e.Limit != llm.LimitConcurrent || r.header.Get("Retry-After") == "" {
			t.Fatalf("limit %q retry-after %q", e.Limit, r.header.Get("Retry-After"))
		}
		cancel()
		wg.Wait()
		w.waitUsage(scanID, 2)
		if n := w.count(scanID, "ScanBudgetExceeded"); n != 0 {
			t.Fatalf("concurrency refusal recorded as budget exceeded")
		}
	})
}

func TestParallelRequestsNeverOvershoot(t *testing.T) {
	t.Parallel()
	const parallel = 20
	for _, tc := range []struct {
		name   string
		budget domain.LLMBudget
		prices llm.Prices
		spent  domain.LLMUsage
		check  func(u domain.LLMUsage) bool
	}{
		{"max_tokens", domain.LLMBudget{MaxTokens: 2000, MaxConcurrent: parallel}, nil,
			domain.LLMUsage{InputTokens: 1700, Requests: 1},
			func(u domain.LLMUsage) bool { return u.InputTokens+u.OutputTokens <= 2000 }},
		{"max_cost_usd", domain.LLMBudget{MaxCostUSD: 2, MaxConcurrent: parallel}, llm.Prices{model: {Input: 1000, Output: 1000}},
			domain.LLMUsage{InputTokens: 1700, CostUSD: 1.7, Requests: 1},
			func(u domain.LLMUsage) bool { return u.CostUSD <= 2+1e-9 }},
		{"max_requests", domain.LLMBudget{MaxRequests: 6, MaxConcurrent: parallel}, nil,
			domain.LLMUsage{InputTokens: 10, Requests: 1},
			func(u domain.LLMUsage) bool { return u.Requests <= 6 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, func(c *llm.ProxyConfig) {
				if tc.prices != nil {
					c.Prices = tc.prices
				}
			})
			scanID, token := w.scan(tc.budget)
			must[commands.ScanResult](t)(w.h.RecordLLMUsage.Handle(w.ctx, commands.RecordLLMUsage{ScanID: scanID, Model: model, Usage: tc.spent}))
			w.fake.Always(fakellm.Reply{UseMaxTokens: true, Delay: 20 * time.Millisecond})
			var wg sync.WaitGroup
			var mu sync.Mutex
			codes := map[string]int{}
			for i := range parallel {
				wg.Go(func() {
					r, err := w.send(t.Context(), token, chatBody(strings.Repeat("q", 40+i), map[string]any{"max_tokens": 100}), nil)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err != nil:
						codes["error"]++
					case r.status == http.StatusOK:
						codes["ok"]++
					default:
						var e struct {
							Error llm.APIError `json:"error"`
						}
						_ = json.Unmarshal(r.body, &e)
						codes[e.Error.Code]++
					}
				})
			}
			wg.Wait()
			if codes["ok"] == 0 || codes["ok"] == parallel || codes["error"] > 0 {
				t.Fatalf("outcomes %v: want some accepted and some refused", codes)
			}
			w.flush()
			s := w.load(scanID)
			if !tc.check(s.LLMUsage) {
				t.Fatalf("budget %+v overshot: usage %+v (outcomes %v)", tc.budget, s.LLMUsage, codes)
			}
			if int64(codes["ok"])+tc.spent.Requests != s.LLMUsage.Requests {
				t.Fatalf("recorded %d requests, want %d", s.LLMUsage.Requests, int64(codes["ok"])+tc.spent.Requests)
			}
			if math.IsNaN(s.LLMUsage.CostUSD) {
				t.Fatal("cost is NaN")
			}
		})
	}
}
