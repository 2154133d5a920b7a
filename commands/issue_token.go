package commands

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/vega-sec/vega/domain"
)

// Token secrets: TokenPrefix followed by TokenSecretBytes random bytes from
// crypto/rand, base64url without padding (43 characters).
const (
	TokenPrefix      = "vega_"
	TokenSecretBytes = 32
)

// IssueToken issues an API token. The secret is generated here, returned
// once in the result, and never stored: the event keeps only
// domain.HashToken(secret).
type IssueToken struct {
	// Principal owns the token; empty: a new principal whose ID is the
	// token's ID (DESIGN: "a ULID for each token's principal").
	Principal string
	// TokenID is the token's ID; empty: a fresh ULID.
	TokenID   string
	Name      string
	Admin     bool
	ExpiresAt time.Time // zero: never expires
}

// IssueTokenResult is the result of IssueToken. Secret is the only copy
// of the token's secret: show it to the caller once and drop it.
type IssueTokenResult struct {
	TokenResult
	Secret string
}

type issueTokenHandler struct{ d *deps }

// Handle generates the secret and decides domain.Access.IssueToken on the
// principal's access stream (started by its first token). It returns an
// *domain.InvalidArgumentError naming "principal", "id", "name" or
// "expires_at", and domain.ErrConflict for a taken token ID.
func (h issueTokenHandler) Handle(ctx context.Context, cmd IssueToken) (IssueTokenResult, error) {
	tokenID := h.d.idOr(cmd.TokenID)
	principal := cmd.Principal
	if principal == "" {
		principal = tokenID
	}
	secret, err := newTokenSecret()
	if err != nil {
		return IssueTokenResult{}, fmt.Errorf("issue token: %w", err)
	}
	spec := domain.TokenSpec{ID: tokenID, Name: cmd.Name, Admin: cmd.Admin, Hash: domain.HashToken(secret), ExpiresAt: cmd.ExpiresAt.UTC()}
	a, version, err := h.d.Access.Load(ctx, principal)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		a, version = new(domain.Access), 0
	case err != nil:
		return IssueTokenResult{}, fmt.Errorf("issue token for %s: %w", principal, err)
	}
	events, err := a.IssueToken(principal, spec, h.d.now())
	if err != nil {
		return IssueTokenResult{}, fmt.Errorf("issue token for %s: %w", principal, err)
	}
	res, err := h.d.Access.Save(ctx, principal, a, version, events)
	if err != nil {
		return IssueTokenResult{}, fmt.Errorf("issue token for %s: %w", principal, err)
	}
	t, _ := a.Token(tokenID)
	return IssueTokenResult{TokenResult: TokenResult{Result: res, Token: t}, Secret: secret}, nil
}

func newTokenSecret() (string, error) {
	b := make([]byte, TokenSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token secret: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}
