// Package llm is Vega's LLM proxy (`vega llm-proxy`): an OpenAI-compatible
// endpoint (POST /v1/chat/completions, plain and streamed, and GET
// /v1/models) that is the only process holding the provider's key.
//
// Upstream. The provider URL and key are the operator's
// (VEGA_LLM_PROVIDER_URL, VEGA_LLM_PROVIDER_API_KEY). No request can choose
// or override them: a body field or header that tries (base_url, api_base,
// api_key, provider, extra_headers, Authorization-like fields, X-Upstream,
// …) is refused with 400 upstream_override, and the caller's headers are
// never forwarded. The provider's error bodies are never relayed (some echo
// the key presented); errors map to the proxy's own codes (see the Code
// constants), 5xx to 502.
//
// Credentials. The worker mints a token when it launches a runner
// (Minter.Mint): "vega-scan.<scan id>.<32 random bytes, base64url>". Only
// its SHA-256 is stored, in a ScanCredentialIssued event on the scan's
// stream, with the attempt's fence and an expiry (the scan's timeout). The
// proxy and the worker are different processes and the scan stream is
// reachable by both, so the proxy authenticates by folding the stream
// (cached for AuthCacheTTL): the token is valid while the scan is claimed or
// running at the same fence and before its expiry. Revocation is implied:
// a requeue (new fence) or a terminal state ends it, within AuthCacheTTL.
//
// Budgets. Each scan's limits come from its threat profile's llm_budget;
// a zero limit takes the operator's default (ProxyConfig.DefaultBudget).
// Before forwarding, a request reserves its worst case: the input estimate
// (EstimateInputTokens) plus max_tokens, which the proxy clamps to what is
// neither spent nor reserved (by tokens and by cost, from the price table).
// After the answer it settles on the provider's reported usage (for
// streams, stream_options.include_usage is forced and the final usage chunk
// read; it is dropped again when the client had not asked for it); a client
// that disconnects or cancels settles at the input estimate; an answer
// without usage settles at the reservation. Since spent plus reserved never
// passes a limit, parallel requests cannot overshoot it, provided the
// provider bills no more input than estimated and no more output than
// max_tokens. A request that cannot fit gets 429 with
// {"error": {"code": "budget_exceeded", "limit": …}} and the scan gets one
// ScanBudgetExceeded; when it would fit once requests in flight settle, the
// 429 says budget_reserved (retry), and max_concurrent gives
// concurrency_limit. Every forwarded call's usage is recorded as
// LLMUsageRecorded, batched per scan and model (FlushEveryCalls,
// FlushInterval).
//
// Several proxies. A proxy folds a scan's usage from its stream on first use
// and then reserves in memory; on each refold it adopts the stream's total
// when that is larger. Several proxies serving one scan can therefore
// overshoot its limits by at most what the others have in flight (plus
// their unflushed batches). Pin a scan to one proxy (the runner gets one
// proxy URL) where that matters.
//
// The key appears in the Authorization header of upstream requests only:
// never in logs, errors, events or responses.
package llm
