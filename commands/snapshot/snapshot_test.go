package snapshot_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vega-sec/vega/adapters/blob"
	blobfs "github.com/vega-sec/vega/adapters/blob/fs"
	"github.com/vega-sec/vega/adapters/source/archive"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore/sqlite"
)

type entry struct {
	name, body string
	typ        byte
	link       string
}

func tarGz(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: typ, Linkname: e.link, ModTime: time.Unix(1700000000, 0)}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// countingBlobs counts Puts on a real fs store.
type countingBlobs struct {
	*blobfs.Store
	puts atomic.Int64
}

func (c *countingBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	c.puts.Add(1)
	return c.Store.Put(ctx, key, r, size)
}

type fixture struct {
	h       *commands.Handlers
	svc     *snapshot.Service
	blobs   *countingBlobs
	tmp     string
	repoID  string
	gitRepo string
	ctx     context.Context
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := commands.WithRequest(t.Context(), commands.Request{Actor: "alice"})
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vega.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	h, err := commands.New(store, commands.Options{SourcePolicy: domain.SourcePolicy{AllowHTTP: true}})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := blobfs.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fs.Close() })
	blobs := &countingBlobs{Store: fs}
	tmp := t.TempDir()
	svc, err := snapshot.New(h, blobs, snapshot.Config{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.CreateProject.Handle(ctx, commands.CreateProject{Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.AddRepository.Handle(ctx, commands.AddRepository{ProjectID: p.Project.ID, Name: "r", Source: domain.Source{Kind: domain.SourceArchive}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := h.AddRepository.Handle(ctx, commands.AddRepository{ProjectID: p.Project.ID, Name: "g",
		Source: domain.Source{Kind: domain.SourceGit, URL: "https://example.com/x.git"}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{h: h, svc: svc, blobs: blobs, tmp: tmp, repoID: r.Repository.ID, gitRepo: g.Repository.ID, ctx: ctx}
}

// assertNothingLeft checks that no snapshot was recorded, no blob written
// and no temporary file left.
func (f *fixture) assertNothingLeft(t *testing.T) {
	t.Helper()
	r, _, err := f.h.Streams.Repositories.Load(f.ctx, f.repoID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Snapshots) != 0 {
		t.Errorf("snapshots recorded: %+v", r.Snapshots)
	}
	n := 0
	if err := f.blobs.List(f.ctx, "", func(blob.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d blobs left behind", n)
	}
	left, err := os.ReadDir(f.tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestUploadStoresCanonicalSnapshot(t *testing.T) {
	t.Parallel()
	f := setup(t)
	files := []entry{{name: "app/main.go", body: "package main\n"}, {name: "README.md", body: "# hi\n"}}
	res, err := f.svc.Upload(f.ctx, f.repoID, "application/gzip", bytes.NewReader(tarGz(t, files...)), 0)
	if err != nil {
		t.Fatalf("Upload tar.gz: %v", err)
	}
	s := res.Snapshot
	if s.Status != domain.SnapshotStatusCaptured || s.FileCount != 2 || s.SizeBytes != int64(len("package main\n# hi\n")) || s.Commit != "" {
		t.Errorf("snapshot = %+v", s)
	}
	key, err := snapshot.BlobKey(s.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "snapshots/sha256/") || !strings.HasSuffix(key, ".tar.gz") {
		t.Errorf("key = %q", key)
	}
	if _, err := f.blobs.Stat(f.ctx, key); err != nil {
		t.Fatalf("blob %s: %v", key, err)
	}
	// The same tree as a zip: same digest, no second Put, a second snapshot.
	res2, err := f.svc.Upload(f.ctx, f.repoID, "application/zip", bytes.NewReader(zipOf(t, files...)), 0)
	if err != nil {
		t.Fatalf("Upload zip: %v", err)
	}
	if res2.Snapshot.Digest != s.Digest || res2.Snapshot.ID == s.ID {
		t.Errorf("zip snapshot %+v, tar.gz snapshot %+v", res2.Snapshot, s)
	}
	if got := f.blobs.puts.Load(); got != 1 {
		t.Errorf("puts = %d, want 1 (content-addressed)", got)
	}
	// The blob extracts to the uploaded tree.
	rc, err := f.blobs.Get(f.ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	local := filepath.Join(t.TempDir(), "s.tar.gz")
	data, _ := io.ReadAll(rc)
	if err := os.WriteFile(local, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ex, err := archive.Extract(f.ctx, local, out, archive.DefaultLimits())
	if err != nil || ex.Digest != s.Digest {
		t.Fatalf("extract: %v, digest %s want %s", err, ex.Digest, s.Digest)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "app", "main.go")); string(b) != "package main\n" {
		t.Errorf("app/main.go = %q", b)
	}
	if left, _ := os.ReadDir(f.tmp); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestUploadRefusals(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("0", 8<<20)
	cases := []struct {
		name        string
		contentType string
		body        func(t *testing.T) []byte
		maxBytes    int64
		want        []error // errors.Is targets
		field       string  // of the *domain.InvalidArgumentError, if any
	}{
		{"parent path", "application/gzip", func(t *testing.T) []byte { return tarGz(t, entry{name: "../evil", body: "x"}) }, 0,
			[]error{archive.ErrParentPath, domain.ErrInvalidArgument}, "archive"},
		{"absolute path", "application/x-gzip", func(t *testing.T) []byte { return tarGz(t, entry{name: "/etc/passwd", body: "x"}) }, 0,
			[]error{archive.ErrAbsolutePath, domain.ErrInvalidArgument}, "archive"},
		{"symlink", "application/gzip", func(t *testing.T) []byte {
			return tarGz(t, entry{name: "a", body: "x"}, entry{name: "l", typ: tar.TypeSymlink, link: "/etc/passwd"})
		}, 0, []error{archive.ErrLink, domain.ErrInvalidArgument}, "archive"},
		{"zip slip", "application/zip", func(t *testing.T) []byte { return zipOf(t, entry{name: "../../x", body: "x"}) }, 0,
			[]error{archive.ErrParentPath, domain.ErrInvalidArgument}, "archive"},
		{"not gzip", "application/gzip", func(*testing.T) []byte { return []byte("plain text, not an archive") }, 0,
			[]error{archive.ErrNotArchive, domain.ErrInvalidArgument}, "archive"},
		{"zip sent as gzip", "application/gzip", func(t *testing.T) []byte { return zipOf(t, entry{name: "a", body: "x"}) }, 0,
			[]error{archive.ErrNotArchive}, "archive"},
		{"unsupported type", "text/plain", func(t *testing.T) []byte { return tarGz(t, entry{name: "a", body: "x"}) }, 0,
			[]error{snapshot.ErrUnsupportedMediaType}, ""},
		{"over max bytes", "application/gzip", func(t *testing.T) []byte { return tarGz(t, entry{name: "a", body: "x"}) }, 10,
			[]error{snapshot.ErrTooLarge}, ""},
		{"compression bomb", "application/gzip", func(t *testing.T) []byte { return tarGz(t, entry{name: "zeros", body: big}) }, 0,
			[]error{snapshot.ErrTooLarge, archive.ErrCompressionRatio}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			_, err := f.svc.Upload(f.ctx, f.repoID, tc.contentType, bytes.NewReader(tc.body(t)), tc.maxBytes)
			if err == nil {
				t.Fatal("Upload succeeded")
			}
			for _, target := range tc.want {
				if !errors.Is(err, target) {
					t.Errorf("error %v does not match %v", err, target)
				}
			}
			var ia *domain.InvalidArgumentError
			if got := errors.As(err, &ia); got != (tc.field != "") || got && ia.Field != tc.field {
				t.Errorf("invalid argument %+v, want field %q", ia, tc.field)
			}
			f.assertNothingLeft(t)
		})
	}
}

func TestUploadToGitRepositoryRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := f.svc.Upload(f.ctx, f.gitRepo, "application/gzip", bytes.NewReader(tarGz(t, entry{name: "a", body: "x"})), 0)
	var ia *domain.InvalidArgumentError
	if !errors.As(err, &ia) || ia.Field != "source.kind" {
		t.Fatalf("err = %v, want invalid source.kind", err)
	}
	_, err = f.svc.Upload(f.ctx, "01UNKNOWN", "application/gzip", strings.NewReader(""), 0)
	if !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown repository: err = %v", err)
	}
}

func TestBlobKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		digest, want string
		ok           bool
	}{
		{"sha256:" + strings.Repeat("ab", 32), "snapshots/sha256/" + strings.Repeat("ab", 32) + ".tar.gz", true},
		{"sha256:" + strings.Repeat("AB", 32), "", false},
		{"sha256:../../etc", "", false},
		{"", "", false},
	} {
		got, err := snapshot.BlobKey(tc.digest)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("BlobKey(%q) = %q, %v", tc.digest, got, err)
		}
	}
}
