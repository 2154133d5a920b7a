package llm

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Error codes of the proxy's error bodies,
// {"error": {"code", "type", "message", "limit"?, "param"?}}. They are a
// public contract: clients (the ai engine) branch on them.
const (
	CodeBudgetExceeded      = "budget_exceeded"      // 429: a budget limit is spent; "limit" names it
	CodeBudgetReserved      = "budget_reserved"      // 429: the rest is held by requests in flight; retry after them
	CodeConcurrencyLimit    = "concurrency_limit"    // 429: max_concurrent requests in flight
	CodeInvalidToken        = "invalid_token"        // 401: missing, malformed, expired, revoked or for another scan
	CodeUpstreamOverride    = "upstream_override"    // 400: a field or header tried to choose the upstream
	CodeInvalidRequest      = "invalid_request"      // 400: bad JSON or fields
	CodeModelNotAllowed     = "model_not_allowed"    // 400: no price for the model
	CodeRequestTooLarge     = "request_too_large"    // 413
	CodeProviderUnavailable = "provider_unavailable" // 503: no provider configured
	CodeUpstreamError       = "upstream_error"       // 502: the provider failed or is unreachable
	CodeUpstreamRejected    = "upstream_rejected"    // 400: the provider refused the request
	CodeUpstreamRateLimited = "upstream_rate_limited"
	CodeBadUpstreamResponse = "bad_upstream_response" // 502: the provider's answer is not valid
	CodeInternal            = "internal_error"
)

// errUpstream marks a failed call to the provider.
var errUpstream = errors.New("upstream unreachable")

// APIError is the proxy's error body.
type APIError struct {
	Code    string `json:"code"`
	Type    string `json:"type"`
	Message string `json:"message"`
	Limit   string `json:"limit,omitempty"`
	Param   string `json:"param,omitempty"`
}

// writeError sends {"error": e} with status; retryAfter > 0 adds a
// Retry-After header (seconds).
func writeError(w http.ResponseWriter, status int, e APIError, retryAfter int) {
	if e.Type == "" {
		e.Type = e.Code
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error APIError `json:"error"`
	}{e})
}
