package httpapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Stream tokens are stateless: "vst_" + base64url(JSON grant) + "." +
// base64url(HMAC-SHA-256(key, "vega stream token v1\n" + JSON grant)). Any
// API process with the same key accepts them until they expire.
const (
	// StreamTokenPrefix starts every stream token.
	StreamTokenPrefix = "vst_"
	// MinStreamTokenKeyBytes is the shortest Config.StreamTokenKey accepted.
	MinStreamTokenKeyBytes = 32
	// MaxStreamTokenLength bounds what verify parses.
	MaxStreamTokenLength = 1024
	streamTokenLabel     = "vega stream token v1\n"
)

// StreamGrant is what a stream token grants: Principal (with its admin
// flag at minting time) may follow the live feed of scan ScanID, or the
// activity feed when ScanID is "", until Expires.
type StreamGrant struct {
	Principal string `json:"p"`
	Admin     bool   `json:"a,omitempty"`
	ScanID    string `json:"s,omitempty"`
	Expires   int64  `json:"e"` // Unix seconds
	Nonce     string `json:"n"`
}

// streamTokens mints and verifies stream tokens with one key. It is safe
// for concurrent use (it holds no mutable state).
type streamTokens struct {
	key []byte
	ttl time.Duration
}

func newStreamTokens(key []byte, ttl time.Duration) (*streamTokens, error) {
	if len(key) == 0 {
		key = make([]byte, MinStreamTokenKeyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate stream token key: %w", err)
		}
	}
	if len(key) < MinStreamTokenKeyBytes {
		return nil, fmt.Errorf("stream token key: %d bytes, fewer than %d", len(key), MinStreamTokenKeyBytes)
	}
	return &streamTokens{key: bytes.Clone(key), ttl: ttl}, nil
}

func (t *streamTokens) sign(payload []byte) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(streamTokenLabel))
	m.Write(payload)
	return m.Sum(nil)
}

// mint returns a token for principal to the feed of scanID ("" for the
// activity feed), valid for the configured TTL from now.
func (t *streamTokens) mint(p *Principal, scanID string, now time.Time) (string, time.Time, error) {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return "", time.Time{}, fmt.Errorf("mint stream token: %w", err)
	}
	exp := now.Add(t.ttl).Truncate(time.Second)
	g := StreamGrant{Principal: p.ID, Admin: p.Admin, ScanID: scanID, Expires: exp.Unix(),
		Nonce: base64.RawURLEncoding.EncodeToString(nonce)}
	payload, err := json.Marshal(g)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("mint stream token: %w", err)
	}
	enc := base64.RawURLEncoding
	return StreamTokenPrefix + enc.EncodeToString(payload) + "." + enc.EncodeToString(t.sign(payload)), exp.UTC(), nil
}

// verify checks a token's signature and expiry and returns its grant. Any
// failure is ErrUnauthenticated, with no detail of which check failed
// beyond expiry.
func (t *streamTokens) verify(tok string, now time.Time) (StreamGrant, error) {
	bad := errorf(ErrUnauthenticated, "the access token is not valid")
	rest, ok := strings.CutPrefix(tok, StreamTokenPrefix)
	if !ok || len(tok) > MaxStreamTokenLength {
		return StreamGrant{}, bad
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok {
		return StreamGrant{}, bad
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	sig, err2 := enc.DecodeString(s64)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, t.sign(payload)) {
		return StreamGrant{}, bad
	}
	var g StreamGrant
	if err := json.Unmarshal(payload, &g); err != nil || g.Principal == "" {
		return StreamGrant{}, bad
	}
	if !now.Before(time.Unix(g.Expires, 0)) {
		return StreamGrant{}, errorf(ErrUnauthenticated, "the access token has expired")
	}
	return g, nil
}
