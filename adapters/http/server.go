package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/eventstore"
)

// Defaults of Config; each applies when its field is zero.
const (
	// DefaultRequestTimeout bounds every non-streaming request.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultConsistencyTimeout bounds a command's wait for the read
	// models to reach its position (read-your-own-writes). On timeout the
	// command still answers 2xx and the wait is logged.
	DefaultConsistencyTimeout = 5 * time.Second
	// DefaultSSEHeartbeat is the interval of SSE heartbeat comments.
	DefaultSSEHeartbeat = 15 * time.Second
	// DefaultSSEQueue is the most events queued for one SSE connection.
	DefaultSSEQueue = 256
	// DefaultSSEWriteTimeout bounds each write to an SSE client.
	DefaultSSEWriteTimeout = 10 * time.Second
	// DefaultSSEMaxConns and DefaultSSEMaxPerPrincipal cap SSE connections
	// per process, in total and per principal (VEGA_SSE_MAX_CONNS,
	// VEGA_SSE_MAX_PER_PRINCIPAL).
	DefaultSSEMaxConns        = 5000
	DefaultSSEMaxPerPrincipal = 20
	// DefaultStreamTokenTTL is the lifetime of a stream token
	// (VEGA_STREAM_TOKEN_TTL).
	DefaultStreamTokenTTL = 5 * time.Minute
	// DefaultReadyMaxLag is how far (in seconds of the oldest unapplied
	// event) a projection may lag before /readyz answers 503.
	DefaultReadyMaxLag = 30 * time.Second
	// DefaultReadyTimeout bounds each check of /readyz.
	DefaultReadyTimeout = 2 * time.Second
	// DefaultShutdownTimeout bounds Serve's graceful shutdown.
	DefaultShutdownTimeout = 10 * time.Second
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// SSEReplayPage is how many events an SSE replay reads at a time.
	SSEReplayPage = 500
	// DefaultMaxSnapshotBytes is the largest snapshot upload accepted
	// (VEGA_MAX_SNAPSHOT_BYTES, 512 MiB); a bigger one is answered 413.
	DefaultMaxSnapshotBytes = snapshot.DefaultMaxUploadBytes
	// MaxSARIFBytes is the largest SARIF document POST
	// /scans/{id}/sarif accepts (the importer's own limit, 32 MiB); a
	// bigger one is answered 413.
	MaxSARIFBytes int64 = sarif.DefaultMaxBytes
	// DefaultUploadTimeout bounds an upload request (snapshot archives
	// and SARIF documents), body reading included, in place of
	// RequestTimeout: 512 MiB takes minutes on a slow link.
	DefaultUploadTimeout = 15 * time.Minute
)

