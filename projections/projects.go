package projections

import (
	"context"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

func projectsProjection() *projection {
	return &projection{
		name:       NameProjects,
		version:    1,
		categories: []string{"project"},
		tables: []table{
			{name: "projects", ddl: []string{`CREATE TABLE {t} (
				id          TEXT    NOT NULL PRIMARY KEY,
				name        TEXT    NOT NULL,
				description TEXT    NOT NULL,
				created_by  TEXT    NOT NULL,
				created_at  BIGINT  NOT NULL,
				archived    BOOLEAN NOT NULL,
				archived_at BIGINT
			)`}},
			{name: "project_members", ddl: []string{`CREATE TABLE {t} (
				project_id TEXT   NOT NULL,
				principal  TEXT   NOT NULL,
				role       TEXT   NOT NULL,
				granted_at BIGINT NOT NULL,
				PRIMARY KEY (project_id, principal)
			)`,
				`CREATE INDEX {t}_principal ON {t} (principal, project_id)`}},
		},
		apply: applyProject,
	}
}

func applyProject(ctx context.Context, t *txn, e eventstore.RecordedEvent, ev domain.Event) error {
	id := e.StreamID.ID()
	switch ev := ev.(type) {
	case domain.ProjectCreated:
		if ev.ProjectID != id {
			return invariantf("ProjectCreated for project %q on stream %s", ev.ProjectID, e.StreamID)
		}
		_, err := t.exec(ctx, `INSERT INTO {projects} (id, name, description, created_by, created_at, archived)
			VALUES (?, ?, ?, ?, ?, ?)`, id, ev.Name, ev.Description, ev.CreatedBy, ev.At.UnixMicro(), false)
		return err
	case domain.ProjectRenamed:
		return t.execOne(ctx, "project "+id, `UPDATE {projects} SET name = ? WHERE id = ?`, ev.Name, id)
	case domain.ProjectArchived:
		return t.execOne(ctx, "project "+id, `UPDATE {projects} SET archived = ?, archived_at = ? WHERE id = ?`, true, micros(ev.At), id)
	case domain.MemberGranted:
		if err := t.projectExists(ctx, id); err != nil {
			return err
		}
		_, err := t.exec(ctx, `INSERT INTO {project_members} (project_id, principal, role, granted_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (project_id, principal) DO UPDATE SET role = excluded.role, granted_at = excluded.granted_at`,
			id, ev.Principal, string(ev.Role), ev.At.UnixMicro())
		return err
	case domain.MemberRevoked:
		return t.execOne(ctx, "member "+ev.Principal+" of project "+id,
			`DELETE FROM {project_members} WHERE project_id = ? AND principal = ?`, id, ev.Principal)
	}
	return nil
}

func (t *txn) projectExists(ctx context.Context, id string) error {
	var n int
	if err := t.queryRow(ctx, `SELECT count(*) FROM {projects} WHERE id = ?`, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return invariantf("project %s does not exist", id)
	}
	return nil
}
