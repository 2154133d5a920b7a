package projections

import (
	"context"
	"encoding/json"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

func repositoriesProjection() *projection {
	return &projection{
		name:       NameRepositories,
		version:    1,
		categories: []string{"repository"},
		tables: []table{
			{name: "repositories", ddl: []string{`CREATE TABLE {t} (
				id                 TEXT    NOT NULL PRIMARY KEY,
				project_id         TEXT    NOT NULL,
				name               TEXT    NOT NULL,
				source_kind        TEXT    NOT NULL,
				source_url         TEXT    NOT NULL,
				source_ref         TEXT    NOT NULL,
				created_at         BIGINT  NOT NULL,
				removed            BOOLEAN NOT NULL,
				removed_at         BIGINT,
				latest_snapshot_id TEXT    NOT NULL
			)`,
				`CREATE INDEX {t}_project ON {t} (project_id, id)`}},
			// ord is the stream version of the snapshot's first event: the
			// order in which snapshots were requested or uploaded.
			{name: "snapshots", ddl: []string{`CREATE TABLE {t} (
				id            TEXT   NOT NULL PRIMARY KEY,
				repository_id TEXT   NOT NULL,
				ord           BIGINT NOT NULL,
				status        TEXT   NOT NULL,
				ref           TEXT   NOT NULL,
				digest        TEXT   NOT NULL,
				size_bytes    BIGINT NOT NULL,
				file_count    BIGINT NOT NULL,
				commit_sha    TEXT   NOT NULL,
				error         TEXT   NOT NULL,
				requested_at  BIGINT,
				captured_at   BIGINT,
				failed_at     BIGINT
			)`,
				`CREATE INDEX {t}_repository ON {t} (repository_id, ord)`}},
			{name: "threat_profiles", ddl: []string{`CREATE TABLE {t} (
				repository_id TEXT   NOT NULL,
				version       BIGINT NOT NULL,
				profile       TEXT   NOT NULL,
				defined_at    BIGINT NOT NULL,
				PRIMARY KEY (repository_id, version)
			)`}},
		},
		apply: applyRepository,
	}
}

func applyRepository(ctx context.Context, t *txn, e eventstore.RecordedEvent, ev domain.Event) error {
	id := e.StreamID.ID()
	switch ev := ev.(type) {
	case domain.RepositoryAdded:
		if ev.RepositoryID != id {
			return invariantf("RepositoryAdded for repository %q on stream %s", ev.RepositoryID, e.StreamID)
		}
		_, err := t.exec(ctx, `INSERT INTO {repositories} (id, project_id, name, source_kind, source_url, source_ref,
			created_at, removed, latest_snapshot_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '')`,
			id, ev.ProjectID, ev.Name, string(ev.Source.Kind), ev.Source.URL, ev.Source.Ref, ev.At.UnixMicro(), false)
		return err
	case domain.RepositoryRemoved:
		return t.execOne(ctx, "repository "+id, `UPDATE {repositories} SET removed = ?, removed_at = ? WHERE id = ?`, true, micros(ev.At), id)
	case domain.SnapshotRequested:
		if err := t.repositoryExists(ctx, id); err != nil {
			return err
		}
		_, err := t.exec(ctx, `INSERT INTO {snapshots} (id, repository_id, ord, status, ref, digest, size_bytes, file_count,
			commit_sha, error, requested_at) VALUES (?, ?, ?, ?, ?, '', 0, 0, '', '', ?)`,
			ev.SnapshotID, id, e.Version, string(domain.SnapshotStatusPending), ev.Ref, micros(ev.At))
		return err
	case domain.SnapshotCaptured:
		if err := t.repositoryExists(ctx, id); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `INSERT INTO {snapshots} (id, repository_id, ord, status, ref, digest, size_bytes, file_count,
			commit_sha, error, captured_at) VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, '', ?)
			ON CONFLICT (id) DO UPDATE SET status = excluded.status, digest = excluded.digest, size_bytes = excluded.size_bytes,
			file_count = excluded.file_count, commit_sha = excluded.commit_sha, captured_at = excluded.captured_at`,
			ev.SnapshotID, id, e.Version, string(domain.SnapshotStatusCaptured), ev.Digest, ev.SizeBytes, ev.FileCount,
			ev.Commit, micros(ev.At)); err != nil {
			return err
		}
		return t.execOne(ctx, "repository "+id, `UPDATE {repositories} SET latest_snapshot_id = ? WHERE id = ?`, ev.SnapshotID, id)
	case domain.SnapshotFailed:
		return t.execOne(ctx, "snapshot "+ev.SnapshotID+" of repository "+id,
			`UPDATE {snapshots} SET status = ?, error = ?, failed_at = ? WHERE id = ? AND repository_id = ?`,
			string(domain.SnapshotStatusFailed), ev.Error, micros(ev.At), ev.SnapshotID, id)
	case domain.ThreatProfileDefined:
		if err := t.repositoryExists(ctx, id); err != nil {
			return err
		}
		b, err := json.Marshal(ev.Profile)
		if err != nil {
			return err
		}
		_, err = t.exec(ctx, `INSERT INTO {threat_profiles} (repository_id, version, profile, defined_at) VALUES (?, ?, ?, ?)`,
			id, ev.Profile.Version, string(b), ev.At.UnixMicro())
		return err
	}
	return nil
}

func (t *txn) repositoryExists(ctx context.Context, id string) error {
	var n int
	if err := t.queryRow(ctx, `SELECT count(*) FROM {repositories} WHERE id = ?`, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return invariantf("repository %s does not exist", id)
	}
	return nil
}
