package llm

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// TokenPrefix starts every per-scan token: "vega-scan.<scan id>.<secret>".
// The scan ID tells the proxy which stream to fold; the secret (32 random
// bytes, base64url) is what authenticates, through its SHA-256 recorded in
// a ScanCredentialIssued event.
const TokenPrefix = "vega-scan."

// tokenSecretBytes is the entropy of a token's secret part.
const tokenSecretBytes = 32

// NewScanToken returns a fresh random token for scanID and its hex SHA-256
// (domain.HashToken), which is all that is ever stored.
func NewScanToken(scanID string) (token, hash string, err error) {
	if err := domain.ValidateID("scan_id", scanID); err != nil {
		return "", "", err
	}
	b := make([]byte, tokenSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("new scan token %s: %w", scanID, err)
	}
	token = TokenPrefix + scanID + "." + base64.RawURLEncoding.EncodeToString(b)
	return token, domain.HashToken(token), nil
}

// ParseScanToken returns the scan ID a token names, and false when the token
// does not have the shape of a per-scan token. It does not authenticate.
func ParseScanToken(token string) (scanID string, ok bool) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || len(rest)-i-1 != base64.RawURLEncoding.EncodedLen(tokenSecretBytes) {
		return "", false
	}
	scanID = rest[:i]
	if domain.ValidateID("scan_id", scanID) != nil {
		return "", false
	}
	return scanID, true
}

// Minter mints per-scan credentials: the worker calls it when it launches a
// runner. It is safe for concurrent use.
type Minter struct {
	scans *commands.Repository[*domain.Scan]
	clock func() time.Time
}

// NewMinter returns a Minter that records credentials on the scan streams of
// h, at the time clock gives (nil: time.Now).
func NewMinter(h *commands.Handlers, clock func() time.Time) *Minter {
	if clock == nil {
		clock = time.Now
	}
	return &Minter{scans: h.Streams.Scans, clock: clock}
}

// mintAttempts bounds the retries of Mint on a concurrent append to the
// scan stream (the runner may be writing progress at the same time).
const mintAttempts = commands.MaxAttempts

// Mint creates a token for the current attempt (fence) of scanID, valid
// until expiresAt (the scan's timeout), records its hash as a
// ScanCredentialIssued event on the scan's stream, and returns the token:
// the only time it exists outside the runner. The context must carry a
// commands.Request with an actor (commands.WithRequest). Revocation needs no
// call: the proxy refuses the token once the scan is requeued or reaches a
// terminal state. It returns the domain's errors (*domain.FenceError,
// domain.ErrConflict unless claimed or running, domain.ErrNotFound).
func (m *Minter) Mint(ctx context.Context, scanID string, fence uint64, expiresAt time.Time) (string, error) {
	token, hash, err := NewScanToken(scanID)
	if err != nil {
		return "", fmt.Errorf("mint scan token: %w", err)
	}
	for attempt := 1; ; attempt++ {
		s, version, err := m.scans.Load(ctx, scanID)
		if err != nil {
			return "", fmt.Errorf("mint scan token: %w", err)
		}
		events, err := s.IssueCredential(fence, hash, expiresAt.UTC(), m.clock().UTC())
		if err != nil {
			return "", fmt.Errorf("mint scan token for scan %s: %w", scanID, err)
		}
		_, err = m.scans.Save(ctx, scanID, s, version, events)
		if err == nil {
			return token, nil
		}
		if !errors.Is(err, eventstore.ErrConcurrency) || attempt == mintAttempts {
			return "", fmt.Errorf("mint scan token for scan %s: %w", scanID, err)
		}
	}
}

// MintScanToken is NewMinter(h, time.Now).Mint(ctx, scanID, fence,
// expiresAt).
func MintScanToken(ctx context.Context, h *commands.Handlers, scanID string, fence uint64, expiresAt time.Time) (string, error) {
	return NewMinter(h, nil).Mint(ctx, scanID, fence, expiresAt)
}
