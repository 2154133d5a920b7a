package builtin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/vega-sec/vega/adapters/engine"
)

// Benchmark tree parameters: files of a few KB to a few tens of KB, a
// finding planted in about one file in benchPlantEvery.
const (
	benchMinFile    = 2 << 10
	benchMaxFile    = 40 << 10
	benchFilesInDir = 60
	benchPlantEvery = 25
	// benchSampleEvery is how often the memory sampler reads the runtime's
	// figures during the measured scan.
	benchSampleEvery = time.Millisecond
)

// benchKey is the fixed fingerprint key of the benchmark engine; the
// fingerprints it computes are thrown away.
var benchKey = bytes.Repeat([]byte{'b'}, engine.MinFingerprintKeySize)

// BenchResult is what BenchScan measured.
type BenchResult struct {
	// Bytes and Files are what the tree holds and the engine scanned.
	Bytes int64
	Files int
	// Findings is how many findings the measured scan reported.
	Findings int
	// MBPerSec is the engine's throughput (10^6 bytes of file content per
	// second of wall time) over the tree, warm.
	MBPerSec float64
	// RipgrepMBPerSec is ripgrep's throughput over the same tree with the
	// same patterns in the same run, warm; 0 when rg is not available.
	RipgrepMBPerSec float64
	// RipgrepPatterns is how many of the rules' patterns rg ran, of
	// TotalPatterns; rg rejects a few Go patterns (see Note).
	RipgrepPatterns, TotalPatterns int
	// PeakMiB is the most memory the Go runtime held (every class of
	// runtime memory minus what it returned to the OS: heap, stacks, GC
	// metadata) at any sample during the measured scan.
	PeakMiB float64
	// Note explains a missing ceiling and how peak memory was taken.
	Note string
}

// BenchScan writes a deterministic synthetic source tree of about sizeMB
// megabytes (10^6 bytes) under dir (which should be empty; it is left in
// place for the caller to remove), scans it once to warm the page cache and
// the engine, then times a second scan and samples the Go runtime's memory
// while it runs, then times ripgrep (rg on PATH) searching the same tree
// with the same patterns, all files, GOMAXPROCS threads. It is meant for
// the benchmark command, not for production, and is not safe to run twice
// at once in one process (the memory figure would mix both).
func BenchScan(ctx context.Context, dir string, sizeMB int) (BenchResult, error) {
	var res BenchResult
	if sizeMB < 1 {
		return res, fmt.Errorf("bench scan: size %d MB: must be at least 1", sizeMB)
	}
	tree := filepath.Join(dir, "tree")
	files, size, err := writeBenchTree(tree, int64(sizeMB)*1e6)
	if err != nil {
		return res, fmt.Errorf("bench scan: %w", err)
	}
	res.Files, res.Bytes = files, size
	fp, err := engine.NewFingerprinter(benchKey)
	if err != nil {
		return res, fmt.Errorf("bench scan: %w", err)
	}
	e, err := New(fp)
	if err != nil {
		return res, fmt.Errorf("bench scan: %w", err)
	}
	count := func(engine.Finding) error { res.Findings++; return nil }
	if err := e.Scan(ctx, engine.Target{Root: tree}, count); err != nil {
		return res, fmt.Errorf("bench scan: warm-up: %w", err)
	}
	res.Findings = 0

	runtime.GC()
	stop := make(chan struct{})
	peak := make(chan uint64)
	go samplePeak(stop, peak)
	start := time.Now()
	err = e.Scan(ctx, engine.Target{Root: tree}, count)
	elapsed := time.Since(start)
	close(stop)
	res.PeakMiB = float64(<-peak) / (1 << 20)
	if err != nil {
		return res, fmt.Errorf("bench scan: %w", err)
	}
	res.MBPerSec = float64(size) / 1e6 / elapsed.Seconds()
	notes := []string{"peak memory: Go runtime memory (total minus released to the OS) sampled every " +
		benchSampleEvery.String() + " during the measured scan, in-process"}

	rg, err := exec.LookPath("rg")
	if err != nil {
		notes = append(notes, "no ceiling: ripgrep (rg) not on PATH")
		res.Note = strings.Join(notes, "; ")
		return res, nil
	}
	patterns, total, err := rgPatterns(ctx, rg, e, dir)
	if err != nil {
		return res, fmt.Errorf("bench scan: %w", err)
	}
	res.RipgrepPatterns, res.TotalPatterns = patterns, total
	if patterns < total {
		notes = append(notes, fmt.Sprintf("rg ran %d of %d patterns; it rejects the rest (multi-line patterns need -U)", patterns, total))
	}
	rgArgs := []string{"-c", "-f", filepath.Join(dir, "patterns.txt"), "--no-ignore", "--hidden",
		"-j" + strconv.Itoa(runtime.GOMAXPROCS(0)), tree}
	// Warm rg's own path once, then time it.
	if err := runRg(ctx, rg, rgArgs); err != nil {
		return res, fmt.Errorf("bench scan: %w", err)
	}
	start = time.Now()
	if err := runRg(ctx, rg, rgArgs); err != nil {
		return res, fmt.Errorf("bench scan: %w", err)
	}
	res.RipgrepMBPerSec = float64(size) / 1e6 / time.Since(start).Seconds()
	res.Note = strings.Join(notes, "; ")
	return res, nil
}

