package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/projections"
	"github.com/vega-sec/vega/queries"
)

// timeLayout is how the API writes times: RFC 3339 UTC, as the query side
// does.
const timeLayout = time.RFC3339Nano

// stamp formats t as the API does ("" for the zero time). Stores keep
// microseconds, so t is truncated to them, as read models show it.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Truncate(time.Microsecond).Format(timeLayout)
}

// commandContext carries the request's identity into a command: the
// principal as actor and the request ID as correlation ID.
func commandContext(r *http.Request, p *Principal) context.Context {
	return commands.WithRequest(r.Context(), commands.Request{Actor: p.ID, CorrelationID: RequestIDFromContext(r.Context())})
}

// consistent waits, at most Config.ConsistencyTimeout, for the read models
// to reach what a command wrote, so that the answer and any client's next
// read show it. On timeout it logs and returns: the command succeeded.
// It reports whether the read models reached the position (true also when
// the command appended nothing).
func (s *Server) consistent(r *http.Request, res commands.Result) bool {
	if res.Position.IsZero() {
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ConsistencyTimeout)
	defer cancel()
	if err := s.wait.WaitFor(ctx, res.Position); err != nil {
		s.log.WarnContext(r.Context(), "read models did not reach a command's position in time; answering anyway",
			"request_id", RequestIDFromContext(r.Context()), "position", res.Position.String(), "stream", string(res.Stream), "err", err)
		return false
	}
	return true
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the store and the bus answer and no projection
// failed or lags more than Config.ReadyMaxLag; 503 with the reasons
// otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	var reasons []string
	if _, err := s.events.Head(ctx); err != nil {
		s.log.WarnContext(ctx, "readyz: event store", "err", err)
		reasons = append(reasons, "event store does not answer")
	}
	if s.bus != nil {
		if err := s.bus(ctx); err != nil {
			s.log.WarnContext(ctx, "readyz: bus", "err", err)
			reasons = append(reasons, "message bus does not answer")
		}
	}
	if s.proj != nil {
		st, err := s.proj.Status(ctx)
		if err != nil {
			s.log.WarnContext(ctx, "readyz: projections", "err", err)
			reasons = append(reasons, "projection status unavailable")
		}
		for _, p := range st {
			switch {
			case p.State == projections.StateFailed:
				reasons = append(reasons, "projection "+p.Name+" failed")
			case p.LagSeconds > s.cfg.ReadyMaxLag.Seconds():
				reasons = append(reasons, "projection "+p.Name+" lags "+time.Duration(p.LagSeconds*float64(time.Second)).Round(time.Second).String())
			}
		}
	}
	if len(reasons) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reasons": reasons,
			"error": ErrorDetail{Code: CodeUnavailable, Message: strings.Join(reasons, "; ")}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Access.

type createTokenRequest struct {
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	ExpiresAt time.Time `json:"expires_at"`
}

type tokenResponse struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Principal string `json:"principal"`
	Admin     bool   `json:"admin"`
	ExpiresAt string `json:"expires_at"`
	Token     string `json:"token"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	var req createTokenRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	res, err := s.cmd.IssueToken.Handle(commandContext(r, p), commands.IssueToken{Name: req.Name, Admin: req.Admin, ExpiresAt: req.ExpiresAt})
	if err != nil {
		return err
	}
	s.consistent(r, res.Result)
	t := res.Token
	writeJSON(w, http.StatusCreated, tokenResponse{ID: t.ID, Name: t.Name, Principal: t.Principal, Admin: t.Admin,
		ExpiresAt: stamp(t.ExpiresAt), Token: res.Secret})
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	page, err := s.q.ListTokens(r.Context(), p.caller(), o)
	if errors.Is(err, queries.ErrForbidden) {
		return errorf(ErrForbidden, "this route is for admins only")
	}
	return answer(w, http.StatusOK, page, err)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	res, err := s.cmd.RevokeToken.Handle(commandContext(r, p), commands.RevokeToken{TokenID: chi.URLParam(r, "token_id")})
	if errors.Is(err, domain.ErrNotFound) {
		return notFound("token")
	}
	if err != nil {
		return err
	}
	s.consistent(r, res.Result)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type streamTokenRequest struct {
	ScanID string `json:"scan_id"`
}

type streamTokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

// createStreamToken mints a stream token for one scan the caller can see,
// or for the activity feed.
func (s *Server) createStreamToken(w http.ResponseWriter, r *http.Request, p *Principal) error {
	var req streamTokenRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.ScanID != "" {
		if err := domain.ValidateID("scan_id", req.ScanID); err != nil {
			return err
		}
		if _, err := s.q.Scan(r.Context(), p.caller(), req.ScanID); err != nil {
			return hideNotFound(err, "scan")
		}
	}
	tok, exp, err := s.tokens.mint(p, req.ScanID, s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, streamTokenResponse{Token: tok, ExpiresAt: stamp(exp)})
	return nil
}

// answer writes v with status, or returns err.
func answer(w http.ResponseWriter, status int, v any, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, status, v)
	return nil
}

// hideNotFound turns any not-found error into the fixed 404 of what.
func hideNotFound(err error, what string) error {
	if errors.Is(err, domain.ErrNotFound) {
		return notFound(what)
	}
	return err
}
