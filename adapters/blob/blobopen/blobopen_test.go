package blobopen_test

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/vega-sec/vega/adapters/blob/blobopen"
)

func roundTrip(t *testing.T, s blobopen.Store) {
	t.Helper()
	t.Cleanup(func() { s.Close() })
	if err := s.Put(t.Context(), "k/v", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(t.Context(), "k/v")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); err != nil || string(b) != "hello" {
		t.Fatalf("Get = %q, %v", b, err)
	}
}

func TestOpenURL(t *testing.T) {
	t.Parallel()
	backend := s3mem.New()
	if err := backend.CreateBucket("bkt"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	opts := blobopen.Options{S3Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")}

	dir := t.TempDir()
	for _, tt := range []struct {
		name, url, file string
	}{
		{"file URL", "file://" + filepath.Join(dir, "a"), filepath.Join(dir, "a", "k", "v")},
		{"plain absolute path", filepath.Join(dir, "b"), filepath.Join(dir, "b", "k", "v")},
		{"s3", "s3://bkt/pre?endpoint=" + srv.URL + "&path_style=true&region=us-east-1&sse=AES256", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := blobopen.OpenURL(t.Context(), tt.url, opts)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, s)
			if tt.file != "" {
				if _, err := os.Stat(tt.file); err != nil {
					t.Errorf("object not at %s: %v", tt.file, err)
				}
			} else if _, err := backend.HeadObject("bkt", "pre/k/v"); err != nil {
				t.Errorf("object not in bucket: %v", err)
			}
		})
	}

	for _, bad := range []string{"", "http://example.com/x", "file://host/tmp/x", "file:///tmp/x?y=1", "s3://", "gs://bucket"} {
		if s, err := blobopen.OpenURL(t.Context(), bad, opts); err == nil {
			s.Close()
			t.Errorf("OpenURL(%q) accepted", bad)
		}
	}
}