// Config tunes the Server. The zero value is valid: every field has a
// default (see the Default constants).
type Config struct {
	// BootstrapToken, when set, authenticates as the admin principal
	// "admin" (VEGA_BOOTSTRAP_TOKEN).
	BootstrapToken string
	// RequestTimeout bounds non-streaming requests.
	RequestTimeout time.Duration
	// ConsistencyTimeout bounds read-your-own-writes waits.
	ConsistencyTimeout time.Duration
	// SSEHeartbeat, SSEQueue and SSEWriteTimeout tune each SSE connection.
	SSEHeartbeat    time.Duration
	SSEQueue        int
	SSEWriteTimeout time.Duration
	// SSEMaxConns and SSEMaxPerPrincipal cap SSE connections.
	SSEMaxConns        int
	SSEMaxPerPrincipal int
	// StreamTokenTTL is the lifetime of stream tokens.
	StreamTokenTTL time.Duration
	// StreamTokenKey signs stream tokens (at least
	// MinStreamTokenKeyBytes). API processes that share it accept each
	// other's tokens; empty: a random key per process.
	StreamTokenKey []byte
	// ReadyMaxLag and ReadyTimeout tune /readyz.
	ReadyMaxLag  time.Duration
	ReadyTimeout time.Duration
	// ShutdownTimeout bounds Serve's graceful shutdown.
	ShutdownTimeout time.Duration
	// MaxSnapshotBytes is the largest snapshot upload accepted
	// (VEGA_MAX_SNAPSHOT_BYTES).
	MaxSnapshotBytes int64
	// UploadTimeout bounds snapshot and SARIF uploads, body included.
	UploadTimeout time.Duration
	// Version is the build's version, the tool version of SARIF exports
	// (empty: "dev").
	Version string
	// Logger gets access logs and internal errors; nil discards.
	Logger *slog.Logger
	// Clock gives the time (default time.Now).
	Clock func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RequestTimeout, DefaultRequestTimeout)
	def(&c.ConsistencyTimeout, DefaultConsistencyTimeout)
	def(&c.SSEHeartbeat, DefaultSSEHeartbeat)
	def(&c.SSEWriteTimeout, DefaultSSEWriteTimeout)
	def(&c.StreamTokenTTL, DefaultStreamTokenTTL)
	def(&c.ReadyMaxLag, DefaultReadyMaxLag)
	def(&c.ReadyTimeout, DefaultReadyTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	def(&c.UploadTimeout, DefaultUploadTimeout)
	if c.MaxSnapshotBytes == 0 {
		c.MaxSnapshotBytes = DefaultMaxSnapshotBytes
	}
	if c.SSEQueue == 0 {
		c.SSEQueue = DefaultSSEQueue
	}
	if c.SSEMaxConns == 0 {
		c.SSEMaxConns = DefaultSSEMaxConns
	}
	if c.SSEMaxPerPrincipal == 0 {
		c.SSEMaxPerPrincipal = DefaultSSEMaxPerPrincipal
	}
	if c.Logger == nil {
		c.Logger = discard
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Validate reports a field out of range.
func (c Config) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"RequestTimeout": c.RequestTimeout, "ConsistencyTimeout": c.ConsistencyTimeout,
		"SSEHeartbeat": c.SSEHeartbeat, "SSEWriteTimeout": c.SSEWriteTimeout, "StreamTokenTTL": c.StreamTokenTTL,
		"ReadyMaxLag": c.ReadyMaxLag, "ReadyTimeout": c.ReadyTimeout, "ShutdownTimeout": c.ShutdownTimeout,
		"UploadTimeout": c.UploadTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative", name, d))
		}
	}
	if c.SSEQueue < 0 || c.SSEMaxConns < 0 || c.SSEMaxPerPrincipal < 0 {
		errs = append(errs, errors.New("SSEQueue, SSEMaxConns and SSEMaxPerPrincipal must not be negative"))
	}
	if c.MaxSnapshotBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxSnapshotBytes %d is negative", c.MaxSnapshotBytes))
	}
	if n := len(c.StreamTokenKey); n > 0 && n < MinStreamTokenKeyBytes {
		errs = append(errs, fmt.Errorf("StreamTokenKey has %d bytes, fewer than %d", n, MinStreamTokenKeyBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("http config: %w", err)
	}
	return nil
}

// Deps are the Server's collaborators. Commands, Queries, Events,
// Consistency, Snapshots, Classifications and SARIF are required.
type Deps struct {
	// Commands are the command handlers (commands.New).
	Commands *commands.Handlers
	// Queries is the read side (*queries.Service).
	Queries Queries
	// Events is the event store.
	Events Events
	// Consistency waits for the read models (*projections.Runner).
	Consistency Consistency
	// Projections reports projection lag for /readyz (*projections.Runner);
	// nil: not checked.
	Projections ProjectionStatus
	// Bus checks the message bus for /readyz; nil: not checked.
	Bus CheckFunc
	// Feed fills the SSE Hub (NewJetStreamFeed, or NewStoreFeed without a
	// bus); nil: SSE streams replay but get no live events.
	Feed Feed
	// Snapshots captures archive uploads (*snapshot.Service).
	Snapshots SnapshotUploader
	// Classifications serves scan diffs and the classified findings of
	// SARIF exports (*classify.Reader).
	Classifications Classifications
	// SARIF records SARIF uploads (*sarif.Uploader over a sarif.Importer
	// of engine sarif-upload).
	SARIF SARIFUploader
	// Rules describes the builtin rules in SARIF exports
	// (*builtin.Engine); nil: each exported rule is made from its first
	// finding.
	Rules RuleSource
	// Registerer receives the HTTP metrics and Gatherer serves /metrics;
	// nil: a private registry for both.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Pages, when set, serves every path outside the API (the dashboard
	// at /), behind the same request IDs, access logs and panic recovery.
	Pages http.Handler
}

// Server is the HTTP API. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	cmd     *commands.Handlers
	q       Queries
	events  Events
	wait    Consistency
	proj    ProjectionStatus
	bus     CheckFunc
	snaps   SnapshotUploader
	cls     Classifications
	sarifs  SARIFUploader
	pages   http.Handler
	rules   []sarif.Rule
	hub     *Hub
	tokens  *streamTokens
	limits  *connLimits
	m       *metrics
	gather  prometheus.Gatherer
	codec   *eventstore.Registry
	handler http.Handler

	stopOnce sync.Once
	stopping chan struct{} // closed when graceful shutdown begins: SSE streams end
}

