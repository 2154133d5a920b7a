package builtin_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vega-sec/vega/adapters/engine"
)

// benchTreeSize is the size of the generated tree the benchmark scans.
const benchTreeSize = 20 << 20

// benchSources are file bodies in the shape of ordinary application code:
// mostly harmless lines with the words rules key on (query, password,
// token, exec, key…) and, now and then, a real finding.
var benchSources = map[string]string{
	".py": `import os
import logging
from app.db import connection

log = logging.getLogger(__name__)


def get_user(user_id):
    """Return the user with this id, or None."""
    cur = connection().cursor()
    cur.execute("SELECT id, name, email FROM users WHERE id = %%s", (user_id,))
    row = cur.fetchone()
    if row is None:
        log.info("user %%s not found", user_id)
        return None
    return {"id": row[0], "name": row[1], "email": row[2]}


def reset_password(user, new_password):
    token = os.environ.get("RESET_TOKEN_SALT")
    user.set_password(new_password)
    user.save()
    return token


class Report:
    def __init__(self, rows):
        self.rows = rows

    def total(self):
        return sum(r["amount"] for r in self.rows if r["status"] == "paid")
`,
	".go": `package service

import (
	"context"
	"database/sql"
	"fmt"
)

// Service handles accounts.
type Service struct {
	db  *sql.DB
	key []byte
}

// Account returns one account.
func (s *Service) Account(ctx context.Context, id string) (string, error) {
	var name string
	err := s.db.QueryRowContext(ctx, "SELECT name FROM accounts WHERE id = $1", id).Scan(&name)
	if err != nil {
		return "", fmt.Errorf("account %%s: %%w", id, err)
	}
	return name, nil
}

// Token returns an API token for the account.
func (s *Service) Token(ctx context.Context, id string) (string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT token FROM tokens WHERE account = $1", id)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return "", err
		}
		return t, nil
	}
	return "", sql.ErrNoRows
}
`,
	".js": `'use strict';
const express = require('express');
const router = express.Router();

router.get('/items/:id', async (req, res, next) => {
  try {
    const { rows } = await req.db.query('SELECT * FROM items WHERE id = $1', [req.params.id]);
    if (rows.length === 0) return res.status(404).json({ error: 'not found' });
    res.json(rows[0]);
  } catch (err) {
    next(err);
  }
});

router.post('/login', async (req, res) => {
  const { username, password } = req.body;
  const user = await req.users.find(username);
  if (!user || !(await user.checkPassword(password))) {
    return res.status(401).json({ error: 'invalid credentials' });
  }
  const token = await req.sessions.issue(user.id, { ttl: 3600 });
  res.cookie('session', token, { httpOnly: true, sameSite: 'strict' });
  res.json({ ok: true });
});

module.exports = router;
`,
	".java": `package com.acme.billing;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;

public class InvoiceRepository {
    private final Connection conn;

    public InvoiceRepository(Connection conn) {
        this.conn = conn;
    }

    public Invoice find(long id) throws SQLException {
        try (PreparedStatement ps = conn.prepareStatement("SELECT * FROM invoices WHERE id = ?")) {
            ps.setLong(1, id);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Invoice.from(rs) : null;
            }
        }
    }

    public String apiKeyHeader() {
        return "X-Api-Key";
    }
}
`,
}

// benchFindings are planted every benchFindingEvery files so that the
// regex stage does real work, not just the keyword pass.
var benchFindings = map[string]string{
	".py":   "    cur.execute(f\"SELECT * FROM t WHERE name = '{name}'\")\n",
	".go":   "\ttr := &tls.Config{InsecureSkipVerify: true}\n",
	".js":   "  exec(`ls ${req.query.dir}`);\n",
	".java": "        Process p = Runtime.getRuntime().exec(\"ls \" + dir);\n",
}

const benchFindingEvery = 10

// writeBenchTree writes about size bytes of source files under dir and
// returns the exact number of bytes written.
func writeBenchTree(tb testing.TB, dir string, size int) int64 {
	tb.Helper()
	exts := []string{".py", ".go", ".js", ".java"}
	var total int64
	for i := 0; total < int64(size); i++ {
		ext := exts[i%len(exts)]
		var b strings.Builder
		for b.Len() < 12<<10 {
			b.WriteString(fmt.Sprintf(benchSources[ext], i))
			b.WriteString(fmt.Sprintf("// section %d\n", b.Len()))
		}
		if i%benchFindingEvery == 0 {
			b.WriteString(benchFindings[ext])
		}
		p := filepath.Join(dir, fmt.Sprintf("pkg%03d", i/50), fmt.Sprintf("file%05d%s", i, ext))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
		total += int64(b.Len())
	}
	return total
}

// BenchmarkScan scans a generated ~20 MB source tree and reports MB/s
// (through b.SetBytes). The tree is read from the page cache after the
// first iteration, as ripgrep's would be in the comparison the bench
// harness makes.
func BenchmarkScan(b *testing.B) {
	dir := b.TempDir()
	size := writeBenchTree(b, dir, benchTreeSize)
	e := newEngine(b)
	b.SetBytes(size)
	b.ReportAllocs()
	findings := 0
	for b.Loop() {
		findings = 0
		if err := e.Scan(b.Context(), engine.Target{Root: dir}, func(engine.Finding) error {
			findings++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if findings == 0 {
		b.Fatal("no findings: the planted ones were missed")
	}
	b.ReportMetric(float64(findings), "findings")
}
