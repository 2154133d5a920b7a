// Package fakellm is a fake OpenAI-compatible provider for tests and
// benchmarks: POST /v1/chat/completions (plain and streamed) and GET
// /v1/models on a loopback listener. Each answer is decided by a Responder
// (canned text, streamed chunks, usage fields, slow answers, error statuses,
// malformed JSON), and every request is recorded so tests can check exactly
// what was sent upstream.
//
// It is a real HTTP server, not a mock of one: clients reach it over TCP.
package fakellm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// MaxRequestBytes is the largest request body the fake reads.
const MaxRequestBytes = 16 << 20

// DefaultChunks is how many content chunks a streamed answer has when the
// Reply sets none.
const DefaultChunks = 3

// Received is one request as the fake saw it.
type Received struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	// Chat is Body decoded, for chat completions; nil otherwise or when the
	// body is not a JSON object.
	Chat map[string]any
}

// MaxTokens returns the request's max_tokens (or max_completion_tokens),
// and 0 when it has none.
func (r Received) MaxTokens() int {
	for _, k := range []string{"max_tokens", "max_completion_tokens"} {
		if v, ok := r.Chat[k].(float64); ok {
			return int(v)
		}
	}
	return 0
}

// Stream reports whether the request asked for a streamed answer.
func (r Received) Stream() bool {
	b, _ := r.Chat["stream"].(bool)
	return b
}

// Reply is one answer. The zero Reply answers 200 with the content "ok" and
// usage computed by PromptTokens and the content's length.
type Reply struct {
	// Status, when not 0 or 200, answers with this status and Body.
	Status int
	// Body, when set, is sent verbatim (with Status, default 200) instead of
	// a chat completion: malformed JSON, an error document.
	Body string
	// Content is the assistant's message (default "ok").
	Content string
	// PromptTokens and CompletionTokens are the usage reported; 0 computes
	// them: PromptTokens(request) and len(Content)/4+1.
	PromptTokens, CompletionTokens int
	// UseMaxTokens reports the request's max_tokens as completion tokens:
	// the most a provider may bill.
	UseMaxTokens bool
	// NoUsage leaves usage out of the answer (and the final usage chunk out
	// of a stream, even when include_usage was asked).
	NoUsage bool
	// Delay is waited before the answer's headers; it ends early when the
	// client goes away.
	Delay time.Duration
	// Chunks is how many content chunks a stream has (default
	// DefaultChunks); ChunkDelay is waited between them.
	Chunks     int
	ChunkDelay time.Duration
	// Cut ends a stream after its content chunks, without usage or [DONE].
	Cut bool
}

// Responder decides the reply to one chat-completions request. It may be
// called concurrently.
type Responder func(Received) Reply

// Server is the fake provider. It is safe for concurrent use.
type Server struct {
	// APIKey, when set, is required as "Authorization: Bearer <key>"; other
	// requests get a 401 whose body echoes the key presented, as some real
	// providers do (to test that nobody passes such bodies on).
	apiKey string

	srv *http.Server
	ln  net.Listener
	url string

	mu        sync.Mutex
	respond   Responder
	received  []Received
	arrivals  chan Received
	closeOnce sync.Once
}

// Start listens on 127.0.0.1 on a free port and serves until Close. apiKey
// may be empty (no authentication).
func Start(apiKey string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakellm listen: %w", err)
	}
	s := &Server{apiKey: apiKey, ln: ln, url: "http://" + ln.Addr().String() + "/v1", arrivals: make(chan Received, 1024)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("GET /v1/models", s.models)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL returns the base URL, ending in "/v1".
func (s *Server) URL() string { return s.url }

// Close stops the server and drops open connections.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.srv.Close() })
	return err
}

// Respond sets the responder for later requests (nil: the zero Reply).
func (s *Server) Respond(r Responder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.respond = r
}

// Always answers every later request with r.
func (s *Server) Always(r Reply) { s.Respond(func(Received) Reply { return r }) }

// Sequence answers later requests with replies in order, the last one
// repeated.
func (s *Server) Sequence(replies ...Reply) {
	var mu sync.Mutex
	i := 0
	s.Respond(func(Received) Reply {
		mu.Lock()
		defer mu.Unlock()
		r := replies[min(i, len(replies)-1)]
		i++
		return r
	})
}

