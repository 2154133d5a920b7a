package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

// AdminPrincipal is the principal of the bootstrap token.
const AdminPrincipal = "admin"

// Principal is the authenticated caller of a request.
type Principal struct {
	// ID is the principal: "admin" for the bootstrap token, else the
	// token's principal.
	ID string
	// Admin is true for installation admins: they see every project.
	Admin bool
	// Stream is set when the caller authenticated with a stream token: the
	// grant it carries (one scan's feed, or the activity feed).
	Stream *StreamGrant
}

// caller returns the principal as the query service's Caller.
func (p *Principal) caller() queries.Caller { return queries.Caller{Principal: p.ID, Admin: p.Admin} }

type principalKey struct{}

// principalBox is put in the context by the outermost middleware and
// filled by authentication, so that the access log, which runs outside,
// can name the principal.
type principalBox struct{ p *Principal }

// PrincipalFromContext returns the authenticated principal of a request,
// or nil.
func PrincipalFromContext(ctx context.Context) *Principal {
	if b, ok := ctx.Value(principalKey{}).(*principalBox); ok {
		return b.p
	}
	return nil
}

func withPrincipalBox(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, &principalBox{})))
	})
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// isSSE reports whether the client asks for an event stream.
func isSSE(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// authenticate resolves the caller of every /api/v1 request: the bootstrap
// token (compared in constant time) is the admin principal; any other
// bearer token is looked up by its SHA-256 hash through the query side and
// must be active. With streamTokens, an SSE request without a bearer token
// may present ?access_token= (a stream token); the handler then checks the
// grant against what it serves.
func (s *Server) authenticate(streamTokens bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := s.principalOf(r, streamTokens)
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vega"`)
				writeError(w, r, s.log, err)
				return
			}
			if b, ok := r.Context().Value(principalKey{}).(*principalBox); ok {
				b.p = p
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (s *Server) principalOf(r *http.Request, streamTokens bool) (*Principal, error) {
	tok, ok := bearer(r)
	if !ok {
		if at := r.URL.Query().Get("access_token"); at != "" && streamTokens && isSSE(r) {
			g, err := s.tokens.verify(at, s.now())
			if err != nil {
				return nil, err
			}
			return &Principal{ID: g.Principal, Admin: g.Admin, Stream: &g}, nil
		}
		return nil, errorf(ErrUnauthenticated, "an Authorization: Bearer token is required")
	}
	if s.cfg.BootstrapToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.BootstrapToken)) == 1 {
		return &Principal{ID: AdminPrincipal, Admin: true}, nil
	}
	a, err := s.q.Authenticate(r.Context(), domain.HashToken(tok))
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return nil, errorf(ErrUnauthenticated, "the token is not valid")
	case err != nil:
		return nil, err
	case !a.Active:
		return nil, errorf(ErrUnauthenticated, "the token is revoked or expired")
	}
	return &Principal{ID: a.Principal, Admin: a.Admin}, nil
}

// requireAdmin refuses non-admins with 403.
func requireAdmin(p *Principal) error {
	if !p.Admin {
		return errorf(ErrForbidden, "this route is for admins only")
	}
	return nil
}

// authorize checks that p may act with at least role min in project: admins
// may do anything; a non-member gets a 404 naming what (the object it asked
// for, whose existence it must not learn); a member with a weaker role a
// 403.
func (s *Server) authorize(ctx context.Context, p *Principal, projectID, what string, min domain.Role) error {
	if p.Admin {
		return nil
	}
	role, err := s.q.RoleOf(ctx, p.ID, projectID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return notFound(what)
	case err != nil:
		return err
	case !role.Valid():
		return notFound(what)
	case !role.AtLeast(min):
		return errorf(ErrForbidden, "this needs the "+string(min)+" role in the project; you are "+string(role))
	}
	return nil
}
