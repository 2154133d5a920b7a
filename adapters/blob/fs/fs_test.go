package fs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/adapters/blob"
	"github.com/vega-sec/vega/adapters/blob/blobtest"
	blobfs "github.com/vega-sec/vega/adapters/blob/fs"
)

func open(t *testing.T, dir string) *blobfs.Store {
	t.Helper()
	s, err := blobfs.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) blob.Store { return open(t, t.TempDir()) })
}

func TestLayoutAndNoLeftovers(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "blobs")
	s := open(t, dir)
	if err := s.Put(t.Context(), "snapshots/x.tar.gz", strings.NewReader("data"), 4); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "snapshots", "x.tar.gz"))
	if err != nil || string(b) != "data" {
		t.Fatalf("object file: %q, %v", b, err)
	}
	_ = s.Put(t.Context(), "broken", strings.NewReader("abc"), 10)
	tmp, err := os.ReadDir(filepath.Join(dir, ".tmp"))
	if err != nil || len(tmp) != 0 {
		t.Errorf("temporary files left: %v, %v", tmp, err)
	}
}

func TestOpenRemovesStaleTemporaryFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open(t, dir).Close()
	stale := filepath.Join(dir, ".tmp", "stale")
	fresh := filepath.Join(dir, ".tmp", "fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	open(t, dir)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file (maybe an in-flight Put) removed: %v", err)
	}
}

func TestKeyFolderConflict(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	if err := s.Put(t.Context(), "a/b", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "a", strings.NewReader("x"), 1); !errors.Is(err, blob.ErrInvalidKey) {
		t.Errorf("Put over a folder: %v, want ErrInvalidKey", err)
	}
	if err := s.Put(t.Context(), "a/b/c", strings.NewReader("x"), 1); !errors.Is(err, blob.ErrInvalidKey) {
		t.Errorf("Put below a file: %v, want ErrInvalidKey", err)
	}
}

func TestSymlinkInRootCannotEscape(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	dir := filepath.Join(base, "blobs")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir)
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "link/secret"); err == nil {
		t.Error("Get followed a symlink out of the root")
	}
	if err := s.Put(t.Context(), "link/new", strings.NewReader("x"), 1); err == nil {
		t.Error("Put followed a symlink out of the root")
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file written outside the root: %v", err)
	}
}
