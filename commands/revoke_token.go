package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/vega-sec/vega/domain"
)

// RevokeToken revokes an API token.
type RevokeToken struct {
	// Principal owns the token; empty: the token's ID, as for a token that
	// IssueToken issued without a principal.
	Principal string
	TokenID   string
}

type revokeTokenHandler struct{ d *deps }

// Handle decides domain.Access.RevokeToken. It returns domain.ErrNotFound
// for an unknown principal or token and domain.ErrConflict for a token
// already revoked.
func (h revokeTokenHandler) Handle(ctx context.Context, cmd RevokeToken) (TokenResult, error) {
	if err := domain.ValidateID("token_id", cmd.TokenID); err != nil {
		return TokenResult{}, fmt.Errorf("revoke token: %w", err)
	}
	principal := cmd.Principal
	if principal == "" {
		principal = cmd.TokenID
	}
	a, res, err := update(ctx, h.d, h.d.Access, "revoke token of", principal,
		func(a *domain.Access, now time.Time) ([]domain.Event, error) { return a.RevokeToken(cmd.TokenID, now) })
	if err != nil {
		return TokenResult{}, err
	}
	t, _ := a.Token(cmd.TokenID)
	return TokenResult{Result: res, Token: t}, nil
}
