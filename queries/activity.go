package queries

import (
	"context"
	"database/sql"
	"encoding/json"
)

// ListActivity lists the events of the caller's projects (admins: every
// project) in global order, after o.Cursor. Each item's Cursor is its own
// position, accepted back as o.Cursor (the SSE id of the live feed).
func (s *Service) ListActivity(ctx context.Context, c Caller, o ListOptions) (Page[Event], error) {
	cond, args := visible(c, "project_id")
	return page(ctx, s, o, listSpec{kind: "activity",
		cols: []keyCol{{expr: "pos_tx"}, {expr: "pos_seq"}}, text: []bool{false, false},
		selekt: `SELECT pos_tx, pos_seq, stream_id, version, type, recorded_at, actor, data FROM activity`,
		where:  []string{cond}, args: args},
		func(r *sql.Rows) (Event, []any, error) {
			var (
				e       Event
				tx, seq int64
				at      int64
				data    string
			)
			if err := r.Scan(&tx, &seq, &e.StreamID, &e.Version, &e.Type, &at, &e.Actor, &data); err != nil {
				return Event{}, nil, err
			}
			e.RecordedAt, e.Data = stampOf(at), json.RawMessage(data)
			e.Cursor = encodeCursor(cursor{K: "activity", N: []int64{tx, seq}})
			return e, []any{tx, seq}, nil
		})
}
