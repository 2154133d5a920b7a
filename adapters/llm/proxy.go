package llm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
)

// Defaults of ProxyConfig.
const (
	// DefaultUpstreamTimeout bounds one call to the provider, stream
	// included.
	DefaultUpstreamTimeout = 10 * time.Minute
	// DefaultMaxRequestBytes is the largest chat-completions body accepted.
	DefaultMaxRequestBytes = 8 << 20
	// MaxResponseBytes is the largest non-streamed provider answer relayed.
	MaxResponseBytes = 32 << 20
	// MaxSSELineBytes is the longest line of a streamed answer relayed.
	MaxSSELineBytes = 4 << 20
)

// ProxyConfig is the operator's configuration of the proxy. The upstream is
// set here only; no request can choose or override it.
type ProxyConfig struct {
	// ProviderURL is the provider's OpenAI-compatible base URL, such as
	// https://api.openai.com/v1 (VEGA_LLM_PROVIDER_URL). Empty: the proxy
	// runs but answers chat completions with 503 provider_unavailable, so
	// the ai engine reports itself unavailable.
	ProviderURL string
	// ProviderAPIKey is the provider's key (VEGA_LLM_PROVIDER_API_KEY). It
	// is sent upstream only, never logged, returned or recorded.
	ProviderAPIKey string
	// Prices is the price table (VEGA_LLM_PRICES; nil: DefaultPrices()).
	Prices Prices
	// DefaultBudget fills the limits a threat profile leaves at zero (zero
	// value: DefaultBudget()).
	DefaultBudget domain.LLMBudget
	// AuthCacheTTL is how long a folded scan is trusted (0:
	// DefaultAuthCacheTTL); it bounds how late a scan's end revokes its
	// tokens.
	AuthCacheTTL time.Duration
	// UpstreamTimeout bounds one provider call (0: DefaultUpstreamTimeout).
	UpstreamTimeout time.Duration
	// MaxRequestBytes caps a request body (0: DefaultMaxRequestBytes).
	MaxRequestBytes int64
}

// Validate checks the configuration. Its errors never contain the key.
func (c ProxyConfig) Validate() error {
	if c.ProviderURL != "" {
		if _, err := validateProviderURL(c.ProviderURL); err != nil {
			return fmt.Errorf("llm proxy config: %w", err)
		}
	}
	if c.Prices != nil {
		if err := c.Prices.Validate(); err != nil {
			return fmt.Errorf("llm proxy config: %w", err)
		}
	}
	if err := c.DefaultBudget.Validate(); err != nil {
		return fmt.Errorf("llm proxy config: default budget: %w", err)
	}
	if c.AuthCacheTTL < 0 || c.UpstreamTimeout < 0 || c.MaxRequestBytes < 0 {
		return errors.New("llm proxy config: durations and sizes must not be negative")
	}
	return nil
}

// ProxyDeps are the proxy's collaborators.
type ProxyDeps struct {
	// Store holds the scan streams the proxy folds to authenticate tokens and
	// to start each scan's budget (every eventstore.Store is one).
	Store commands.Store
	// Handlers records usage (RecordLLMUsage) and exhaustion (ExceedBudget).
	Handlers *commands.Handlers
	// Clock gives the time for token expiry and cache ages (nil: time.Now).
	Clock func() time.Time
	// Logger receives one line per request, never a key or token (nil:
	// discard).
	Logger *slog.Logger
	// Metrics registers the proxy's series (nil: none).
	Metrics prometheus.Registerer
	// HTTPClient calls the provider (nil: a client with connection
	// timeouts; the per-call bound is UpstreamTimeout).
	HTTPClient *http.Client
}

// Proxy is Vega's LLM proxy: an OpenAI-compatible endpoint that
// authenticates runners with per-scan tokens, enforces each scan's budget,
// forwards to the operator's provider with the operator's key, and records
// usage on the scan's stream. It is safe for concurrent use. Run must be
// running for usage to be flushed on time (Flush forces it).
type Proxy struct {
	cfg    ProxyConfig
	up     *upstream // nil: no provider configured
	prices Prices
	scans  *scanCache
	rec    *usageRecorder
	exceed commands.Handler[commands.ExceedBudget, commands.ScanResult]
	log    *slog.Logger
	clock  func() time.Time
	m      *metrics
	mux    *http.ServeMux
}

