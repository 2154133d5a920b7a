package llm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
)

// Words that, in a request header name (lower case), mark an attempt to
// choose or authenticate to the upstream.
var overrideHeaderWords = []string{"upstream", "provider", "base-url", "api-base", "api-key", "apikey",
	"endpoint", "target-url", "forwarded-host", "original-url", "rewrite-url", "openai-organization", "openai-project"}

// Body fields (lower case, '-' as '_') that try to choose or authenticate
// to the upstream, and words that mark one.
var (
	overrideFields = map[string]bool{"base_url": true, "api_base": true, "api_key": true, "provider": true,
		"extra_headers": true, "extra_body": true, "extra_query": true, "headers": true, "authorization": true,
		"organization": true, "project": true, "api_type": true, "api_version": true, "deployment_id": true,
		"host": true, "url": true}
	overrideFieldWords = []string{"url", "api_key", "apikey", "header", "auth", "upstream", "endpoint", "provider", "base"}
)

// overrideHeader returns the first request header that tries to steer the
// upstream.
func overrideHeader(h http.Header) (string, bool) {
	for name := range h {
		l := strings.ToLower(name)
		for _, w := range overrideHeaderWords {
			if strings.Contains(l, w) {
				return name, true
			}
		}
	}
	return "", false
}

// overrideField returns the first top-level body field that tries to steer
// the upstream.
func overrideField(req map[string]json.RawMessage) (string, bool) {
	for name := range req {
		l := strings.ReplaceAll(strings.ToLower(name), "-", "_")
		if overrideFields[l] {
			return name, true
		}
		for _, w := range overrideFieldWords {
			if strings.Contains(l, w) {
				return name, true
			}
		}
	}
	return "", false
}

// EstimateInputTokens is the proxy's input estimate for a chat request: the
// bytes of its messages, tools and functions as JSON (keys and quotes
// included, so it over-counts) divided by CharsPerToken, rounded up, plus
// TokensPerRequest.
func EstimateInputTokens(req map[string]json.RawMessage) int64 {
	n := 0
	for _, k := range []string{"messages", "tools", "functions", "response_format"} {
		n += len(req[k])
	}
	return int64((n+CharsPerToken-1)/CharsPerToken) + TokensPerRequest
}

type usageJSON struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

func (u *usageJSON) valid() bool { return u != nil && u.PromptTokens >= 0 && u.CompletionTokens >= 0 }

// call is one forwarded chat request, for settling and logging.
type call struct {
	p       *Proxy
	scanID  string
	model   string
	res     *reservation
	start   time.Time
	settled bool
}

// settle records the call's usage (in, out tokens) with outcome.
func (c *call) settle(ctx context.Context, in, out int64, outcome string, status int) {
	if c.settled {
		return
	}
	c.settled = true
	u := c.res.settle(in, out)
	c.p.rec.add(c.scanID, c.model, u)
	d := c.p.clock().Sub(c.start)
	c.p.m.requests.WithLabelValues(outcome).Inc()
	c.p.m.duration.WithLabelValues(outcome).Observe(d.Seconds())
	c.p.m.tokens.WithLabelValues("input").Add(float64(u.InputTokens))
	c.p.m.tokens.WithLabelValues("output").Add(float64(u.OutputTokens))
	c.p.m.cost.Add(u.CostUSD)
	c.p.log.LogAttrs(ctx, slog.LevelInfo, "llm proxy request", slog.String("scan_id", c.scanID), slog.String("model", c.model),
		slog.String("outcome", outcome), slog.Int("status", status), slog.Int64("input_tokens", u.InputTokens),
		slog.Int64("output_tokens", u.OutputTokens), slog.Float64("cost_usd", u.CostUSD), slog.Duration("duration", d))
}

// settleInput settles at the input estimate: a client that went away.
func (c *call) settleInput(ctx context.Context) {
	c.settle(ctx, c.res.inTokens, 0, "client_cancelled", 499)
}

