package commands_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

func TestIssueTokenNeverStoresTheSecret(t *testing.T) {
	t.Parallel()
	onStores(t, func(t *testing.T, open func(*testing.T) eventstore.Store) {
		e := newEnv(t, open(t))
		res, err := e.h.IssueToken.Handle(e.ctx, commands.IssueToken{Name: "ci", Admin: true, ExpiresAt: t0.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(res.Secret, commands.TokenPrefix) || len(res.Secret) < len(commands.TokenPrefix)+40 {
			t.Fatalf("secret %q: want %s and at least 40 random characters", res.Secret, commands.TokenPrefix)
		}
		tok := res.Token
		if tok.ID == "" || tok.Principal != tok.ID || !tok.Admin || tok.Name != "ci" || tok.Hash != domain.HashToken(res.Secret) || !tok.ExpiresAt.Equal(t0.Add(24*time.Hour)) {
			t.Fatalf("token %+v", tok)
		}
		if res.Stream != eventstore.NewStreamID("access", tok.Principal) || res.Version != 1 {
			t.Fatalf("result %+v", res.Result)
		}

		second, err := e.h.IssueToken.Handle(e.ctx, commands.IssueToken{Principal: tok.Principal, Name: "laptop"})
		if err != nil || second.Version != 2 || second.Secret == res.Secret {
			t.Fatalf("second token of the principal: %+v, %v", second.Result, err)
		}

		// No event, data or metadata, holds a secret: the test wrote only
		// this stream. (ReadStream, not ReadAll: on a shared PostgreSQL,
		// ReadAll rightly holds back events while older transactions run.)
		all := e.events(res.Stream)
		if len(all) != 2 {
			t.Fatalf("%d events, want 2", len(all))
		}
		hashes := 0
		for _, r := range all {
			for _, secret := range []string{res.Secret, second.Secret} {
				body := strings.TrimPrefix(secret, commands.TokenPrefix)
				if bytes.Contains(r.Data, []byte(body)) || strings.Contains(r.Metadata.Actor+r.Metadata.CausationID+r.Metadata.CorrelationID, body) {
					t.Fatalf("event %s %s holds a token secret", r.StreamID, r.Type)
				}
				if bytes.Contains(r.Data, []byte(domain.HashToken(secret))) {
					hashes++
				}
			}
		}
		if hashes != 2 {
			t.Fatalf("%d stored hashes, want 2", hashes)
		}
	})
}

func TestTokenCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	issued := must[commands.IssueTokenResult](t)(e.h.IssueToken.Handle(e.ctx, commands.IssueToken{Principal: "svc-ci", Name: "ci"}))

	for _, tt := range []struct {
		name  string
		cmd   commands.IssueToken
		field string
	}{
		{"no name", commands.IssueToken{}, "name"},
		{"expired", commands.IssueToken{Name: "x", ExpiresAt: t0.Add(-time.Second)}, "expires_at"},
		{"bad principal", commands.IssueToken{Principal: "a b", Name: "x"}, "principal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.h.IssueToken.Handle(e.ctx, tt.cmd)
			wantField(t, err, tt.field)
		})
	}
	_, err := e.h.IssueToken.Handle(e.ctx, commands.IssueToken{Principal: "svc-ci", TokenID: issued.Token.ID, Name: "dup"})
	wantIs(t, err, domain.ErrConflict)

	rv, err := e.h.RevokeToken.Handle(e.ctx, commands.RevokeToken{Principal: "svc-ci", TokenID: issued.Token.ID})
	if err != nil || !rv.Token.Revoked || rv.Token.Active(t0) {
		t.Fatalf("revoke: %+v, %v", rv.Token, err)
	}
	_, err = e.h.RevokeToken.Handle(e.ctx, commands.RevokeToken{Principal: "svc-ci", TokenID: issued.Token.ID})
	wantIs(t, err, domain.ErrConflict)
	_, err = e.h.RevokeToken.Handle(e.ctx, commands.RevokeToken{Principal: "svc-ci", TokenID: "nope"})
	wantIs(t, err, domain.ErrNotFound)
	_, err = e.h.RevokeToken.Handle(e.ctx, commands.RevokeToken{TokenID: ""})
	wantField(t, err, "token_id")

	// A token issued without a principal is its own principal.
	own := must[commands.IssueTokenResult](t)(e.h.IssueToken.Handle(e.ctx, commands.IssueToken{Name: "bot"}))
	if _, err := e.h.RevokeToken.Handle(e.ctx, commands.RevokeToken{TokenID: own.Token.ID}); err != nil {
		t.Fatalf("revoke by token ID alone: %v", err)
	}
}
