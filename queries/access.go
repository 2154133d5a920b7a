package queries

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ListTokens lists every API token, by ID, never their secrets or hashes.
// It returns ErrForbidden unless the caller is an admin.
func (s *Service) ListTokens(ctx context.Context, c Caller, o ListOptions) (Page[Token], error) {
	if !c.Admin {
		return Page[Token]{}, fmt.Errorf("list tokens: %w", ErrForbidden)
	}
	return page(ctx, s, o, listSpec{kind: "tokens", cols: []keyCol{{expr: "id"}}, text: []bool{true},
		selekt: `SELECT id, name, principal, admin, expires_at, issued_at, revoked FROM tokens`},
		func(r *sql.Rows) (Token, []any, error) {
			var (
				tk      Token
				expires sql.NullInt64
				issued  int64
			)
			if err := r.Scan(&tk.ID, &tk.Name, &tk.Principal, &tk.Admin, &expires, &issued, &tk.Revoked); err != nil {
				return Token{}, nil, err
			}
			tk.ExpiresAt, tk.CreatedAt = stamp(expires), stampOf(issued)
			return tk, []any{tk.ID}, nil
		})
}

// Authenticate looks a bearer token up by its hash (domain.HashToken of the
// secret). It returns domain.ErrNotFound for an unknown hash; a revoked or
// expired token is returned with Active false.
func (s *Service) Authenticate(ctx context.Context, hash string) (TokenAuth, error) {
	var (
		a       TokenAuth
		expires sql.NullInt64
	)
	err := s.queryRow(ctx, `SELECT id, principal, admin, revoked, expires_at FROM tokens WHERE hash = ?`, hash).
		Scan(&a.TokenID, &a.Principal, &a.Admin, &a.Revoked, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return TokenAuth{}, notFound("token")
	}
	if err != nil {
		return TokenAuth{}, fmt.Errorf("authenticate: %w", err)
	}
	a.Expired = expires.Valid && s.now().UnixMicro() >= expires.Int64
	a.Active = !a.Revoked && !a.Expired
	return a, nil
}