// Received returns a copy of every request received so far, in arrival
// order.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Arrivals delivers each request as it arrives, before it is answered, so a
// test can act while an answer is pending. It holds the first 1024 requests
// not yet taken; later ones are not delivered there (Received has them all).
func (s *Server) Arrivals() <-chan Received { return s.arrivals }

// PromptTokens is the fake's token count of a request: the bytes of every
// message's content divided by 4, rounded down. A proxy's estimate must not
// be below it.
func PromptTokens(chat map[string]any) int {
	msgs, _ := chat["messages"].([]any)
	n := 0
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		switch c := mm["content"].(type) {
		case string:
			n += len(c)
		case []any:
			for _, p := range c {
				pm, _ := p.(map[string]any)
				if t, ok := pm["text"].(string); ok {
					n += len(t)
				}
			}
		}
	}
	return n / 4
}

func (s *Server) record(r *http.Request) (Received, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes))
	if err != nil {
		return Received{}, err
	}
	rec := Received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	var chat map[string]any
	if json.Unmarshal(body, &chat) == nil {
		rec.Chat = chat
	}
	s.mu.Lock()
	s.received = append(s.received, rec)
	s.mu.Unlock()
	select {
	case s.arrivals <- rec:
	default:
	}
	return rec, nil
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.apiKey == "" || r.Header.Get("Authorization") == "Bearer "+s.apiKey {
		return true
	}
	presented := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
		"message": "Incorrect API key provided: " + presented, "type": "invalid_request_error", "code": "invalid_api_key"}})
	return false
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	if _, err := s.record(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !s.authorized(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []any{
		map[string]any{"id": "gpt-4o-mini", "object": "model", "owned_by": "fake"},
		map[string]any{"id": "gpt-4o", "object": "model", "owned_by": "fake"},
	}})
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	rec, err := s.record(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !s.authorized(w, r) {
		return
	}
	s.mu.Lock()
	respond := s.respond
	s.mu.Unlock()
	var rep Reply
	if respond != nil {
		rep = respond(rec)
	}
	if !wait(r.Context(), rep.Delay) {
		return
	}
	if rep.Status != 0 && rep.Status != http.StatusOK || rep.Body != "" {
		status := rep.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, rep.Body)
		return
	}
	if rep.Content == "" {
		rep.Content = "ok"
	}
	usage := rep.usage(rec)
	model, _ := rec.Chat["model"].(string)
	if rec.Stream() {
		s.stream(w, r, rec, rep, model, usage)
		return
	}
	body := map[string]any{
		"id": "chatcmpl-fake", "object": "chat.completion", "created": time.Now().Unix(), "model": model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": rep.Content}}},
	}
	if !rep.NoUsage {
		body["usage"] = usage
	}
	writeJSON(w, http.StatusOK, body)
}

func (rep Reply) usage(rec Received) map[string]any {
	prompt, completion := rep.PromptTokens, rep.CompletionTokens
	if prompt == 0 {
		prompt = PromptTokens(rec.Chat)
	}
	switch {
	case rep.UseMaxTokens:
		completion = rec.MaxTokens()
	case completion == 0:
		completion = len(rep.Content)/4 + 1
	}
	return map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, rec Received, rep Reply, model string, usage map[string]any) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	n := rep.Chunks
	if n <= 0 {
		n = DefaultChunks
	}
	parts := split(rep.Content, n)
	if !send(chunk(map[string]any{"role": "assistant", "content": ""}, nil)) {
		return
	}
	for i, p := range parts {
		if i > 0 && !wait(r.Context(), rep.ChunkDelay) {
			return
		}
		if !send(chunk(map[string]any{"content": p}, nil)) {
			return
		}
	}
	if rep.Cut {
		return
	}
	if !send(chunk(map[string]any{}, "stop")) {
		return
	}
	opts, _ := rec.Chat["stream_options"].(map[string]any)
	if inc, _ := opts["include_usage"].(bool); inc && !rep.NoUsage {
		if !send(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
			"choices": []any{}, "usage": usage}) {
			return
		}
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
}

// split cuts s into n parts of nearly equal length (fewer when s is short).
func split(s string, n int) []string {
	if n > len(s) {
		n = max(len(s), 1)
	}
	var out []string
	size := (len(s) + n - 1) / n
	for len(s) > size {
		out = append(out, s[:size])
		s = s[size:]
	}
	return append(out, s)
}

// wait sleeps d, or returns false when ctx ends first.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