// New builds a Server. It fails when a required dependency is missing,
// cfg is invalid or the metrics cannot be registered.
func New(deps Deps, cfg Config) (*Server, error) {
	switch {
	case deps.Commands == nil:
		return nil, errors.New("new http server: Commands is required")
	case deps.Queries == nil:
		return nil, errors.New("new http server: Queries is required")
	case deps.Events == nil:
		return nil, errors.New("new http server: Events is required")
	case deps.Consistency == nil:
		return nil, errors.New("new http server: Consistency is required")
	case deps.Snapshots == nil:
		return nil, errors.New("new http server: Snapshots is required")
	case deps.Classifications == nil:
		return nil, errors.New("new http server: Classifications is required")
	case deps.SARIF == nil:
		return nil, errors.New("new http server: SARIF is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new http server: %w", err)
	}
	cfg = cfg.withDefaults()
	reg, gather := deps.Registerer, deps.Gatherer
	if reg == nil || gather == nil {
		r := prometheus.NewRegistry()
		reg, gather = r, r
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("new http server: %w", err)
	}
	tokens, err := newStreamTokens(cfg.StreamTokenKey, cfg.StreamTokenTTL)
	if err != nil {
		return nil, fmt.Errorf("new http server: %w", err)
	}
	codec, err := commands.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("new http server: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Clock, cmd: deps.Commands, q: deps.Queries, events: deps.Events,
		wait: deps.Consistency, proj: deps.Projections, bus: deps.Bus, tokens: tokens,
		limits: &connLimits{total: cfg.SSEMaxConns, per: cfg.SSEMaxPerPrincipal, by: map[string]int{}},
		m:      m, gather: gather, codec: codec, stopping: make(chan struct{}),
		snaps: deps.Snapshots, cls: deps.Classifications, sarifs: deps.SARIF, pages: deps.Pages}
	if deps.Rules != nil {
		s.rules = sarif.RulesFromBuiltin(deps.Rules.Rules())
	}
	s.hub = NewHub(deps.Feed, s.projectOfStream, cfg.Logger)
	s.hub.restart = m.feedRestarts.Inc
	s.handler = s.routes()
	return s, nil
}

// Handler returns the handler of every route. Live SSE events need the
// Hub running: use Serve, or run Run beside the handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Hub returns the Server's Hub, for callers that publish events to SSE
// subscribers themselves.
func (s *Server) Hub() *Hub { return s.hub }

// Run runs the Hub's feed until ctx ends, then ends every SSE stream.
func (s *Server) Run(ctx context.Context) error {
	err := s.hub.Run(ctx)
	s.stop()
	return err
}

func (s *Server) stop() { s.stopOnce.Do(func() { close(s.stopping) }) }

// Serve serves ln until ctx ends, with the Hub running, then shuts down
// gracefully: SSE streams end at once, other requests get up to
// Config.ShutdownTimeout to finish. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: ReadHeaderTimeout,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context {
			return context.WithoutCancel(ctx)
		}}
	hubCtx, stopHub := context.WithCancel(ctx)
	defer stopHub()
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		_ = s.hub.Run(hubCtx)
	}()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-served:
		err = fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
		s.stop()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			_ = srv.Close()
			err = fmt.Errorf("shut down http: %w", serr)
		}
	}
	stopHub()
	<-hubDone
	s.stop()
	return err
}

// connLimits caps SSE connections in total and per principal.
type connLimits struct {
	mu         sync.Mutex
	total, per int
	n          int
	by         map[string]int
}

// acquire takes a slot for principal, or reports false.
func (l *connLimits) acquire(principal string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= l.total || l.by[principal] >= l.per {
		return false
	}
	l.n++
	l.by[principal]++
	return true
}

func (l *connLimits) release(principal string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.by[principal]--; l.by[principal] <= 0 {
		delete(l.by, principal)
	}
}
