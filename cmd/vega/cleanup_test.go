package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCleanup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	e := env(map[string]string{"VEGA_DATA_DIR": dir, "VEGA_LOG_LEVEL": "warn"})
	// An orphaned blob (no SnapshotCaptured names it) and a stale runner dir,
	// both old; a fresh runner dir that must stay.
	orphan := filepath.Join(dir, "blobs", "snapshots", "sha256", strings.Repeat("a", 64)+".tar.gz")
	stale := filepath.Join(dir, "runs", "vega-scan-123")
	fresh := filepath.Join(dir, "runs", "vega-scan-456")
	for _, d := range []string{filepath.Dir(orphan), stale, fresh} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(orphan, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	for _, p := range []string{orphan, stale} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"cleanup"}, e, &out, io.Discard); err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	got := out.String()
	if !strings.Contains(got, "would remove blob snapshots/sha256/") || !strings.Contains(got, "would remove directory "+stale) || strings.Contains(got, fresh) {
		t.Fatalf("dry run listed:\n%s", got)
	}
	if _, err := os.Stat(orphan); err != nil {
		t.Fatalf("a dry run removed something: %v", err)
	}
	out.Reset()
	if err := run(ctx, []string{"cleanup", "-apply"}, e, &out, io.Discard); err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	for _, p := range []string{orphan, stale} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there after -apply (%v)", p, err)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("the fresh runner dir was removed: %v", err)
	}
	if err := run(ctx, []string{"cleanup", "-grace", "10m"}, e, io.Discard, io.Discard); exitCode(err) != 2 {
		t.Errorf("a grace shorter than a scan may run must be refused: %v", err)
	}
}
