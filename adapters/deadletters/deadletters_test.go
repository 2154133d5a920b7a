package deadletters_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/adapters/deadletters"
	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/eventstore/sqlite"
	"github.com/vega-sec/vega/internal/pgtest"
)

func exercise(t *testing.T, s *deadletters.Store) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 11, 29, 12, 0, 0, 123456000, time.UTC)
	a := vnats.DeadLetter{ID: ulid.Make().String(), Consumer: "worker", Subject: "vega.events.scan.scan-1.ScanRequested", StreamSeq: 7,
		EventID: ulid.Make().String(), Data: []byte(`{"x":1}`), Error: "boom", Deliveries: 5, ParkedAt: at}
	b := a
	b.ID, b.StreamSeq, b.ParkedAt = ulid.Make().String(), 8, at.Add(time.Second)
	for _, dl := range []vnats.DeadLetter{a, b, a} {
		if err := s.Park(ctx, dl); err != nil {
			t.Fatal(err)
		}
	}
	again := a
	again.ID = ulid.Make().String() // parked again after a lost Term: same consumer and sequence
	if err := s.Park(ctx, again); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("list = %+v, want a then b once each", got)
	}
	g := got[0]
	if g.Consumer != a.Consumer || g.Subject != a.Subject || g.StreamSeq != 7 || g.EventID != a.EventID ||
		string(g.Data) != `{"x":1}` || g.Error != "boom" || g.Deliveries != 5 || !g.ParkedAt.Equal(at) {
		t.Errorf("round trip: %+v", g)
	}
	if g, err := s.Get(ctx, b.ID); err != nil || g.StreamSeq != 8 {
		t.Errorf("get %s: %+v %v", b.ID, g, err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, deadletters.ErrNotFound) {
		t.Errorf("get of a missing id: %v", err)
	}
	if err := s.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "missing"); err != nil {
		t.Errorf("delete of a missing id: %v", err)
	}
	if got, _ := s.List(ctx, 10); len(got) != 1 || got[0].ID != b.ID {
		t.Errorf("after delete: %+v", got)
	}
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "vega.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	exercise(t, deadletters.New(st.DB()))
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.Schema(t)
	pool, err := postgres.NewPool(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	exercise(t, deadletters.NewPostgres(pool))
}
