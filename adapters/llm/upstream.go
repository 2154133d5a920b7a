package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// upstream is the operator's provider: the only place the provider key is
// used. Nothing a caller sends (headers, URL, body fields naming an
// endpoint) reaches it except the vetted chat-completions body.
type upstream struct {
	chatURL, modelsURL string
	key                string
	client             *http.Client
}

// validateProviderURL checks VEGA_LLM_PROVIDER_URL: http or https, a host,
// no credentials, query or fragment (a key must never ride in a URL, where
// errors and logs would show it).
func validateProviderURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("provider url: not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("provider url: scheme %q is not http or https", u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("provider url: a host is required")
	case u.User != nil:
		return nil, fmt.Errorf("provider url: credentials in the URL are not allowed; use VEGA_LLM_PROVIDER_API_KEY")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("provider url: a query or fragment is not allowed")
	}
	return u, nil
}

// scrub removes the provider key from s, should any error ever carry it.
func (u *upstream) scrub(s string) string {
	if u.key == "" {
		return s
	}
	return strings.ReplaceAll(s, u.key, "[REDACTED]")
}

func newUpstream(base *url.URL, key string, client *http.Client) *upstream {
	b := strings.TrimRight(base.String(), "/")
	return &upstream{chatURL: b + "/chat/completions", modelsURL: b + "/models", key: key, client: client}
}

// do sends one request to the provider with the operator's key. Transport
// errors are returned without the URL or anything else of the request.
func (u *upstream) do(ctx context.Context, method, target string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build upstream request: %w", errUpstream)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	if u.key != "" {
		req.Header.Set("Authorization", "Bearer "+u.key)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL
		}
		return nil, fmt.Errorf("%w: %s", errUpstream, u.scrub(err.Error()))
	}
	return resp, nil
}