// NewProxy returns a proxy. It fails on an invalid configuration, missing
// Store or Handlers, or metrics that cannot be registered.
func NewProxy(cfg ProxyConfig, deps ProxyDeps) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Handlers == nil {
		return nil, errors.New("new llm proxy: store and handlers are required")
	}
	if cfg.Prices == nil {
		cfg.Prices = DefaultPrices()
	}
	if cfg.DefaultBudget == (domain.LLMBudget{}) {
		cfg.DefaultBudget = DefaultBudget()
	}
	if cfg.AuthCacheTTL == 0 {
		cfg.AuthCacheTTL = DefaultAuthCacheTTL
	}
	if cfg.UpstreamTimeout == 0 {
		cfg.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:                 nil, // the upstream is the operator's URL, never an environment's proxy
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: cfg.UpstreamTimeout,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}}
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	codec, err := commands.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("new llm proxy: %w", err)
	}
	repo := commands.NewRepository(deps.Store, codec, func() string { return "" }, commands.CategoryScan, "scan_id", domain.FoldScan)
	p := &Proxy{
		cfg: cfg, prices: cfg.Prices, log: deps.Logger, clock: deps.Clock, m: m,
		scans:  &scanCache{repo: repo, ttl: cfg.AuthCacheTTL, clock: deps.Clock, budget: cfg.DefaultBudget, m: map[string]*scanEntry{}},
		rec:    newUsageRecorder(deps.Handlers.RecordLLMUsage, deps.Logger),
		exceed: deps.Handlers.ExceedBudget,
	}
	if cfg.ProviderURL != "" {
		u, _ := validateProviderURL(cfg.ProviderURL)
		p.up = newUpstream(u, cfg.ProviderAPIKey, deps.HTTPClient)
	}
	p.mux = http.NewServeMux()
	p.mux.HandleFunc("POST /v1/chat/completions", p.chat)
	p.mux.HandleFunc("GET /v1/models", p.models)
	p.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, APIError{Code: "not_found", Message: "the proxy serves POST /v1/chat/completions and GET /v1/models"}, 0)
	})
	return p, nil
}

// Handler returns the proxy's HTTP handler.
func (p *Proxy) Handler() http.Handler { return p.mux }

// Run flushes batched usage (every FlushEveryCalls calls or FlushInterval)
// and forgets idle scans until ctx ends, then flushes what is left
// (bounded) and returns nil.
func (p *Proxy) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { p.rec.run(ctx) })
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			p.scans.evict()
		}
	}
}

// Flush records every pending usage batch now and returns the first error.
func (p *Proxy) Flush(ctx context.Context) error { return p.rec.flush(ctx, "") }

// authenticate checks the bearer token and returns its scan and ledger,
// or writes a 401 (503 when the store fails) and returns false.
func (p *Proxy) authenticate(w http.ResponseWriter, r *http.Request) (*domain.Scan, *ledger, bool) {
	deny := func() (*domain.Scan, *ledger, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vega-llm-proxy"`)
		writeError(w, http.StatusUnauthorized, APIError{Code: CodeInvalidToken,
			Message: "missing, invalid, expired or revoked scan token"}, 0)
		return nil, nil, false
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return deny()
	}
	scanID, ok := ParseScanToken(strings.TrimSpace(token))
	if !ok {
		return deny()
	}
	s, l, err := p.scans.get(r.Context(), scanID)
	switch {
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, domain.ErrInvalidArgument):
		return deny()
	case err != nil:
		p.log.Error("llm proxy: load scan", "scan_id", scanID, "error", err)
		writeError(w, http.StatusServiceUnavailable, APIError{Code: CodeInternal, Message: "the scan could not be read; retry later"}, 1)
		return nil, nil, false
	}
	if !s.CredentialValid(domain.HashToken(strings.TrimSpace(token)), p.clock()) {
		return deny()
	}
	return s, l, true
}

// models relays GET /v1/models.
func (p *Proxy) models(w http.ResponseWriter, r *http.Request) {
	if name, bad := overrideHeader(r.Header); bad {
		writeError(w, http.StatusBadRequest, APIError{Code: CodeUpstreamOverride, Param: name,
			Message: "header " + name + " is not allowed: the upstream is set by the operator"}, 0)
		return
	}
	s, _, ok := p.authenticate(w, r)
	if !ok {
		return
	}
	if p.up == nil {
		writeError(w, http.StatusServiceUnavailable, APIError{Code: CodeProviderUnavailable, Message: "no LLM provider is configured"}, 0)
		return
	}
	resp, err := p.up.do(r.Context(), http.MethodGet, p.up.modelsURL, nil)
	if err != nil {
		if r.Context().Err() == nil {
			p.log.Warn("llm proxy: models", "scan_id", s.ID, "error", err)
			writeError(w, http.StatusBadGateway, APIError{Code: CodeUpstreamError, Message: "the LLM provider could not be reached"}, 0)
		}
		return
	}
	defer resp.Body.Close()
	data, err := readLimited(resp.Body, MaxResponseBytes)
	if err != nil || resp.StatusCode/100 != 2 || !jsonObject(data) {
		p.log.Warn("llm proxy: models: bad upstream answer", "scan_id", s.ID, "upstream_status", resp.StatusCode)
		writeError(w, http.StatusBadGateway, APIError{Code: CodeUpstreamError, Message: "the LLM provider failed"}, 0)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
