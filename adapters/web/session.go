package web

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vega-sec/vega/queries"
)

// Sessions are stateless, HMAC-signed cookies:
//
//	vega_session = base64url(JSON{h: token hash, e: expiry, n: nonce}) "." base64url(HMAC-SHA-256(key, label + JSON))
//
// The cookie carries the SHA-256 hash of the API token the user pasted
// (never the token), so every request re-checks that token through the
// same lookup the API uses (Authenticate by hash): revoking or expiring the
// token ends its sessions at once, in every process. Signing out adds the
// session's nonce to an in-memory list until the cookie's own expiry, so
// the signed-out cookie is refused by this process even if a copy is
// replayed. The CSRF token of a session is HMAC(key, csrf label + nonce),
// compared in constant time.
const (
	// SessionCookie is the name of the session cookie.
	SessionCookie = "vega_session"
	// MinSessionKeyBytes is the shortest Config.SessionKey accepted.
	MinSessionKeyBytes = 32
	// MaxSessionCookieLength bounds what verify parses.
	MaxSessionCookieLength = 1024
	// MaxSignedOut bounds the signed-out sessions remembered; past it the
	// oldest expiring entries are dropped first (they expire soonest anyway).
	MaxSignedOut = 100000

	sessionLabel = "vega web session v1\n"
	csrfLabel    = "vega web csrf v1\n"
)

// session is a verified session cookie.
type session struct {
	Hash    string `json:"h"`
	Expires int64  `json:"e"` // Unix seconds
	Nonce   string `json:"n"`
}

// sessions signs and verifies session cookies and remembers signed-out
// ones. It is safe for concurrent use.
type sessions struct {
	key []byte
	ttl time.Duration

	mu  sync.Mutex
	out map[string]int64 // signed-out nonce -> expiry (Unix seconds)
}

func newSessions(key []byte, ttl time.Duration) (*sessions, error) {
	if len(key) == 0 {
		key = make([]byte, MinSessionKeyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate session key: %w", err)
		}
	}
	if len(key) < MinSessionKeyBytes {
		return nil, fmt.Errorf("session key: %d bytes, fewer than %d", len(key), MinSessionKeyBytes)
	}
	return &sessions{key: bytes.Clone(key), ttl: ttl, out: map[string]int64{}}, nil
}

func (s *sessions) mac(label string, payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(label))
	m.Write(payload)
	return m.Sum(nil)
}

// issue returns a new session for the token hash and its cookie value.
func (s *sessions) issue(hash string, now time.Time) (session, string, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return session{}, "", fmt.Errorf("issue session: %w", err)
	}
	ss := session{Hash: hash, Expires: now.Add(s.ttl).Unix(), Nonce: base64.RawURLEncoding.EncodeToString(nonce)}
	payload, err := json.Marshal(ss)
	if err != nil {
		return session{}, "", fmt.Errorf("issue session: %w", err)
	}
	enc := base64.RawURLEncoding
	return ss, enc.EncodeToString(payload) + "." + enc.EncodeToString(s.mac(sessionLabel, payload)), nil
}

var errNoSession = errors.New("no valid session")

// verify checks a cookie value's signature, expiry and sign-out.
func (s *sessions) verify(raw string, now time.Time) (session, error) {
	if raw == "" || len(raw) > MaxSessionCookieLength {
		return session{}, errNoSession
	}
	p64, s64, ok := strings.Cut(raw, ".")
	if !ok {
		return session{}, errNoSession
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	sig, err2 := enc.DecodeString(s64)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, s.mac(sessionLabel, payload)) {
		return session{}, errNoSession
	}
	var ss session
	if err := json.Unmarshal(payload, &ss); err != nil || ss.Hash == "" || ss.Nonce == "" {
		return session{}, errNoSession
	}
	if now.Unix() >= ss.Expires {
		return session{}, errNoSession
	}
	s.mu.Lock()
	_, gone := s.out[ss.Nonce]
	s.mu.Unlock()
	if gone {
		return session{}, errNoSession
	}
	return ss, nil
}

// signOut refuses the session from now on (until its expiry, after which
// verify refuses it anyway).
func (s *sessions) signOut(ss session, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.out) >= MaxSignedOut {
		for n, exp := range s.out {
			if exp <= now.Unix() {
				delete(s.out, n)
			}
		}
		for n := range s.out { // still full: drop arbitrary entries
			if len(s.out) < MaxSignedOut {
				break
			}
			delete(s.out, n)
		}
	}
	s.out[ss.Nonce] = ss.Expires
}

// csrf returns the CSRF token of a session.
func (s *sessions) csrf(ss session) string {
	return base64.RawURLEncoding.EncodeToString(s.mac(csrfLabel, []byte(ss.Nonce)))
}

// checkCSRF compares a presented CSRF token with the session's in constant
// time.
func (s *sessions) checkCSRF(ss session, presented string) bool {
	want := s.csrf(ss)
	return hmac.Equal([]byte(presented), []byte(want))
}

// Stream tokens, in the API's format (adapters/http streamtoken.go):
// "vst_" + base64url(JSON grant) + "." + base64url(HMAC-SHA-256(key,
// "vega stream token v1\n" + JSON grant)).
const (
	streamTokenPrefix = "vst_"
	streamTokenLabel  = "vega stream token v1\n"
	// MinStreamTokenKeyBytes is the shortest key HMACStreamTokens accepts
	// (the API's minimum).
	MinStreamTokenKeyBytes = 32
)

// HMACStreamTokens mints stream tokens that the JSON API's SSE routes
// accept when it is configured with the same key (httpapi.Config.
// StreamTokenKey) — they share the token format. It is safe for concurrent
// use.
type HMACStreamTokens struct {
	key []byte
	ttl time.Duration
}

var _ StreamTokens = (*HMACStreamTokens)(nil)

// NewHMACStreamTokens returns a minter with key (at least
// MinStreamTokenKeyBytes) whose tokens last ttl.
func NewHMACStreamTokens(key []byte, ttl time.Duration) (*HMACStreamTokens, error) {
	if len(key) < MinStreamTokenKeyBytes {
		return nil, fmt.Errorf("new stream tokens: key has %d bytes, fewer than %d", len(key), MinStreamTokenKeyBytes)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("new stream tokens: ttl %s is not positive", ttl)
	}
	return &HMACStreamTokens{key: bytes.Clone(key), ttl: ttl}, nil
}

// Mint returns a token for c to the feed of scanID ("" for the activity
// feed), valid for the configured TTL from now. The caller must have
// checked that c may see the scan.
func (t *HMACStreamTokens) Mint(c queries.Caller, scanID string, now time.Time) (string, time.Time, error) {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return "", time.Time{}, fmt.Errorf("mint stream token: %w", err)
	}
	exp := now.Add(t.ttl).Truncate(time.Second)
	payload, err := json.Marshal(struct {
		Principal string `json:"p"`
		Admin     bool   `json:"a,omitempty"`
		ScanID    string `json:"s,omitempty"`
		Expires   int64  `json:"e"`
		Nonce     string `json:"n"`
	}{c.Principal, c.Admin, scanID, exp.Unix(), base64.RawURLEncoding.EncodeToString(nonce)})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("mint stream token: %w", err)
	}
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(streamTokenLabel))
	m.Write(payload)
	enc := base64.RawURLEncoding
	return streamTokenPrefix + enc.EncodeToString(payload) + "." + enc.EncodeToString(m.Sum(nil)), exp.UTC(), nil
}
