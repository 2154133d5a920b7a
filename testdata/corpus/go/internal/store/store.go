package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Store reads and writes accounts.
type Store struct{ db *sql.DB }

func (s *Store) Account(ctx context.Context, id string) (string, error) {
	var name string
	err := s.db.QueryRowContext(ctx, "SELECT name FROM accounts WHERE id = $1", id).Scan(&name)
	return name, err
}

func (s *Store) Search(ctx context.Context, term string) (*sql.Rows, error) {
	q := fmt.Sprintf("SELECT id, name FROM accounts WHERE name ILIKE '%%%s%%'", term)
	return s.db.QueryContext(ctx, q)
}

func (s *Store) Delete(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM accounts WHERE id = '"+id+"'")
	return err
}

func (s *Store) SortedBy(ctx context.Context, column string) (*sql.Rows, error) {
	allowed := map[string]bool{"name": true, "created_at": true}
	if !allowed[column] {
		return nil, fmt.Errorf("sort by %q: not allowed", column)
	}
	return s.db.QueryContext(ctx, "SELECT id, name FROM accounts ORDER BY "+column)
}

func (s *Store) Tagged(ctx context.Context, tags []string) (*sql.Rows, error) {
	ph := make([]string, len(tags))
	args := make([]any, len(tags))
	for i, t := range tags {
		ph[i] = fmt.Sprintf("$%d", i+1)
		args[i] = t
	}
	query := "SELECT id FROM accounts WHERE tag IN (" + strings.Join(ph, ",") + ")"
	return s.db.QueryContext(ctx, query, args...)
}

func (s *Store) Rename(ctx context.Context, id, name string) error {
	stmt := fmt.Sprintf("UPDATE accounts SET name = '%s' WHERE id = '%s'", name, id)
	_, err := s.db.ExecContext(ctx, stmt)
	return err
}

func (s *Store) Count(ctx context.Context) (n int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&n)
	return n, err
}
