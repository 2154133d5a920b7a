package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"time"
)

// Access is one principal and its API tokens, on stream access-<principal>.
// Only each token's SHA-256 hash is kept, never its secret. The zero value is
// a principal with no tokens yet (Version 0); IssueToken works on it.
type Access struct {
	Principal string
	Tokens    []Token // in issue order
	Version   int     // number of events applied

	tokens map[string]int // token ID -> index in Tokens
}

// Token is an API token of a principal.
type Token struct {
	ID        string    `json:"id"`
	Principal string    `json:"principal"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	Hash      string    `json:"-"` // hex SHA-256 of the secret
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	IssuedAt  time.Time `json:"issued_at"`
	Revoked   bool      `json:"revoked"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Active reports whether the token authenticates at now: not revoked and
// not expired (a zero ExpiresAt never expires).
func (t Token) Active(now time.Time) bool {
	return !t.Revoked && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// HashToken returns the hex SHA-256 of a token secret: what TokenIssued
// stores and what authentication looks up. Secrets are random and long, so
// an unsalted fast hash is enough.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

var hashRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TokenSpec is the input of IssueToken.
type TokenSpec struct {
	ID        string    // the token's ID
	Name      string    // a label, validated like other names
	Admin     bool      // the token acts as an installation admin
	Hash      string    // HashToken(secret)
	ExpiresAt time.Time // zero: never expires
}

// IssueToken decides a new token for principal. On a zero Access it starts
// the principal's stream; otherwise principal must be a.Principal. It
// returns an *InvalidArgumentError naming "principal", "id", "name", "hash"
// (not 64 lower-case hex digits) or "expires_at" (not after now), and
// ErrConflict for a token ID or hash the principal already has.
func (a *Access) IssueToken(principal string, spec TokenSpec, now time.Time) ([]Event, error) {
	if err := ValidateID("principal", principal); err != nil {
		return nil, err
	}
	if a.Version > 0 && principal != a.Principal {
		return nil, invalid("principal", "stream belongs to %s, not %s", a.Principal, principal)
	}
	if err := ValidateID("id", spec.ID); err != nil {
		return nil, err
	}
	name, err := ValidateName("name", spec.Name)
	if err != nil {
		return nil, err
	}
	if !hashRe.MatchString(spec.Hash) {
		return nil, invalid("hash", "must be 64 lower-case hex digits (see HashToken)")
	}
	if !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(now) {
		return nil, invalid("expires_at", "must be in the future")
	}
	if _, ok := a.tokens[spec.ID]; ok {
		return nil, conflict("token %s already exists", spec.ID)
	}
	for _, t := range a.Tokens {
		if t.Hash == spec.Hash {
			return nil, conflict("token %s has the same secret", t.ID)
		}
	}
	return []Event{TokenIssued{TokenID: spec.ID, Principal: principal, Name: name, Admin: spec.Admin,
		Hash: spec.Hash, ExpiresAt: spec.ExpiresAt, At: now}}, nil
}

// RevokeToken decides that token tokenID no longer authenticates. It returns
// ErrNotFound for an unknown token and ErrConflict for one already revoked.
// Revoking an expired token is allowed.
func (a *Access) RevokeToken(tokenID string, now time.Time) ([]Event, error) {
	t, ok := a.Token(tokenID)
	if !ok {
		return nil, notFound("token %s", tokenID)
	}
	if t.Revoked {
		return nil, conflict("token %s is already revoked", tokenID)
	}
	return []Event{TokenRevoked{TokenID: tokenID, At: now}}, nil
}

// Token returns the token with the given ID.
func (a *Access) Token(id string) (Token, bool) {
	i, ok := a.tokens[id]
	if !ok {
		return Token{}, false
	}
	return a.Tokens[i], true
}

// FoldAccess rebuilds a principal's access from its stream. It returns
// ErrNotFound for an empty stream.
func FoldAccess(events []Event) (*Access, error) {
	if len(events) == 0 {
		return nil, notFound("access")
	}
	a := new(Access)
	for _, e := range events {
		if err := a.Apply(e); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Apply folds one event into the access aggregate and increments Version.
// It returns ErrInvalidHistory for another aggregate's event, a stream that
// does not start with TokenIssued, a token of another principal, a duplicate
// token, or the revocation of an unknown token.
func (a *Access) Apply(e Event) error {
	e = deref(e)
	_, issued := e.(TokenIssued)
	if err := checkStart("access", a.Version, e, issued && a.Version == 0); err != nil {
		return err
	}
	switch e := e.(type) {
	case TokenIssued:
		if a.Version == 0 {
			*a = Access{Principal: e.Principal, tokens: map[string]int{}}
		}
		if e.Principal != a.Principal {
			return badHistory("access", a.Version, e, "token of principal "+e.Principal)
		}
		if _, dup := a.tokens[e.TokenID]; dup {
			return badHistory("access", a.Version, e, "duplicate token "+e.TokenID)
		}
		a.tokens[e.TokenID] = len(a.Tokens)
		a.Tokens = append(a.Tokens, Token{ID: e.TokenID, Principal: e.Principal, Name: e.Name, Admin: e.Admin,
			Hash: e.Hash, ExpiresAt: e.ExpiresAt, IssuedAt: e.At})
	case TokenRevoked:
		i, ok := a.tokens[e.TokenID]
		if !ok {
			return badHistory("access", a.Version, e, "unknown token "+e.TokenID)
		}
		a.Tokens[i].Revoked, a.Tokens[i].RevokedAt = true, e.At
	default:
		return badHistory("access", a.Version, e, "not an access event")
	}
	a.Version++
	return nil
}