// samplePeak reads the runtime's memory figures until stop closes, then
// sends the highest it saw on peak.
func samplePeak(stop <-chan struct{}, peak chan<- uint64) {
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	var hi uint64
	read := func() {
		metrics.Read(samples)
		if samples[0].Value.Kind() == metrics.KindUint64 && samples[1].Value.Kind() == metrics.KindUint64 {
			hi = max(hi, samples[0].Value.Uint64()-samples[1].Value.Uint64())
		}
	}
	t := time.NewTicker(benchSampleEvery)
	defer t.Stop()
	for {
		read()
		select {
		case <-stop:
			read()
			peak <- hi
			return
		case <-t.C:
		}
	}
}

// rgPatterns writes every rule pattern rg accepts to dir/patterns.txt, one
// a line, and returns how many it wrote and how many there are.
func rgPatterns(ctx context.Context, rg string, e *Engine, dir string) (int, int, error) {
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return 0, 0, fmt.Errorf("write %s: %w", empty, err)
	}
	var b strings.Builder
	ok, total := 0, 0
	for _, r := range e.rules {
		for _, p := range r.sources {
			total++
			p = rgSyntax(p)
			// rg exits 1 for no match and 2 for a pattern it rejects.
			err := exec.CommandContext(ctx, rg, "-q", "-e", p, empty).Run()
			var ee *exec.ExitError
			if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
				continue
			}
			b.WriteString(p)
			b.WriteByte('\n')
			ok++
		}
	}
	p := filepath.Join(dir, "patterns.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		return 0, 0, fmt.Errorf("write %s: %w", p, err)
	}
	return ok, total, nil
}

