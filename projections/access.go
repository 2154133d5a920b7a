package projections

import (
	"context"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

func accessProjection() *projection {
	return &projection{
		name:       NameAccess,
		version:    1,
		categories: []string{"access"},
		tables: []table{
			{name: "tokens", ddl: []string{`CREATE TABLE {t} (
				id         TEXT    NOT NULL PRIMARY KEY,
				principal  TEXT    NOT NULL,
				name       TEXT    NOT NULL,
				admin      BOOLEAN NOT NULL,
				hash       TEXT    NOT NULL,
				expires_at BIGINT,
				issued_at  BIGINT  NOT NULL,
				revoked    BOOLEAN NOT NULL,
				revoked_at BIGINT
			)`,
				`CREATE UNIQUE INDEX {t}_hash ON {t} (hash)`}},
		},
		apply: applyAccess,
	}
}

func applyAccess(ctx context.Context, t *txn, e eventstore.RecordedEvent, ev domain.Event) error {
	switch ev := ev.(type) {
	case domain.TokenIssued:
		_, err := t.exec(ctx, `INSERT INTO {tokens} (id, principal, name, admin, hash, expires_at, issued_at, revoked)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ev.TokenID, ev.Principal, ev.Name, ev.Admin, ev.Hash,
			micros(ev.ExpiresAt), ev.At.UnixMicro(), false)
		return err
	case domain.TokenRevoked:
		return t.execOne(ctx, "token "+ev.TokenID, `UPDATE {tokens} SET revoked = ?, revoked_at = ? WHERE id = ?`,
			true, micros(ev.At), ev.TokenID)
	}
	return nil
}
