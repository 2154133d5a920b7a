package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// Handler handles one kind of command. Implementations are safe for
// concurrent use.
type Handler[C, R any] interface {
	Handle(ctx context.Context, cmd C) (R, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc[C, R any] func(ctx context.Context, cmd C) (R, error)

// Handle calls f.
func (f HandlerFunc[C, R]) Handle(ctx context.Context, cmd C) (R, error) { return f(ctx, cmd) }

// Retry limits of WithRetry.
const (
	// MaxAttempts is how many times WithRetry runs a handler, the first
	// run included, before it gives up on concurrency conflicts.
	MaxAttempts = 5
	// RetryBaseDelay is the backoff before the second attempt; it doubles
	// for each further attempt, and each delay is jittered to between half
	// and all of it, so that racing writers spread out.
	RetryBaseDelay = 2 * time.Millisecond
)

// WithRetry runs h again, from scratch (a handler loads its aggregates
// afresh on every run), while it fails with eventstore.ErrConcurrency: an
// optimistic-concurrency conflict that another writer caused between the
// handler's load and its append. It makes at most MaxAttempts runs, with a
// jittered exponential backoff between them, and stops early when ctx ends.
// When attempts run out, the last error is returned wrapped (it still
// matches eventstore.ErrConcurrency). Any other result is returned at once.
func WithRetry[C, R any](h Handler[C, R]) Handler[C, R] {
	return HandlerFunc[C, R](func(ctx context.Context, cmd C) (R, error) {
		delay := RetryBaseDelay
		for attempt := 1; ; attempt++ {
			res, err := h.Handle(ctx, cmd)
			if err == nil || !errors.Is(err, eventstore.ErrConcurrency) {
				return res, err
			}
			if attempt == MaxAttempts {
				return res, fmt.Errorf("give up after %d attempts: %w", MaxAttempts, err)
			}
			jittered := delay/2 + rand.N(delay/2+1)
			t := time.NewTimer(jittered)
			select {
			case <-ctx.Done():
				t.Stop()
				return res, fmt.Errorf("retry after conflict: %w (last conflict: %v)", ctx.Err(), err)
			case <-t.C:
			}
			delay *= 2
		}
	})
}

// Outcomes, the values of the "outcome" label of CommandsTotal and of the
// log line of WithLogging. They follow the domain's error kinds.
const (
	OutcomeOK              = "ok"
	OutcomeInvalidArgument = "invalid_argument"
	OutcomeNotFound        = "not_found"
	OutcomeConflict        = "conflict"
	OutcomeCanceled        = "canceled"
	OutcomeInternal        = "internal"
)

// Outcome classifies a handler's error by kind: OutcomeOK for nil, then
// invalid argument, not found, conflict (domain conflicts, illegal
// transitions, stale fences and unresolved concurrency conflicts), canceled
// (the caller's context ended), and internal for everything else (store
// failures, corrupt history): the only kind that signals a fault of Vega.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, domain.ErrInvalidArgument):
		return OutcomeInvalidArgument
	case errors.Is(err, domain.ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, domain.ErrConflict), errors.Is(err, eventstore.ErrConcurrency):
		return OutcomeConflict
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return OutcomeCanceled
	}
	return OutcomeInternal
}

// Metrics are the Prometheus collectors of WithLogging. A nil *Metrics
// records nothing.
type Metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates and registers vega_commands_total{command,outcome} and
// vega_command_duration_seconds{command}. A nil reg gives a nil *Metrics,
// which records nothing. When reg already holds the same collectors (a
// second Handlers in one process), they are shared.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vega_commands_total",
		Help: "Commands handled, by command and outcome (ok, invalid_argument, not_found, conflict, canceled, internal).",
	}, []string{"command", "outcome"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "vega_command_duration_seconds",
		Help:    "Time to handle a command, retries included, by command.",
		Buckets: prometheus.DefBuckets,
	}, []string{"command"})
	var err error
	if total, err = register(reg, total); err != nil {
		return nil, fmt.Errorf("register command metrics: %w", err)
	}
	if duration, err = register(reg, duration); err != nil {
		return nil, fmt.Errorf("register command metrics: %w", err)
	}
	return &Metrics{total: total, duration: duration}, nil
}

func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *Metrics) observe(command, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.total.WithLabelValues(command, outcome).Inc()
	m.duration.WithLabelValues(command).Observe(d.Seconds())
}

// WithLogging logs every run of h under the command's name, with its
// duration, outcome, actor and correlation ID, and records it in m (nil:
// no metrics). Successes are logged at debug level, errors of the caller's
// making (invalid argument, not found, conflict, canceled) at info, and
// internal errors, the only ones that need an operator, at error. A nil
// log discards.
func WithLogging[C, R any](name string, h Handler[C, R], log *slog.Logger, m *Metrics) Handler[C, R] {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return HandlerFunc[C, R](func(ctx context.Context, cmd C) (R, error) {
		start := time.Now()
		res, err := h.Handle(ctx, cmd)
		d := time.Since(start)
		out := Outcome(err)
		m.observe(name, out, d)
		req := RequestFromContext(ctx)
		attrs := []slog.Attr{
			slog.String("command", name), slog.Duration("duration", d), slog.String("outcome", out),
			slog.String("actor", req.Actor), slog.String("correlation_id", req.CorrelationID),
		}
		level := slog.LevelDebug
		switch out {
		case OutcomeOK:
		case OutcomeInternal:
			level = slog.LevelError
			attrs = append(attrs, slog.String("error", err.Error()))
		default:
			level = slog.LevelInfo
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		log.LogAttrs(ctx, level, "command", attrs...)
		return res, err
	})
}

// withIdentity gives each command an ID (a fresh ULID from ids) and fills
// the context's Request with it where the caller left the correlation or
// causation ID empty, so that the log line, the metrics and every event of
// every retry share one identity.
func withIdentity[C, R any](h Handler[C, R], ids func() string) Handler[C, R] {
	return HandlerFunc[C, R](func(ctx context.Context, cmd C) (R, error) {
		req := RequestFromContext(ctx)
		if req.CorrelationID == "" || req.CausationID == "" {
			ctx = WithRequest(ctx, req.withDefaults(ids()))
		}
		return h.Handle(ctx, cmd)
	})
}

// withActor refuses a command whose context names no valid actor before it
// reads anything.
func withActor[C, R any](h Handler[C, R]) Handler[C, R] {
	return HandlerFunc[C, R](func(ctx context.Context, cmd C) (R, error) {
		if err := RequestFromContext(ctx).validate(); err != nil {
			var zero R
			return zero, err
		}
		return h.Handle(ctx, cmd)
	})
}

// decorate applies the decorators every handler of New gets, outermost
// first: identity, logging and metrics, the actor check, retry.
func decorate[C, R any](name string, h Handler[C, R], ids func() string, log *slog.Logger, m *Metrics) Handler[C, R] {
	return withIdentity(WithLogging(name, withActor(WithRetry(h)), log, m), ids)
}
