package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/queries"
)

// Defaults of Config; each applies when its field is zero.
const (
	// DefaultSessionTTL is how long a sign-in lasts.
	DefaultSessionTTL = 12 * time.Hour
	// DefaultConsistencyTimeout bounds a form POST's wait for the read
	// models to show its command before it redirects.
	DefaultConsistencyTimeout = 5 * time.Second
	// DefaultAPIPrefix is where the JSON API's SSE feeds live.
	DefaultAPIPrefix = "/api/v1"
	// DefaultMaxUploadBytes bounds a snapshot upload (the snapshot
	// service's own default).
	DefaultMaxUploadBytes int64 = 512 << 20
	// DefaultPageSize is the rows per page of every list.
	DefaultPageSize = 50
	// MaxBulkTriage is the most issues one bulk triage changes; a filter
	// matching more is refused (400) with a hint to narrow it.
	MaxBulkTriage = 10000
	// MaxFormBytes bounds a form POST without a file.
	MaxFormBytes = 64 << 10
	// EventLogPage is how many events the Scan page renders before the live
	// feed takes over.
	EventLogPage = 200
	// ReplayWindow is how many events up to the chosen version the Replay
	// page lists.
	ReplayWindow = 100
)

// Config tunes the Server. The zero value is valid.
type Config struct {
	// BootstrapToken, when set, signs in as the admin principal "admin",
	// as it authenticates on the API (VEGA_BOOTSTRAP_TOKEN).
	BootstrapToken string
	// SessionKey signs session cookies and CSRF tokens (at least
	// MinSessionKeyBytes). Processes sharing it accept each other's
	// sessions; empty: a random key per process (sessions end at restart).
	SessionKey []byte
	// SessionTTL is how long a sign-in lasts (DefaultSessionTTL).
	SessionTTL time.Duration
	// SecureCookies sets the Secure attribute on cookies (serve over HTTPS).
	SecureCookies bool
	// APIPrefix is the JSON API's base path, for the SSE feeds the pages
	// open (DefaultAPIPrefix).
	APIPrefix string
	// ConsistencyTimeout bounds read-your-own-writes waits.
	ConsistencyTimeout time.Duration
	// MaxUploadBytes bounds snapshot uploads (DefaultMaxUploadBytes).
	MaxUploadBytes int64
	// Logger gets internal errors; nil discards.
	Logger *slog.Logger
	// Clock gives the time (default time.Now).
	Clock func() time.Time
}

