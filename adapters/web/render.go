package web

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/domain"
)

//go:embed templates/*.html static/*
var assets embed.FS

// pageNames are the page templates; each is parsed with layout.html.
var pageNames = []string{"login", "error", "overview", "projects", "project", "repository", "scans", "scan", "replay", "issues", "issue"}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// sevIcon gives each severity a text symbol, so that colour is never its
// only signal.
var sevIcon = map[string]string{"critical": "⬛", "high": "▲", "medium": "◆", "low": "▽", "info": "○"}

var funcs = template.FuncMap{
	"sevIcon":    func(s any) string { return sevIcon[fmt.Sprint(s)] },
	"severities": domain.Severities,
	"triages":    domain.Triages,
	"categories": domain.Categories,
	"states":     domain.ScanStates,
	"when":       when,
	"short":      func(s string) string { return shortID(s) },
	"pct":        func(n int) int { return max(0, min(100, n)) },
	"has":        func(list []string, v string) bool { return contains(list, v) },
	"join":       strings.Join,
	"label":      func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"sevCount":   func(c domain.SeverityCounts, s any) int { return sevCount(c, domain.Severity(fmt.Sprint(s))) },
	"query":      query,
	"add":        func(a, b int64) int64 { return a + b },
	"terminal":   func(s domain.ScanState) bool { return s.Terminal() },
	"dict":       dict,
	"splitList":  split,
	"list":       func(v ...string) []string { return v },
	"hasCat":     func(cs []domain.Category, c domain.Category) bool { return contains(catStrings(cs), string(c)) },
	"scanAttrs":  scanAttrsOf,
}

func catStrings(cs []domain.Category) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

// scanAttrs are the data attributes of a Scan page's <main>: the live
// module and tests read the status there.
type scanAttrs struct {
	ID        string
	Status    domain.ScanState
	LastEvent int64
}

func scanAttrsOf(data any) *scanAttrs {
	if v, ok := data.(scanView); ok {
		return &scanAttrs{ID: v.Scan.ID, Status: v.Scan.Status, LastEvent: v.LastEvent}
	}
	return nil
}

