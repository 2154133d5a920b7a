// Package web is Vega's dashboard: server-rendered html/template pages
// and their forms, with small hand-written ES modules (no build step, no
// framework) that add live updates over the JSON API's SSE feeds, bulk
// selection and the replay slider. Templates and assets are embedded in
// the binary; every page works without JavaScript except the live updates.
//
// The pages read the same query service as the JSON API (never their own
// SQL) and authorize exactly as it does: every read is scoped by the
// caller, so another project's object is a 404 page; a form POST first
// resolves the object's project and checks the caller's role (viewer
// reads; editor adds repositories, uploads, sets profiles, scans, cancels
// and triages; owner manages members), so a stranger gets 404 and a weaker
// role 403. Installation admins see and do everything.
//
// # Sessions
//
// Signing in (POST /login, form field "token") turns a pasted API token
// into a stateless, HMAC-SHA-256-signed session cookie (HttpOnly,
// SameSite=Strict, Secure when configured, Max-Age = Config.SessionTTL)
// carrying the token's SHA-256 hash, an expiry and a random nonce — never
// the token. Every request re-checks the hash through the same lookup the
// API authenticates bearer tokens with, so revoking or expiring the token
// ends its sessions at once, in every process; a session also ends at its
// own expiry, and signing out (POST /logout) refuses its nonce in this
// process until then. Stateless cookies need no session table and survive
// restarts when Config.SessionKey is set (a random key otherwise).
//
// # CSRF
//
// Every form POST but the sign-in carries the session's CSRF token (form
// field "csrf", or header X-CSRF-Token for the modules' fetches):
// HMAC(key, nonce), compared in constant time. A request whose Origin (or
// Referer) names another host is refused too; SameSite=Strict is the third
// line. File uploads stream: the multipart form's first part must be the
// token, checked before any file byte is read.
//
// # Live updates
//
// Pages that follow a feed carry data-live (the API's SSE URL) and a
// short-lived stream token minted through StreamTokens; the module opens
// an EventSource with ?access_token=, resumes with Last-Event-ID on the
// browser's own reconnects, and after a refused reconnect (an expired
// token) mints a fresh token (POST /stream-token) and reopens with
// ?after=<last id>, skipping ids it has shown.
package web