// Validate reports a field out of range.
func (c Config) Validate() error {
	var errs []error
	if n := len(c.SessionKey); n > 0 && n < MinSessionKeyBytes {
		errs = append(errs, fmt.Errorf("SessionKey has %d bytes, fewer than %d", n, MinSessionKeyBytes))
	}
	if c.SessionTTL < 0 || c.ConsistencyTimeout < 0 || c.MaxUploadBytes < 0 {
		errs = append(errs, errors.New("SessionTTL, ConsistencyTimeout and MaxUploadBytes must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("web config: %w", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.ConsistencyTimeout == 0 {
		c.ConsistencyTimeout = DefaultConsistencyTimeout
	}
	if c.APIPrefix == "" {
		c.APIPrefix = DefaultAPIPrefix
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Deps are the Server's collaborators. Commands, Queries, Events and
// Consistency are required; the others switch features on.
type Deps struct {
	// Commands are the command handlers (commands.New).
	Commands *commands.Handlers
	// Queries is the read side (*queries.Service).
	Queries Queries
	// Events reads a scan's stream for replay and hash-chain verification.
	Events eventstore.StreamReader
	// Consistency waits for the read models after a command.
	Consistency Consistency
	// Uploads stores uploaded archives (*snapshot.Service); nil: the
	// upload form is not offered.
	Uploads Uploader
	// StreamTokens mints ?access_token= tokens for the API's SSE feeds;
	// nil: pages are not live (they still render everything).
	StreamTokens StreamTokens
	// Diffs computes scan diffs; nil: built from the findings' labels.
	Diffs DiffReader
	// SARIF exports scans as SARIF; nil: no SARIF download.
	SARIF SARIFExporter
}

// Server is the dashboard: server-rendered pages, their forms and their
// static assets. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	d       Deps
	q       Queries
	cmd     *commands.Handlers
	sess    *sessions
	codec   *eventstore.Registry
	pages   map[string]*template.Template
	static  fs.FS
	handler http.Handler
}

// New builds a Server. It fails when a required dependency is missing, cfg
// is invalid or the embedded templates do not parse.
func New(deps Deps, cfg Config) (*Server, error) {
	switch {
	case deps.Commands == nil:
		return nil, errors.New("new web server: Commands is required")
	case deps.Queries == nil:
		return nil, errors.New("new web server: Queries is required")
	case deps.Events == nil:
		return nil, errors.New("new web server: Events is required")
	case deps.Consistency == nil:
		return nil, errors.New("new web server: Consistency is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new web server: %w", err)
	}
	cfg = cfg.withDefaults()
	sess, err := newSessions(cfg.SessionKey, cfg.SessionTTL)
	if err != nil {
		return nil, fmt.Errorf("new web server: %w", err)
	}
	codec, err := commands.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("new web server: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("new web server: %w", err)
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("new web server: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Clock, d: deps, q: deps.Queries, cmd: deps.Commands,
		sess: sess, codec: codec, pages: pages, static: static}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the handler of every page, form and asset. Mount it at
// "/" beside the JSON API (which owns /api/, /healthz, /readyz, /metrics
// and /openapi.json).
func (s *Server) Handler() http.Handler { return s.handler }

// user is the signed-in caller of a request.
type user struct {
	ID    string
	Admin bool
	CSRF  string
	sess  session
}

func (u *user) caller() queries.Caller { return queries.Caller{Principal: u.ID, Admin: u.Admin} }

// adminPrincipal is the principal of the bootstrap token (as on the API).
const adminPrincipal = "admin"

// principalOf resolves a token hash the way the API resolves a bearer
// token: the bootstrap token (compared in constant time) is the admin;
// any other token must be known and active.
func (s *Server) principalOf(ctx context.Context, hash string) (id string, admin bool, err error) {
	if s.cfg.BootstrapToken != "" &&
		subtle.ConstantTimeCompare([]byte(hash), []byte(domain.HashToken(s.cfg.BootstrapToken))) == 1 {
		return adminPrincipal, true, nil
	}
	a, err := s.q.Authenticate(ctx, hash)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return "", false, errNoSession
	case err != nil:
		return "", false, err
	case !a.Active:
		return "", false, errNoSession
	}
	return a.Principal, a.Admin, nil
}

// userOf returns the signed-in user of r, errNoSession when there is none.
func (s *Server) userOf(r *http.Request) (*user, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, errNoSession
	}
	ss, err := s.sess.verify(c.Value, s.now())
	if err != nil {
		return nil, err
	}
	id, admin, err := s.principalOf(r.Context(), ss.Hash)
	if err != nil {
		return nil, err
	}
	return &user{ID: id, Admin: admin, CSRF: s.sess.csrf(ss), sess: ss}, nil
}

// role returns u's role in a project: owner for admins, the membership
// otherwise, domain.ErrNotFound for a stranger.
func (s *Server) role(ctx context.Context, u *user, projectID string) (domain.Role, error) {
	if u.Admin {
		return domain.RoleOwner, nil
	}
	r, err := s.q.RoleOf(ctx, u.ID, projectID)
	if err != nil {
		return "", err
	}
	if !r.Valid() {
		return "", domain.ErrNotFound
	}
	return r, nil
}

// errForbidden is a member's role too weak for an action (403).
var errForbidden = errors.New("forbidden")

// authorize checks that u may act with at least min in projectID: a
// stranger gets domain.ErrNotFound (404), a weaker role errForbidden (403).
func (s *Server) authorize(ctx context.Context, u *user, projectID string, min domain.Role) error {
	r, err := s.role(ctx, u, projectID)
	if err != nil {
		return err
	}
	if !r.AtLeast(min) {
		return fmt.Errorf("this needs the %s role in the project; you are %s: %w", min, r, errForbidden)
	}
	return nil
}

// consistent waits, bounded, for the read models to reach a command's
// position, so that the page the form redirects to shows its effect.
func (s *Server) consistent(r *http.Request, res commands.Result) {
	if res.Position == (eventstore.Position{}) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ConsistencyTimeout)
	defer cancel()
	if err := s.d.Consistency.WaitFor(ctx, res.Position); err != nil {
		s.log.WarnContext(r.Context(), "read models late after a command", "err", err)
	}
}

// commandContext carries the user as the command's actor.
func commandContext(r *http.Request, u *user) context.Context {
	return commands.WithRequest(r.Context(), commands.Request{Actor: u.ID})
}

// routes builds the router.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.secure)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		u, _ := s.userOf(r)
		s.fail(w, r, u, fmt.Errorf("page %s: %w", r.URL.Path, domain.ErrNotFound))
	})
	r.Handle("/static/*", http.StripPrefix("/static/", s.assets()))
	r.Get("/login", s.loginForm)
	r.Post("/login", s.login)
	r.Post("/logout", s.action(s.logout))

	r.Get("/", s.page(s.overview))
	r.Get("/projects", s.page(s.projects))
	r.Post("/projects", s.action(s.createProject))
	r.Get("/projects/{id}", s.page(s.project))
	r.Post("/projects/{id}/members", s.action(s.grantMember))
	r.Post("/projects/{id}/members/revoke", s.action(s.revokeMember))
	r.Post("/projects/{id}/repositories", s.action(s.addRepository))
	r.Get("/repositories/{id}", s.page(s.repository))
	r.Post("/repositories/{id}/snapshots", s.multipartAction(s.uploadSnapshot))
	r.Post("/repositories/{id}/captures", s.action(s.captureGit))
	r.Post("/repositories/{id}/threat-profile", s.action(s.defineProfile))
	r.Post("/repositories/{id}/scans", s.action(s.requestScan))
	r.Get("/scans", s.page(s.scans))
	r.Get("/scans/{id}", s.page(s.scan))
	r.Post("/scans/{id}/cancel", s.action(s.cancelScan))
	r.Get("/scans/{id}/sarif", s.page(s.sarif))
	r.Get("/scans/{id}/replay", s.page(s.replay))
	r.Get("/issues", s.page(s.issues))
	r.Get("/issues/{id}", s.page(s.issue))
	r.Post("/issues/{id}/triage", s.action(s.triage))
	r.Post("/triage", s.action(s.bulkTriage))
	r.Post("/stream-token", s.action(s.streamToken))
	return r
}