// rgSyntax translates a Go (RE2) pattern to ripgrep's Rust syntax, which
// rejects escapes of characters that are not metacharacters (\" for one).
func rgSyntax(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' && i+1 < len(p) {
			n := p[i+1]
			if n < 0x80 && !strings.ContainsRune(rgMeta, rune(n)) && !isAlnum(n) && n != ' ' {
				b.WriteByte(n) // a needless escape: the character itself
			} else {
				b.WriteByte(c)
				b.WriteByte(n)
			}
			i++
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// rgMeta are the characters ripgrep lets a pattern escape.
const rgMeta = `\.+*?()|[]{}^$#&-~`

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func runRg(ctx context.Context, rg string, args []string) error {
	cmd := exec.CommandContext(ctx, rg, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return fmt.Errorf("run rg: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// writeBenchTree writes files until their total size reaches size and
// returns how many files and bytes it wrote. The tree is the same for the
// same size on every run.
func writeBenchTree(root string, size int64) (int, int64, error) {
	rng := rand.New(rand.NewPCG(0x5eed, 0x7e9a))
	var total int64
	n := 0
	w := bufio.NewWriterSize(nil, 64<<10)
	for total < size {
		kind := benchKinds[rng.IntN(len(benchKinds))]
		name := kind.name(rng, n)
		p := filepath.Join(root, fmt.Sprintf("svc%02d", n/(benchFilesInDir*20)), fmt.Sprintf("pkg%03d", n/benchFilesInDir), name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return n, total, fmt.Errorf("write bench tree: %w", err)
		}
		f, err := os.Create(p)
		if err != nil {
			return n, total, fmt.Errorf("write bench tree: %w", err)
		}
		w.Reset(f)
		cw := &countWriter{w: w}
		target := int64(benchMinFile + rng.IntN(benchMaxFile-benchMinFile))
		if kind.small {
			target /= 8
		}
		plant := rng.IntN(benchPlantEvery) == 0
		kind.write(cw, rng, target, plant)
		err = w.Flush()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return n, total, fmt.Errorf("write bench tree: %w", err)
		}
		total += cw.n
		n++
	}
	return n, total, nil
}

type countWriter struct {
	w *bufio.Writer
	n int64
}

func (c *countWriter) str(s string) { c.w.WriteString(s); c.n += int64(len(s)) }

// benchKind is one kind of file in the tree: how it is named and its
// chunks of ordinary code, with the findings that may be planted in it.
type benchKind struct {
	ext    string // extension, or a whole base name when fixed is set
	fixed  bool
	small  bool
	header string
	chunks []string
	plants []func(rng *rand.Rand) string
}

func (k benchKind) name(rng *rand.Rand, n int) string {
	if k.fixed {
		return fmt.Sprintf("%s%d", k.ext, n) // e.g. Dockerfile.12, .env.12
	}
	return benchWords[rng.IntN(len(benchWords))] + "_" + strconv.Itoa(n) + k.ext
}

// write writes ordinary chunks with identifiers filled in until about
// target bytes, with one planted finding somewhere when plant is set.
func (k benchKind) write(w *countWriter, rng *rand.Rand, target int64, plant bool) {
	w.str(fill(k.header, rng))
	at := int64(-1)
	if plant && len(k.plants) > 0 {
		at = rng.Int64N(max(1, target))
	}
	for w.n < target {
		if at >= 0 && w.n >= at {
			w.str(k.plants[rng.IntN(len(k.plants))](rng))
			at = -1
		}
		w.str(fill(k.chunks[rng.IntN(len(k.chunks))], rng))
	}
	if at >= 0 {
		w.str(k.plants[rng.IntN(len(k.plants))](rng))
	}
}

var benchWords = []string{
	"account", "order", "invoice", "user", "session", "payment", "report", "cache", "queue",
	"event", "profile", "token", "config", "client", "server", "handler", "billing", "search",
	"audit", "catalog", "shipment", "customer", "ledger", "metric", "export", "import",
}

// fill replaces each @ in s with an identifier-like word and each # with
// a small number.
func fill(s string, rng *rand.Rand) string {
	if !strings.ContainsAny(s, "@#") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 64)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '@':
			b.WriteString(benchWords[rng.IntN(len(benchWords))])
		case '#':
			b.WriteString(strconv.Itoa(rng.IntN(1000)))
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// randString returns n characters drawn from alphabet.
func randString(rng *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

const (
	alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
)

// Planted secrets are made at run time from random characters, so that no
// key-shaped literal sits in this source file.
func fakeAWSKeyID(rng *rand.Rand) string { return "AK" + "IA" + randString(rng, upper, 16) }
func fakeGitHub(rng *rand.Rand) string   { return "gh" + "p_" + randString(rng, alnum, 36) }
func fakeStripe(rng *rand.Rand) string   { return "sk" + "_live_" + randString(rng, alnum, 28) }
func fakeSecret(rng *rand.Rand) string   { return randString(rng, alnum, 24) }

var benchKinds = []benchKind{
	{ext: ".go", header: goHeader, chunks: goChunks, plants: []func(*rand.Rand) string{
		func(*rand.Rand) string {
			return "\ttr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}\n"
		},
		func(*rand.Rand) string {
			return "\trows, err := db.Query(\"SELECT * FROM users WHERE name = '\" + name + \"'\")\n"
		},
		func(rng *rand.Rand) string { return "\tconst awsKey = \"" + fakeAWSKeyID(rng) + "\"\n" },
		func(*rand.Rand) string { return "\tout, _ := exec.Command(\"sh\", \"-c\", \"ls \" + dir).Output()\n" },
	}},
	{ext: ".py", header: pyHeader, chunks: pyChunks, plants: []func(*rand.Rand) string{
		func(*rand.Rand) string { return "    cur.execute(f\"SELECT * FROM orders WHERE id = {order_id}\")\n" },
		func(*rand.Rand) string { return "    requests.get(url, verify=False)\n" },
		func(rng *rand.Rand) string { return "API_TOKEN = \"" + fakeGitHub(rng) + "\"\n" },
		func(*rand.Rand) string { return "    os.system(\"rm -rf \" + path)\n" },
		func(rng *rand.Rand) string { return "    db_password = \"" + fakeSecret(rng) + "\"\n" },
	}},
	{ext: ".js", header: jsHeader, chunks: jsChunks, plants: []func(*rand.Rand) string{
		func(*rand.Rand) string { return "  exec(`convert ${req.query.file} out.png`);\n" },
		func(*rand.Rand) string {
			return "  const rows = await db.query(`SELECT * FROM items WHERE owner = '${req.params.owner}'`);\n"
		},
		func(rng *rand.Rand) string { return "const stripe = require('stripe')('" + fakeStripe(rng) + "');\n" },
		func(*rand.Rand) string { return "  el.innerHTML = location.hash.slice(1);\n" },
	}},
	{ext: ".ts", header: tsHeader, chunks: tsChunks, plants: []func(*rand.Rand) string{
		func(*rand.Rand) string { return "  const agent = new https.Agent({ rejectUnauthorized: false });\n" },
		func(*rand.Rand) string { return "  eval(userInput);\n" },
	}},
	{ext: ".java", header: javaHeader, chunks: javaChunks, plants: []func(*rand.Rand) string{
		func(*rand.Rand) string {
			return "        ResultSet rs = stmt.executeQuery(\"SELECT * FROM users WHERE name = '\" + name + \"'\");\n"
		},
		func(*rand.Rand) string { return "        Process p = Runtime.getRuntime().exec(\"ping \" + host);\n" },
		func(*rand.Rand) string { return "        Cipher c = Cipher.getInstance(\"AES\");\n" },
	}},
	{ext: ".yaml", small: true, header: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: @-service\n", chunks: yamlChunks, plants: []func(*rand.Rand) string{
		func(*rand.Rand) string { return "        securityContext:\n          privileged: true\n" },
		func(rng *rand.Rand) string { return "  db_password: " + fakeSecret(rng) + "\n" },
	}},
	{ext: "Dockerfile.", fixed: true, small: true, header: "FROM golang:1.26 AS build\nWORKDIR /src\n", chunks: dockerChunks},
	{ext: ".env.", fixed: true, small: true, header: "# environment for @\n", chunks: envChunks, plants: []func(*rand.Rand) string{
		func(rng *rand.Rand) string { return "API_SECRET=" + fakeSecret(rng) + "\n" },
		func(rng *rand.Rand) string { return "AWS_ACCESS_KEY_ID=" + fakeAWSKeyID(rng) + "\n" },
	}},
}

const goHeader = `package @

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"
)

`

var goChunks = []string{
	`// @Store reads and writes @ records.
type @Store struct {
	db      *sql.DB
	timeout time.Duration
}

// Get returns the @ with this id, or ErrNotFound.
func (s *@Store) Get(ctx context.Context, id string) (*Record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	row := s.db.QueryRowContext(ctx, "SELECT id, name, created_at FROM @s WHERE id = $1", id)
	var r Record
	if err := row.Scan(&r.ID, &r.Name, &r.CreatedAt); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("get @ %s: %w", id, err)
	}
	return &r, nil
}

`,
	`func (h *@Handler) serve@(w http.ResponseWriter, r *http.Request) {
	token := r.Header.Get("Authorization")
	if token == "" {
		http.Error(w, "missing token", http.StatusUnauthorized)
		return
	}
	claims, err := h.auth.Verify(r.Context(), token)
	if err != nil {
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	items, err := h.store.List(r.Context(), claims.Subject, #)
	if err != nil {
		h.log.Error("list @", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, items)
}

`,
	`// Update@ saves the changed fields of one @ in a transaction.
func Update@(ctx context.Context, tx *sql.Tx, id int64, name string) error {
	res, err := tx.ExecContext(ctx, "UPDATE @s SET name = $1, updated_at = now() WHERE id = $2", name, id)
	if err != nil {
		return fmt.Errorf("update @ %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("update @ %d: %d rows", id, n)
	}
	return nil
}

`,
	`type @Config struct {
	Addr        string        ` + "`json:\"addr\"`" + `
	Timeout     time.Duration ` + "`json:\"timeout\"`" + `
	PasswordEnv string        ` + "`json:\"password_env\"`" + `
	MaxRetries  int           ` + "`json:\"max_retries\"`" + `
}

func (c @Config) Validate() error {
	if c.Addr == "" {
		return errors.New("@: empty addr")
	}
	if c.MaxRetries < 0 || c.MaxRetries > # {
		return fmt.Errorf("@: max retries %d out of range", c.MaxRetries)
	}
	return nil
}

`,
}

const pyHeader = `"""@ service: models and helpers."""
import logging
import os
from datetime import datetime, timezone

from app.db import connection
from app.auth import verify_token

log = logging.getLogger(__name__)

`

var pyChunks = []string{
	`def get_@(@_id):
    """Return the @ with this id, or None."""
    cur = connection().cursor()
    cur.execute("SELECT id, name, email FROM @s WHERE id = %s", (@_id,))
    row = cur.fetchone()
    if row is None:
        log.info("@ %s not found", @_id)
        return None
    return {"id": row[0], "name": row[1], "email": row[2]}


`,
	`class @Service:
    def __init__(self, repo, clock=None, limit=#):
        self.repo = repo
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.limit = limit

    def list_recent(self, owner, token):
        if not verify_token(token):
            raise PermissionError("invalid token for %s" % owner)
        items = self.repo.query(owner=owner, limit=self.limit)
        return [i for i in items if i.created_at <= self.clock()]

    def total(self, rows):
        return sum(r["amount"] for r in rows if r["status"] == "paid")


`,
	`def reset_password(user, new_password):
    salt = os.environ.get("RESET_TOKEN_SALT")
    if len(new_password) < #:
        raise ValueError("password too short")
    user.set_password(new_password, salt=salt)
    user.save()
    log.info("password reset for user %s", user.id)
    return True


`,
	`@_SETTINGS = {
    "timeout": #,
    "retries": 3,
    "password": os.environ.get("@_PASSWORD"),
    "endpoint": "https://@.internal.example.com/api/v1",
}


def load_@_settings(overrides=None):
    settings = dict(@_SETTINGS)
    settings.update(overrides or {})
    return settings


`,
}

const jsHeader = `'use strict';
const express = require('express');
const { validate } = require('../lib/validate');

const router = express.Router();

`

var jsChunks = []string{
	`router.get('/@s/:id', async (req, res, next) => {
  try {
    const { rows } = await req.db.query('SELECT * FROM @s WHERE id = $1', [req.params.id]);
    if (rows.length === 0) return res.status(404).json({ error: 'not found' });
    res.json(rows[0]);
  } catch (err) {
    next(err);
  }
});

`,
	`router.post('/@/login', async (req, res) => {
  const { username, password } = req.body;
  const user = await req.users.find(username);
  if (!user || !(await user.checkPassword(password))) {
    return res.status(401).json({ error: 'invalid credentials' });
  }
  const token = await req.sessions.issue(user.id, { ttl: # });
  res.cookie('session', token, { httpOnly: true, sameSite: 'strict' });
  res.json({ ok: true });
});

`,
	`function format@(item, locale) {
  const amount = new Intl.NumberFormat(locale, { style: 'currency', currency: item.currency });
  return {
    id: item.id,
    label: item.name.trim(),
    price: amount.format(item.price / 100),
    updated: new Date(item.updatedAt).toISOString(),
  };
}

`,
}

const tsHeader = `import { Injectable } from '@angular/core';
import { HttpClient, HttpParams } from '@angular/common/http';
import { Observable } from 'rxjs';

`

var tsChunks = []string{
	`export interface @Summary {
  id: string;
  name: string;
  total: number;
  token?: string;
}

@Injectable({ providedIn: 'root' })
export class @Api {
  constructor(private readonly http: HttpClient) {}

  list(page = 0, size = #): Observable<@Summary[]> {
    const params = new HttpParams().set('page', page).set('size', size);
    return this.http.get<@Summary[]>('/api/@s', { params });
  }
}

`,
	`export function merge@(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [key, value] of Object.entries(b)) {
    out[key] = (out[key] ?? 0) + value;
  }
  return out;
}

`,
}

const javaHeader = `package com.acme.@;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

`

var javaChunks = []string{
	`public class @Repository {
    private final Connection conn;

    public @Repository(Connection conn) {
        this.conn = conn;
    }

    public List<String> find(long id) throws SQLException {
        List<String> out = new ArrayList<>();
        try (PreparedStatement ps = conn.prepareStatement("SELECT name FROM @s WHERE id = ?")) {
            ps.setLong(1, id);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(rs.getString(1));
                }
            }
        }
        return out;
    }
}

`,
	`final class @Tokens {
    private static final int MAX_AGE = #;

    static boolean expired(long issuedAt, long now) {
        return now - issuedAt > MAX_AGE * 1000L;
    }

    static String header(String token) {
        return "Bearer " + token;
    }
}

`,
}

var yamlChunks = []string{
	`spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: @
          image: registry.example.com/@:1.#
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: @-db
                  key: password
`,
	`          resources:
            limits:
              cpu: 500m
              memory: #Mi
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
`,
}

var dockerChunks = []string{
	"COPY go.mod go.sum ./\nRUN go mod download\nCOPY . .\nRUN CGO_ENABLED=0 go build -o /out/@ ./cmd/@\n",
	"FROM gcr.io/distroless/static:nonroot\nCOPY --from=build /out/@ /@\nUSER nonroot:nonroot\nENTRYPOINT [\"/@\"]\n",
}

var envChunks = []string{
	"@_HOST=@.internal\n@_PORT=#\n@_PASSWORD=${@_PASSWORD}\n",
	"LOG_LEVEL=info\n@_TIMEOUT=#s\n",
}
