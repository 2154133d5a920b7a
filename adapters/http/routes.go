package httpapi

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// apiFunc is a handler of an authenticated route; a returned error is
// answered by writeError.
type apiFunc func(w http.ResponseWriter, r *http.Request, p *Principal) error

// api adapts an apiFunc to the router.
func (s *Server) api(fn apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := PrincipalFromContext(r.Context())
		if p == nil {
			writeError(w, r, s.log, ErrUnauthenticated)
			return
		}
		if p.Stream != nil && !isSSE(r) {
			// Stream tokens open SSE feeds only.
			writeError(w, r, s.log, errorf(ErrUnauthenticated, "an access token is valid for event streams only"))
			return
		}
		if err := fn(w, r, p); err != nil {
			writeError(w, r, s.log, err)
		}
	}
}

// routes builds the router. Every route of API.md that this package
// serves is here; openapi_test.go checks it against the OpenAPI document.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(requestID, withPrincipalBox, s.observe)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		// Everything outside the API is the dashboard's, when there is one.
		if s.pages != nil && r.URL.Path != "/api" && !strings.HasPrefix(r.URL.Path, "/api/") {
			s.pages.ServeHTTP(w, r)
			return
		}
		writeError(w, r, s.log, notFound("route"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{Code: "method_not_allowed",
			Message: "the route does not allow " + r.Method}})
	})

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{}))
	r.Get("/openapi.json", serveOpenAPI)

	r.Route("/api/v1", func(r chi.Router) {
		// The two feeds accept a stream token (?access_token=) when they
		// are asked for an event stream; every other route needs a bearer.
		r.Group(func(r chi.Router) {
			r.Use(timeout(s.cfg.RequestTimeout), s.authenticate(true))
			r.Get("/scans/{scan_id}/events", s.api(s.scanEvents))
			r.Get("/events", s.api(s.activityEvents))
		})
		// Uploads stream large bodies: they get Config.UploadTimeout
		// instead of RequestTimeout.
		r.Group(func(r chi.Router) {
			r.Use(timeout(s.cfg.UploadTimeout), s.authenticate(false))
			r.Post("/repositories/{repository_id}/snapshots", s.api(s.createSnapshot))
			r.Post("/scans/{scan_id}/sarif", s.api(s.uploadSARIF))
		})
		r.Group(func(r chi.Router) {
			r.Use(timeout(s.cfg.RequestTimeout), s.authenticate(false))

			r.Post("/tokens", s.api(s.createToken))
			r.Get("/tokens", s.api(s.listTokens))
			r.Delete("/tokens/{token_id}", s.api(s.revokeToken))
			r.Post("/stream-tokens", s.api(s.createStreamToken))

			r.Post("/projects", s.api(s.createProject))
			r.Get("/projects", s.api(s.listProjects))
			r.Get("/projects/{project_id}", s.api(s.getProject))
			r.Post("/projects/{project_id}/archive", s.api(s.archiveProject))
			r.Get("/projects/{project_id}/members", s.api(s.listMembers))
			r.Post("/projects/{project_id}/members", s.api(s.grantMember))
			r.Delete("/projects/{project_id}/members/{principal}", s.api(s.revokeMember))
			r.Post("/projects/{project_id}/repositories", s.api(s.addRepository))
			r.Get("/projects/{project_id}/repositories", s.api(s.listRepositories))

			r.Get("/repositories/{repository_id}", s.api(s.getRepository))
			r.Delete("/repositories/{repository_id}", s.api(s.removeRepository))
			r.Get("/repositories/{repository_id}/snapshots", s.api(s.listSnapshots))
			r.Get("/snapshots/{snapshot_id}", s.api(s.getSnapshot))
			r.Put("/repositories/{repository_id}/threat-profile", s.api(s.defineThreatProfile))
			r.Get("/repositories/{repository_id}/threat-profile", s.api(s.getThreatProfile))
			r.Post("/repositories/{repository_id}/scans", s.api(s.requestScan))
			r.Get("/repositories/{repository_id}/scans", s.api(s.listScans))

			r.Get("/scans/{scan_id}", s.api(s.getScan))
			r.Post("/scans/{scan_id}/cancel", s.api(s.cancelScan))
			r.Get("/scans/{scan_id}/findings", s.api(s.listFindings))
			r.Get("/scans/{scan_id}/replay", s.api(s.replayScan))
			r.Get("/scans/{scan_id}/diff", s.api(s.scanDiff))
			r.Get("/scans/{scan_id}/sarif", s.api(s.scanSARIF))

			r.Get("/repositories/{repository_id}/issues", s.api(s.listIssues))
			r.Get("/issues/{issue_id}", s.api(s.getIssue))
			r.Post("/issues/{issue_id}/triage", s.api(s.triageIssue))

			r.Get("/dashboard", s.api(s.dashboard))
			r.Get("/audit/verify", s.api(s.verifyAudit))
		})
	})
	return r
}
