package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/eventstore/storetest"
)

// urls remembers each store's URL for Tamper.
func TestConformance(t *testing.T) {
	t.Parallel()
	urls := map[eventstore.Store]string{}
	var mu = make(chan struct{}, 1)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) eventstore.Store {
			s, url := open(t)
			mu <- struct{}{}
			urls[s] = url
			<-mu
			return s
		},
		Tamper: func(t *testing.T, s eventstore.Store, stream eventstore.StreamID, version int64, data string) {
			mu <- struct{}{}
			url := urls[s]
			<-mu
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			// Someone with the database disables the append-only guard and
			// rewrites history; the hash chain must notice.
			if _, err := conn.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_no_update`); err != nil {
				t.Fatal(err)
			}
			tag, err := conn.Exec(ctx, `UPDATE events SET data = $3::jsonb WHERE stream_id = $1 AND version = $2`, string(stream), version, data)
			if err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("tamper: %v (%d rows)", err, tag.RowsAffected())
			}
		},
	})
	_ = postgres.LatestVersion
}
