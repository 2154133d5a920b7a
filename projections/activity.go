package projections

import (
	"context"
	"database/sql"
	"errors"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// activityProjection copies every event of the project, repository, scan
// and issue streams into a feed keyed by global position, with the project
// each belongs to. activity_streams maps a stream to its project, learnt
// from the stream's creation event (ProjectCreated, RepositoryAdded,
// ScanRequested, IssueOpened through its repository). Access streams belong
// to no project and are not in the feed.
func activityProjection() *projection {
	return &projection{
		name:       NameActivity,
		version:    1,
		categories: []string{"project", "repository", "scan", "issue"},
		decode: func(t string) bool {
			return t == "RepositoryAdded" || t == "ScanRequested" || t == "IssueOpened"
		},
		tables: []table{
			{name: "activity", ddl: []string{`CREATE TABLE {t} (
				pos_tx      BIGINT NOT NULL,
				pos_seq     BIGINT NOT NULL,
				event_id    TEXT   NOT NULL,
				stream_id   TEXT   NOT NULL,
				version     BIGINT NOT NULL,
				type        TEXT   NOT NULL,
				recorded_at BIGINT NOT NULL,
				actor       TEXT   NOT NULL,
				data        TEXT   NOT NULL,
				project_id  TEXT   NOT NULL,
				PRIMARY KEY (pos_tx, pos_seq)
			)`,
				`CREATE INDEX {t}_project ON {t} (project_id, pos_tx, pos_seq)`}},
			{name: "activity_streams", ddl: []string{`CREATE TABLE {t} (
				stream_id  TEXT NOT NULL PRIMARY KEY,
				project_id TEXT NOT NULL
			)`}},
		},
		apply: applyActivity,
	}
}

func applyActivity(ctx context.Context, t *txn, e eventstore.RecordedEvent, ev domain.Event) error {
	var project string
	remember := false
	switch ev := ev.(type) {
	case domain.RepositoryAdded:
		project, remember = ev.ProjectID, true
	case domain.ScanRequested:
		project, remember = ev.ProjectID, true
	case domain.IssueOpened:
		p, err := t.streamProject(ctx, string(eventstore.NewStreamID("repository", ev.RepositoryID)))
		if err != nil {
			return err
		}
		project, remember = p, true
	default:
		if e.StreamID.Category() == "project" {
			project = e.StreamID.ID()
			break
		}
		p, err := t.streamProject(ctx, string(e.StreamID))
		if err != nil {
			return err
		}
		project = p
	}
	if remember {
		if err := t.insert(ctx, streamRow, string(e.StreamID), project); err != nil {
			return err
		}
		t.remember(string(e.StreamID), project)
	}
	return t.insert(ctx, activityRow, int64(e.Position.Tx), e.Position.Seq, e.ID, string(e.StreamID), e.Version, e.Type,
		e.RecordedAt.UnixMicro(), e.Metadata.Actor, string(e.Data), project)
}

// activityRow is the row every event inserts; a page's rows are written
// together (see group.go).
var activityRow = &insertSpec{table: "activity",
	cols:  []string{"pos_tx", "pos_seq", "event_id", "stream_id", "version", "type", "recorded_at", "actor", "data", "project_id"},
	kinds: []rowKind{kindInt, kindInt, kindText, kindText, kindInt, kindText, kindInt, kindText, kindText, kindText}}

// streamRow maps a stream to its project.
var streamRow = &insertSpec{table: "activity_streams", cols: []string{"stream_id", "project_id"}, kinds: []rowKind{kindText, kindText}}

func (t *txn) remember(stream, project string) {
	if t.memo == nil {
		t.memo = map[string]string{}
	}
	t.memo[stream] = project
}

func (t *txn) streamProject(ctx context.Context, stream string) (string, error) {
	if p, ok := t.memo[stream]; ok {
		return p, nil
	}
	var p string
	err := t.queryRow(ctx, `SELECT project_id FROM {activity_streams} WHERE stream_id = ?`, stream).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", invariantf("stream %s belongs to no known project (its creation event was not seen)", stream)
	}
	if err != nil {
		return "", err
	}
	t.remember(stream, p)
	return p, nil
}
