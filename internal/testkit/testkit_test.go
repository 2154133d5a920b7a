package testkit_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/internal/testkit"
)

func TestLogBufferConcurrentWrites(t *testing.T) {
	t.Parallel()
	var b testkit.LogBuffer
	const writers, lines = 8, 50
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range lines {
				if _, err := b.Write([]byte("line\n")); err != nil {
					t.Errorf("write: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if got, want := strings.Count(b.String(), "line\n"), writers*lines; got != want {
		t.Fatalf("lines = %d, want %d", got, want)
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	c := testkit.NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), start.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("Now after Advance = %v, want %v", got, want)
	}
}

func TestTarGz(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"empty", map[string]string{}},
		{"nested", map[string]string{"a.txt": "A", "dir/b.py": "print(1)\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gz, err := gzip.NewReader(bytes.NewReader(testkit.TarGz(t, tt.files)))
			if err != nil {
				t.Fatalf("gzip: %v", err)
			}
			got := map[string]string{}
			tr := tar.NewReader(gz)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("tar: %v", err)
				}
				body, err := io.ReadAll(tr)
				if err != nil {
					t.Fatalf("read %s: %v", h.Name, err)
				}
				if h.Mode != 0o644 || h.Typeflag != tar.TypeReg {
					t.Errorf("%s: mode %o type %c, want 644 regular", h.Name, h.Mode, h.Typeflag)
				}
				got[h.Name] = string(body)
			}
			if len(got) != len(tt.files) {
				t.Fatalf("entries = %v, want %v", got, tt.files)
			}
			for name, want := range tt.files {
				if got[name] != want {
					t.Errorf("%s = %q, want %q", name, got[name], want)
				}
			}
		})
	}
}

// TestArchiveRepository checks the fixture end to end on a real SQLite
// store: the repository exists and its snapshot was recorded.
func TestArchiveRepository(t *testing.T) {
	t.Parallel()
	store := testkit.SQLiteStore(t)
	h := testkit.Handlers(t, store, commands.Options{})
	ctx := commands.WithRequest(t.Context(), commands.Request{Actor: "alice"})
	_, repoID := testkit.ArchiveRepository(t, ctx, h, map[string]string{"README.md": "# demo\n"})
	repo, _, err := h.Streams.Repositories.Load(ctx, repoID)
	if err != nil {
		t.Fatalf("load repository %s: %v", repoID, err)
	}
	if len(repo.Snapshots) != 1 || repo.Snapshots[0].Status != domain.SnapshotStatusCaptured {
		t.Fatalf("snapshots of %s = %+v, want one captured", repoID, repo.Snapshots)
	}
}