// settleReserved settles at the whole reservation: usage unknown.
func (c *call) settleReserved(ctx context.Context, outcome string, status int) {
	c.settle(ctx, c.res.inTokens, c.res.outTokens, outcome, status)
}

func (p *Proxy) badRequest(w http.ResponseWriter, code, param, msg string) {
	p.m.requests.WithLabelValues("refused").Inc()
	writeError(w, http.StatusBadRequest, APIError{Code: code, Param: param, Message: msg}, 0)
}

// chat serves POST /v1/chat/completions.
func (p *Proxy) chat(w http.ResponseWriter, r *http.Request) {
	start := p.clock()
	if name, bad := overrideHeader(r.Header); bad {
		p.badRequest(w, CodeUpstreamOverride, name, "header "+name+" is not allowed: the upstream is set by the operator")
		return
	}
	s, l, ok := p.authenticate(w, r)
	if !ok {
		return
	}
	if p.up == nil {
		writeError(w, http.StatusServiceUnavailable, APIError{Code: CodeProviderUnavailable,
			Message: "no LLM provider is configured (VEGA_LLM_PROVIDER_URL)"}, 0)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.cfg.MaxRequestBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, APIError{Code: CodeRequestTooLarge,
				Message: "request body larger than " + strconv.FormatInt(p.cfg.MaxRequestBytes, 10) + " bytes"}, 0)
			return
		}
		p.badRequest(w, CodeInvalidRequest, "", "the request body could not be read")
		return
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		p.badRequest(w, CodeInvalidRequest, "", "the body is not a JSON object")
		return
	}
	if name, bad := overrideField(req); bad {
		p.badRequest(w, CodeUpstreamOverride, name, "field "+name+" is not allowed: the upstream is set by the operator")
		return
	}
	var model string
	if json.Unmarshal(req["model"], &model) != nil || !validModel(model) {
		p.badRequest(w, CodeInvalidRequest, "model", "model must be a model name (1 to 200 printable characters)")
		return
	}
	var msgs []json.RawMessage
	if json.Unmarshal(req["messages"], &msgs) != nil || len(msgs) == 0 {
		p.badRequest(w, CodeInvalidRequest, "messages", "messages must be a non-empty array")
		return
	}
	if raw, ok := req["n"]; ok && string(raw) != "1" && string(raw) != "null" {
		p.badRequest(w, CodeInvalidRequest, "n", "only n = 1 is supported: the budget reserves one answer")
		return
	}
	stream := false
	if raw, ok := req["stream"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &stream) != nil {
			p.badRequest(w, CodeInvalidRequest, "stream", "stream must be a boolean")
			return
		}
	}
	limitKey := "max_tokens"
	if _, ok := req["max_completion_tokens"]; ok {
		limitKey = "max_completion_tokens"
	}
	var want int64
	if raw, ok := req[limitKey]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &want) != nil || want < 1 {
			p.badRequest(w, CodeInvalidRequest, limitKey, limitKey+" must be a positive integer")
			return
		}
	}
	price, ok := p.prices.Lookup(model)
	if !ok {
		p.badRequest(w, CodeModelNotAllowed, "model", "model "+model+" has no price in the operator's price table")
		return
	}
	clientUsage := false
	if stream {
		opts := map[string]json.RawMessage{}
		if raw, ok := req["stream_options"]; ok && string(raw) != "null" {
			if json.Unmarshal(raw, &opts) != nil || opts == nil {
				p.badRequest(w, CodeInvalidRequest, "stream_options", "stream_options must be an object")
				return
			}
		}
		_ = json.Unmarshal(opts["include_usage"], &clientUsage)
		opts["include_usage"] = json.RawMessage("true") // the final chunk carries the usage we settle on
		req["stream_options"], _ = json.Marshal(opts)
	}

	res, ref := l.reserve(EstimateInputTokens(req), want, price)
	if ref != nil {
		p.refuse(w, r, s.ID, l, ref)
		return
	}
	req[limitKey] = json.RawMessage(strconv.FormatInt(res.outTokens, 10))
	out, err := json.Marshal(req)
	c := &call{p: p, scanID: s.ID, model: model, res: res, start: start}
	if err != nil { // unreachable: every value came from valid JSON
		c.settle(r.Context(), 0, 0, "internal", 500)
		writeError(w, http.StatusInternalServerError, APIError{Code: CodeInternal, Message: "the request could not be encoded"}, 0)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.UpstreamTimeout)
	defer cancel()
	resp, err := p.up.do(ctx, http.MethodPost, p.up.chatURL, out)
	if err != nil {
		if r.Context().Err() != nil {
			c.settleInput(r.Context())
			return
		}
		p.log.Warn("llm proxy: provider unreachable", "scan_id", s.ID, "error", err)
		c.settle(r.Context(), 0, 0, "upstream_unreachable", http.StatusBadGateway)
		writeError(w, http.StatusBadGateway, APIError{Code: CodeUpstreamError, Message: "the LLM provider could not be reached"}, 0)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		p.upstreamFailed(w, r, c, resp)
		return
	}
	if stream && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		p.relayStream(w, r, c, resp, clientUsage)
		return
	}
	p.relayJSON(w, r, c, resp)
}