// when shows an RFC 3339 time as "2006-01-02 15:04:05 UTC"; "" stays "—".
func when(s string) string {
	if s == "" {
		return "—"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func shortID(s string) string {
	if len(s) > 10 {
		return s[len(s)-10:]
	}
	return s
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func sevCount(c domain.SeverityCounts, s domain.Severity) int {
	switch s {
	case domain.SeverityCritical:
		return c.Critical
	case domain.SeverityHigh:
		return c.High
	case domain.SeverityMedium:
		return c.Medium
	case domain.SeverityLow:
		return c.Low
	case domain.SeverityInfo:
		return c.Info
	}
	return 0
}

// query returns base with the query parameters kv (pairs) set over those
// of vals; an empty value removes the parameter. It keeps filters in links.
func query(base string, vals url.Values, kv ...string) string {
	v := url.Values{}
	for k, x := range vals {
		v[k] = append([]string(nil), x...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	if e := v.Encode(); e != "" {
		return base + "?" + e
	}
	return base
}

func dict(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return m
}

// view is what every page template gets.
type view struct {
	Title  string
	Nav    string
	User   *user
	Flash  string
	Status int
	// Live is the SSE feed the page's module follows ("" for none), with
	// its stream token.
	Live        string
	StreamToken string
	Data        any
}

// render writes a page. Pages are rendered to a buffer first, so a
// template failure is a clean 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	v.Status = status
	if v.Flash == "" {
		v.Flash = s.takeFlash(w, r)
	}
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// pageFunc serves a page for a signed-in user; a returned error becomes
// an error page.
type pageFunc func(w http.ResponseWriter, r *http.Request, u *user) error

// page wraps a GET handler: without a session it redirects to /login
// (remembering where to come back to).
func (s *Server) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.userOf(r)
		if err != nil {
			if !errors.Is(err, errNoSession) {
				s.fail(w, r, nil, err)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err := fn(w, r, u); err != nil {
			s.fail(w, r, u, err)
		}
	}
}

// action wraps a form POST: it needs a session (else /login), a
// same-origin request and the session's CSRF token (form field "csrf" or
// header X-CSRF-Token), compared in constant time.
func (s *Server) action(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.formUser(w, r)
		if !ok {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		tok := r.Header.Get("X-CSRF-Token")
		if tok == "" {
			tok = r.PostFormValue("csrf")
		}
		if !s.sess.checkCSRF(u.sess, tok) {
			s.fail(w, r, u, errBadCSRF)
			return
		}
		if err := fn(w, r, u); err != nil {
			s.fail(w, r, u, err)
		}
	}
}

// formUser returns the user of a form POST, which must be same-origin and
// carry a session. When ok is false it has answered the request: a
// cross-origin form fails as forbidden, a missing session redirects to
// /login.
func (s *Server) formUser(w http.ResponseWriter, r *http.Request) (u *user, ok bool) {
	if !sameOrigin(r) {
		s.fail(w, r, nil, fmt.Errorf("cross-origin form: %w", errForbidden))
		return nil, false
	}
	u, err := s.userOf(r)
	if err != nil {
		if !errors.Is(err, errNoSession) {
			s.fail(w, r, nil, err)
			return nil, false
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil, false
	}
	return u, true
}

var errBadCSRF = fmt.Errorf("the form's CSRF token is missing or wrong: reload the page and try again: %w", errForbidden)

// multipartFunc serves a multipart form POST whose CSRF field was checked;
// mr is positioned after it.
type multipartFunc func(w http.ResponseWriter, r *http.Request, u *user, mr *multipart.Reader) error

// UploadTimeout bounds reading an upload form's body, as the API bounds its
// uploads (httpapi.DefaultUploadTimeout).
const UploadTimeout = 15 * time.Minute

// multipartAction wraps a file upload form like action, streaming: the
// form's first part must be its "csrf" field, checked before any file
// byte is read.
func (s *Server) multipartAction(fn multipartFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.formUser(w, r)
		if !ok {
			return
		}
		// A client that trickles its body cannot hold the request forever:
		// the same bound as the API's uploads.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(UploadTimeout))
		mr, err := r.MultipartReader()
		if err != nil {
			s.fail(w, r, u, &domain.InvalidArgumentError{Field: "file", Reason: "send the form as multipart/form-data"})
			return
		}
		part, err := mr.NextPart()
		if err != nil || part.FormName() != "csrf" {
			s.fail(w, r, u, errBadCSRF)
			return
		}
		tok, err := io.ReadAll(io.LimitReader(part, 256))
		if err != nil || !s.sess.checkCSRF(u.sess, string(tok)) {
			s.fail(w, r, u, errBadCSRF)
			return
		}
		if err := fn(w, r, u, mr); err != nil {
			s.fail(w, r, u, err)
		}
	}
}

// sameOrigin refuses requests whose Origin (or, without it, Referer)
// names another host: a second line behind SameSite=Strict and CSRF
// tokens.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return u.Host == r.Host
}

// errorView is the data of the error page.
type errorView struct {
	Heading, Message string
}

// fail answers err as an error page: 404 for domain.ErrNotFound (also for
// objects of projects the caller cannot see), 403 for a weak role or bad
// CSRF, 400 for invalid input, 409 for a conflict, 413 and 415 for refused
// uploads, else 500 (logged, not shown).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, u *user, err error) {
	status, heading, msg := http.StatusInternalServerError, "Something went wrong", "The server could not answer. Try again later."
	var inv *domain.InvalidArgumentError
	switch {
	case errors.Is(err, domain.ErrNotFound):
		status, heading, msg = http.StatusNotFound, "Not found", "There is nothing here, or you do not have access to it."
	case errors.Is(err, errForbidden):
		status, heading, msg = http.StatusForbidden, "Not allowed", strings.TrimSuffix(err.Error(), ": "+errForbidden.Error())
	case errors.As(err, &inv):
		status, heading, msg = http.StatusBadRequest, "Check the form", fmt.Sprintf("%s: %s", inv.Field, inv.Reason)
	case errors.Is(err, domain.ErrInvalidArgument):
		status, heading, msg = http.StatusBadRequest, "Check the form", err.Error()
	case errors.Is(err, snapshot.ErrTooLarge):
		status, heading, msg = http.StatusRequestEntityTooLarge, "Too large", err.Error()
	case errors.Is(err, snapshot.ErrUnsupportedMediaType):
		status, heading, msg = http.StatusUnsupportedMediaType, "Unsupported file", err.Error()
	case errors.Is(err, domain.ErrConflict):
		status, heading, msg = http.StatusConflict, "Not possible now", err.Error()
	default:
		s.log.ErrorContext(r.Context(), "web request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	s.render(w, r, status, "error", view{Title: heading, User: u, Data: errorView{Heading: heading, Message: msg}})
}

// secure sets the security headers of every answer.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// assets serves the embedded static files.
func (s *Server) assets() http.Handler {
	fsrv := http.FileServer(http.FS(s.static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		if path.Ext(r.URL.Path) == ".js" {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		fsrv.ServeHTTP(w, r)
	})
}

// flashCookie carries one message to the page a form redirects to.
const flashCookie = "vega_flash"

// MaxFlashLength bounds a flash message.
const MaxFlashLength = 300

func (s *Server) flash(w http.ResponseWriter, msg string) {
	if len(msg) > MaxFlashLength {
		msg = msg[:MaxFlashLength]
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(msg), Path: "/", MaxAge: 60,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
}

func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode})
	msg, err := url.QueryUnescape(c.Value)
	if err != nil {
		return ""
	}
	return msg
}

// redirect answers a form POST with 303 to a local path, with a flash.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, to, msg string) {
	if msg != "" {
		s.flash(w, msg)
	}
	http.Redirect(w, r, localPath(to, "/"), http.StatusSeeOther)
}

// localPath returns p when it is a path on this site ("/…", not "//…"),
// else def: redirects never leave the site.
func localPath(p, def string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return def
	}
	u, err := url.Parse(p)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return def
	}
	return p
}
