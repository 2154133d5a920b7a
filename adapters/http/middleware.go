package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// HeaderRequestID carries the request ID in and out.
const HeaderRequestID = "X-Request-ID"

// MaxRequestIDLength is the longest X-Request-ID accepted from a client;
// a longer or malformed one is replaced by a fresh ULID.
const MaxRequestIDLength = 128

type requestIDKey struct{}

// RequestIDFromContext returns the request ID the middleware put in ctx, or
// "".
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID accepts IDs of letters, digits and ._:- only, so that a
// client cannot inject anything into logs or headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// requestID takes the client's X-Request-ID when well formed, else makes a
// ULID, and sets it on the response and in the context.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = ulid.Make().String()
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// recorder remembers the status and the bytes written. Unwrap lets
// http.ResponseController reach the connection (flush, write deadlines).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// wrote reports whether the response started.
func (rec *recorder) wrote() bool { return rec.status != 0 }

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	sseConns     prometheus.Gauge
	sseOver      prometheus.Counter
	feedRestarts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vega_http_requests_total",
			Help: "HTTP requests by method, route pattern and status code."}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vega_http_request_duration_seconds",
			Help: "HTTP request durations by method and route pattern (SSE: connection lifetimes).", Buckets: prometheus.DefBuckets},
			[]string{"method", "route"}),
		sseConns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vega_sse_connections", Help: "Open SSE connections."}),
		sseOver: prometheus.NewCounter(prometheus.CounterOpts{Name: "vega_sse_overflows_total",
			Help: "SSE connections ended because the client was too slow."}),
		feedRestarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "vega_sse_feed_restarts_total",
			Help: "Restarts of the live feed that fills the SSE hub."}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.sseConns, m.sseOver, m.feedRestarts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register http metrics: %w", err)
		}
	}
	return m, nil
}

// routePattern returns the chi pattern that served r, or "unmatched".
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// observe logs one access line per request and counts it. The line names
// the route pattern and the path without its query (which may carry an
// access_token), never a header. Panics are turned into a 500 here, after
// logging the stack, so that the line still records the outcome.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		rec := &recorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic serving request", "request_id", RequestIDFromContext(r.Context()),
					"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.wrote() {
					writeError(rec, r, discard, errors.New("panic"))
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			route := routePattern(r)
			d := s.now().Sub(start)
			s.m.requests.WithLabelValues(r.Method, route, strconv.Itoa(status)).Inc()
			s.m.duration.WithLabelValues(r.Method, route).Observe(d.Seconds())
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.Int64("bytes", rec.bytes), slog.Duration("duration", d),
				slog.String("principal", principalName(r.Context())), slog.String("request_id", RequestIDFromContext(r.Context())))
		}()
		next.ServeHTTP(rec, r)
	})
}

// discard is a logger that drops everything.
var discard = slog.New(slog.DiscardHandler)

// principalName returns the principal for logs: its ID, or "-".
func principalName(ctx context.Context) string {
	if p, ok := ctx.Value(principalKey{}).(*principalBox); ok && p.p != nil {
		return p.p.ID
	}
	return "-"
}

// timeout bounds a non-streaming request: its context ends after d, and
// whatever waits on it (a query, a command) fails with
// context.DeadlineExceeded, which is answered 503 unavailable. (Reading
// a body has its own deadline: see Server.decodeJSON.)
func timeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isSSE(r) {
				next.ServeHTTP(w, r)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