// upstreamFailed answers for a provider error status. The provider's body
// is never passed on (it may echo the key or describe the provider's
// internals); its status is mapped to one of Vega's codes.
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, c *call, resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	p.log.Warn("llm proxy: provider error", "scan_id", c.scanID, "model", c.model, "upstream_status", resp.StatusCode)
	status, e, retry := http.StatusBadGateway, APIError{Code: CodeUpstreamError, Message: "the LLM provider failed (status " + strconv.Itoa(resp.StatusCode) + ")"}, 0
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		status, e, retry = http.StatusServiceUnavailable, APIError{Code: CodeUpstreamRateLimited, Message: "the LLM provider is rate limiting; retry later"}, 5
	case resp.StatusCode == http.StatusBadRequest, resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusUnprocessableEntity:
		status, e = http.StatusBadRequest, APIError{Code: CodeUpstreamRejected, Message: "the LLM provider rejected the request (status " + strconv.Itoa(resp.StatusCode) + ")"}
	}
	c.settle(r.Context(), 0, 0, "upstream_"+strconv.Itoa(resp.StatusCode), status)
	writeError(w, status, e, retry)
}

// relayJSON relays a non-streamed answer after checking it is a chat
// completion, and settles on its usage.
func (p *Proxy) relayJSON(w http.ResponseWriter, r *http.Request, c *call, resp *http.Response) {
	data, err := readLimited(resp.Body, MaxResponseBytes)
	if err != nil {
		if r.Context().Err() != nil {
			c.settleInput(r.Context())
			return
		}
		c.settleReserved(r.Context(), "bad_upstream_response", http.StatusBadGateway)
		writeError(w, http.StatusBadGateway, APIError{Code: CodeBadUpstreamResponse, Message: "the LLM provider's answer could not be read"}, 0)
		return
	}
	var parsed struct {
		Usage   *usageJSON        `json:"usage"`
		Choices []json.RawMessage `json:"choices"`
	}
	if json.Unmarshal(data, &parsed) != nil || parsed.Choices == nil {
		p.log.Warn("llm proxy: malformed provider answer", "scan_id", c.scanID, "model", c.model, "bytes", len(data))
		c.settleReserved(r.Context(), "bad_upstream_response", http.StatusBadGateway)
		writeError(w, http.StatusBadGateway, APIError{Code: CodeBadUpstreamResponse, Message: "the LLM provider's answer is not a valid chat completion"}, 0)
		return
	}
	if parsed.Usage.valid() {
		c.settle(r.Context(), parsed.Usage.PromptTokens, parsed.Usage.CompletionTokens, "ok", http.StatusOK)
	} else {
		c.settleReserved(r.Context(), "ok_no_usage", http.StatusOK)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// relayStream relays a streamed answer line by line, reads the final usage
// chunk (which the proxy asked for), drops it when the client did not ask
// for it, and settles: on the usage, at the input estimate when the client
// went away, or at the reservation when the stream carried no usage.
func (p *Proxy) relayStream(w http.ResponseWriter, r *http.Request, c *call, resp *http.Response, clientUsage bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), MaxSSELineBytes)
	var usage *usageJSON
	skipBlank, gone := false, false
	write := func(b []byte) bool {
		if _, err := w.Write(b); err != nil {
			gone = true
			return false
		}
		return true
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimRight(line, "\r")) == 0 {
			if skipBlank {
				skipBlank = false
				continue
			}
			if !write([]byte("\n")) || rc.Flush() != nil {
				gone = true
				break
			}
			continue
		}
		if payload, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			payload = bytes.TrimSpace(payload)
			var chunk struct {
				Usage   *usageJSON        `json:"usage"`
				Choices []json.RawMessage `json:"choices"`
			}
			if !bytes.Equal(payload, []byte("[DONE]")) && json.Unmarshal(payload, &chunk) == nil && chunk.Usage.valid() {
				usage = chunk.Usage
				if !clientUsage && len(chunk.Choices) == 0 {
					skipBlank = true
					continue
				}
			}
		}
		if !write(line) || !write([]byte("\n")) {
			break
		}
	}
	_ = rc.Flush()
	switch {
	case gone || r.Context().Err() != nil:
		c.settleInput(r.Context())
	case usage != nil:
		c.settle(r.Context(), usage.PromptTokens, usage.CompletionTokens, "ok", http.StatusOK)
	default:
		if err := sc.Err(); err != nil {
			p.log.Warn("llm proxy: stream broken", "scan_id", c.scanID, "model", c.model, "error", err)
		}
		c.settleReserved(r.Context(), "stream_no_usage", http.StatusOK)
	}
}

