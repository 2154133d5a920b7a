package llm_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vega-sec/vega/adapters/llm"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/internal/fakellm"
)

func TestProviderKeyNeverLeaks(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scanID, token := w.scan(domain.LLMBudget{MaxRequests: 12})
	var replies []reply
	keep := func(r reply) { replies = append(replies, r) }

	// A second proxy whose key the provider refuses: the provider's 401
	// body echoes the key it was given, as real providers do.
	const wrongKey = "sk-planted-wrong-key-9d8e7f6a5b"
	wrong, err := llm.NewProxy(llm.ProxyConfig{ProviderURL: w.fake.URL(), ProviderAPIKey: wrongKey},
		llm.ProxyDeps{Store: w.store, Handlers: w.h, Clock: w.clock.Now, Metrics: prometheus.NewRegistry(),
			Logger: slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	wrongSrv := httptest.NewServer(wrong.Handler())
	t.Cleanup(wrongSrv.Close)

	w.fake.Sequence(
		fakellm.Reply{Content: "fine"},
		fakellm.Reply{Content: "streamed", Chunks: 2},
		fakellm.Reply{Status: 500, Body: `{"error": "upstream saw key ` + providerKey + `"}`},
		fakellm.Reply{Status: 400, Body: `{"error": "bad request for key ` + providerKey + `"}`},
		fakellm.Reply{Body: `{"broken": "` + providerKey},
		fakellm.Reply{Content: "fine again"},
	)
	keep(w.post(token, chatBody("one", nil), nil))
	keep(w.post(token, chatBody("two", map[string]any{"stream": true}), nil))
	keep(w.post(token, chatBody("three", nil), nil))
	keep(w.post(token, chatBody("four", nil), nil))
	keep(w.post(token, chatBody("five", nil), nil))
	keep(w.post(token, chatBody("override", map[string]any{"api_key": "x"}), nil))
	keep(w.post("vega-scan.bogus", chatBody("unauthenticated", nil), nil))

	// Through the misconfigured proxy.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, wrongSrv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := wrongSrv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	keep(reply{status: resp.StatusCode, header: resp.Header, body: data})
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("refused key: status %d, want 502", resp.StatusCode)
	}
	// The provider did echo it: the test plants what it looks for.
	if got := w.fake.Received(); !strings.Contains(got[len(got)-1].Header.Get("Authorization"), wrongKey) {
		t.Fatal("the misconfigured proxy did not reach the provider")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := wrong.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w.flush()
	if s := w.load(scanID); s.LLMUsage.Requests < 6 {
		t.Fatalf("usage %+v: calls were not recorded", s.LLMUsage)
	}

	secrets := []string{providerKey, wrongKey, "planted"}
	check := func(where, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contains %q", where, s)
			}
		}
	}
	for i, r := range replies {
		check(fmt.Sprintf("response body %d", i), string(r.body))
		for k, vs := range r.header {
			check("response header "+k, strings.Join(vs, " "))
		}
	}
	check("logs", w.logs.String())
	if !strings.Contains(w.logs.String(), "llm proxy request") {
		t.Fatal("no request was logged: the log check proves nothing")
	}
	events, _, err := w.store.ReadAll(t.Context(), eventstore.Query{Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 {
		t.Fatal("no events")
	}
	for _, e := range events {
		check("event "+e.Type+" data", string(e.Data))
		check("event "+e.Type+" metadata", e.Metadata.Actor+e.Metadata.CausationID+e.Metadata.CorrelationID)
		if strings.Contains(string(e.Data), token) {
			t.Errorf("event %s holds the scan token itself", e.Type)
		}
	}
}
