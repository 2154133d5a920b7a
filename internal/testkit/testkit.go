// Package testkit holds the test fixtures that several packages' tests
// share: a log sink safe for concurrent writers, a settable clock, real
// event stores (SQLite in a temp dir, PostgreSQL in a schema of its own),
// command handlers over a store, an archive repository with an uploaded
// snapshot, a fingerprinter and tar.gz archives. It is imported by
// tests only; everything in it reports failures through the testing.TB
// it is given.
package testkit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	blobfs "github.com/vega-sec/vega/adapters/blob/fs"
	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/eventstore/sqlite"
	"github.com/vega-sec/vega/internal/pgtest"
)

// SQLitePollInterval is how often the stores of SQLiteStore poll for new
// events: short, so that tests which wait for events stay fast.
const SQLitePollInterval = 20 * time.Millisecond

// LogBuffer is a bytes.Buffer for log output. Its zero value is ready to
// use, and it is safe for the concurrent writes of loggers and the reads
// of the test.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Clock is an injectable test clock that moves only when told to. It is
// safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock set to start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time; pass the method value as a Clock option.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// SQLiteStore opens a real SQLite event store in a temporary directory of
// t, polling every SQLitePollInterval, and closes it when t ends. It fails
// t when the store cannot be opened.
func SQLiteStore(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "vega.db"), sqlite.WithPollInterval(SQLitePollInterval))
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// PostgresStore opens a real, migrated PostgreSQL event store in a schema
// of its own (see pgtest.Schema, which drops it when t ends) and closes it
// when t ends. An unreachable server skips t loudly, or fails it when
// CI=true; any other error fails t.
func PostgresStore(t testing.TB) *postgres.Store {
	t.Helper()
	url := pgtest.Schema(t)
	ctx := t.Context()
	pool, err := postgres.NewPool(ctx, url, 2)
	if err != nil {
		t.Fatalf("postgres pool: %v", err)
	}
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		pool.Close()
		t.Fatalf("migrate: %v", err)
	}
	pool.Close()
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Handlers returns the command handlers over store with opts, failing t
// when commands.New rejects them.
func Handlers(t testing.TB, store eventstore.Store, opts commands.Options) *commands.Handlers {
	t.Helper()
	h, err := commands.New(store, opts)
	if err != nil {
		t.Fatalf("new handlers: %v", err)
	}
	return h
}

// TarGz returns a gzipped tar archive of files (path to content), each a
// regular file of mode 0644, failing t if writing it fails.
func TarGz(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatalf("write tar header of %s: %v", name, err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatalf("write tar entry %s: %v", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("close tar: %v", err)
	}
	if err := gz.Close(); err != nil {
		t.Fatalf("close gzip: %v", err)
	}
	return buf.Bytes()
}

// ArchiveRepository creates, through h and as ctx's actor, project "p" and
// its archive repository "r", and uploads files (see TarGz) as the
// repository's snapshot into a filesystem blob store in a temporary
// directory of t, closed when t ends. It returns the blob store and the
// repository's ID, and fails t on any error.
func ArchiveRepository(t testing.TB, ctx context.Context, h *commands.Handlers, files map[string]string) (blobs *blobfs.Store, repositoryID string) {
	t.Helper()
	blobs, err := blobfs.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatalf("open blob store: %v", err)
	}
	t.Cleanup(func() { _ = blobs.Close() })
	svc, err := snapshot.New(h, blobs, snapshot.Config{TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("new snapshot service: %v", err)
	}
	p, err := h.CreateProject.Handle(ctx, commands.CreateProject{Name: "p"})
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	r, err := h.AddRepository.Handle(ctx, commands.AddRepository{ProjectID: p.Project.ID, Name: "r", Source: domain.Source{Kind: domain.SourceArchive}})
	if err != nil {
		t.Fatalf("add repository: %v", err)
	}
	if _, err := svc.Upload(ctx, r.Repository.ID, "application/gzip", bytes.NewReader(TarGz(t, files)), 0); err != nil {
		t.Fatalf("upload snapshot of %s: %v", r.Repository.ID, err)
	}
	return blobs, r.Repository.ID
}

// Fingerprinter returns an engine.Fingerprinter with a fixed test key of
// engine.MinFingerprintKeySize bytes, so that fingerprints are stable
// across runs. It fails t on error.
func Fingerprinter(t testing.TB) *engine.Fingerprinter {
	t.Helper()
	fp, err := engine.NewFingerprinter(bytes.Repeat([]byte("k"), engine.MinFingerprintKeySize))
	if err != nil {
		t.Fatalf("new fingerprinter: %v", err)
	}
	return fp
}
