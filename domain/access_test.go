package domain_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
)

func TestAccessTokens(t *testing.T) {
	t.Parallel()
	const secret = "vega_s3cr3t_0123456789abcdef"
	hash := domain.HashToken(secret)
	if len(hash) != 64 || strings.Contains(hash, secret) || domain.HashToken(secret) != hash || domain.HashToken(secret+"x") == hash {
		t.Fatalf("HashToken = %q", hash)
	}

	a := new(domain.Access)
	spec := domain.TokenSpec{ID: "t1", Name: "ci", Hash: hash, ExpiresAt: at(24 * time.Hour)}
	events := on(t, a)(a.IssueToken("p1", spec, t0))
	add := func(evs []domain.Event, err error) {
		t.Helper()
		events = append(events, must(t, a, evs, err)...)
	}
	tok, ok := a.Token("t1")
	if !ok || a.Principal != "p1" || tok.Name != "ci" || tok.Admin || tok.Hash != hash || !tok.Active(t0) {
		t.Fatalf("token = %+v, %v", tok, ok)
	}
	if tok.Active(at(24 * time.Hour)) {
		t.Fatal("token active at its expiry")
	}
	for _, e := range events {
		data, _ := json.Marshal(e)
		if strings.Contains(string(data), secret) {
			t.Fatalf("secret in event %s", data)
		}
	}

	_, err := a.IssueToken("p1", spec, t0)
	wantIs(t, err, domain.ErrConflict) // same ID
	_, err = a.IssueToken("p1", domain.TokenSpec{ID: "t2", Name: "x", Hash: hash}, t0)
	wantIs(t, err, domain.ErrConflict) // same secret
	_, err = a.IssueToken("p2", domain.TokenSpec{ID: "t2", Name: "x", Hash: domain.HashToken("b")}, t0)
	wantField(t, err, "principal")

	add(a.IssueToken("p1", domain.TokenSpec{ID: "t2", Name: "admin cli", Admin: true, Hash: domain.HashToken("other")}, t0))
	if tok, _ := a.Token("t2"); !tok.Admin || !tok.Active(at(100*365*24*time.Hour)) {
		t.Fatalf("non-expiring admin token = %+v", tok)
	}

	add(a.RevokeToken("t1", at(time.Hour)))
	if tok, _ := a.Token("t1"); !tok.Revoked || tok.Active(at(time.Hour)) {
		t.Fatalf("revoked token = %+v", tok)
	}
	_, err = a.RevokeToken("t1", at(time.Hour))
	wantIs(t, err, domain.ErrConflict)
	_, err = a.RevokeToken("t404", at(time.Hour))
	wantIs(t, err, domain.ErrNotFound)

	got := checkFold(t, events, domain.FoldAccess)
	if len(got.Tokens) != 2 || got.Version != 3 {
		t.Fatalf("folded = %+v", got)
	}
}

func TestIssueTokenValidation(t *testing.T) {
	t.Parallel()
	good := domain.TokenSpec{ID: "t1", Name: "ci", Hash: domain.HashToken("s")}
	tests := []struct {
		name, field, principal string
		mod                    func(*domain.TokenSpec)
	}{
		{"bad principal", "principal", "", func(*domain.TokenSpec) {}},
		{"no id", "id", "p1", func(s *domain.TokenSpec) { s.ID = "" }},
		{"no name", "name", "p1", func(s *domain.TokenSpec) { s.Name = " " }},
		{"raw secret as hash", "hash", "p1", func(s *domain.TokenSpec) { s.Hash = "s" }},
		{"upper-case hash", "hash", "p1", func(s *domain.TokenSpec) { s.Hash = strings.ToUpper(domain.HashToken("s")) }},
		{"expired", "expires_at", "p1", func(s *domain.TokenSpec) { s.ExpiresAt = t0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := good
			tt.mod(&spec)
			_, err := new(domain.Access).IssueToken(tt.principal, spec, t0)
			wantField(t, err, tt.field)
		})
	}
	a := new(domain.Access)
	wantIs(t, a.Apply(domain.TokenRevoked{TokenID: "t1"}), domain.ErrInvalidHistory)
	on(t, a)(a.IssueToken("p1", good, t0))
	wantIs(t, a.Apply(domain.TokenIssued{TokenID: "t9", Principal: "p2"}), domain.ErrInvalidHistory)
}