// refuse answers 429 for a request the budget cannot take. A spent budget
// is recorded once (pending usage of the scan is flushed first, so the
// event's total is current).
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, scanID string, l *ledger, ref *refusal) {
	p.m.requests.WithLabelValues("budget_refused").Inc()
	switch {
	case ref.Limit == LimitConcurrent:
		writeError(w, http.StatusTooManyRequests, APIError{Code: CodeConcurrencyLimit, Limit: ref.Limit,
			Message: "the scan has as many LLM requests in flight as its budget allows; retry when one finishes"}, 1)
		return
	case ref.Reserved:
		writeError(w, http.StatusTooManyRequests, APIError{Code: CodeBudgetReserved, Limit: ref.Limit,
			Message: "the rest of the scan's " + ref.Limit + " budget is reserved by requests in flight; retry when they finish"}, 1)
		return
	}
	if l.exhaust(ref.Limit) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), finalFlushTimeout)
		defer cancel()
		_ = p.rec.flush(ctx, scanID)
		ctx = commands.WithRequest(ctx, commands.Request{Actor: ProxyActor})
		if _, err := p.exceed.Handle(ctx, commands.ExceedBudget{ScanID: scanID, Limit: ref.Limit}); err != nil {
			p.log.Error("llm proxy: record exceeded budget", "scan_id", scanID, "limit", ref.Limit, "error", err)
		}
	}
	p.log.Info("llm proxy: budget exceeded", "scan_id", scanID, "limit", ref.Limit)
	writeError(w, http.StatusTooManyRequests, APIError{Code: CodeBudgetExceeded, Limit: ref.Limit,
		Message: "the scan's LLM budget is exhausted (" + ref.Limit + ")"}, 0)
}

// validModel reports whether s can name a model in an event.
func validModel(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > domain.MaxNameLength {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// readLimited reads all of r, failing beyond max bytes.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, errors.New("answer too large")
	}
	return data, nil
}

// jsonObject reports whether data is one JSON object.
func jsonObject(data []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(data, &m) == nil && m != nil
}
