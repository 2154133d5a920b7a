package s3_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/vega-sec/vega/adapters/blob"
	"github.com/vega-sec/vega/adapters/blob/blobtest"
	blobs3 "github.com/vega-sec/vega/adapters/blob/s3"
)

// request is what the recorder saw of one HTTP request.
type request struct {
	method string
	path   string
	query  string
	header http.Header
}

// fakeS3 is an in-process gofakes3 server over real HTTP that records each
// request's headers, since gofakes3 ignores server-side encryption.
type fakeS3 struct {
	url     string
	backend *s3mem.Backend
	mu      sync.Mutex
	reqs    []request
}

func newFakeS3(t *testing.T, buckets ...string) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New()}
	for _, b := range buckets {
		if err := f.backend.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	h := gofakes3.New(f.backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone()})
		f.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fakeS3) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

func newStore(t *testing.T, f *fakeS3, bucket string, mod func(*blobs3.Config)) *blobs3.Store {
	t.Helper()
	cfg := blobs3.Config{
		Bucket:      bucket,
		Region:      "us-east-1",
		Endpoint:    f.url,
		PathStyle:   true,
		PartSize:    blobs3.MinPartSize,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := blobs3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		prefix string
	}{{"no prefix", ""}, {"with prefix", "tenant-a/vega"}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			blobtest.Run(t, func(t *testing.T) blob.Store {
				// A fresh bucket per subtest keeps them independent.
				bucket := "vega-" + strings.ReplaceAll(strings.ToLower(t.Name()[strings.LastIndex(t.Name(), "/")+1:]), "_", "-")
				f := newFakeS3(t, bucket)
				return newStore(t, f, bucket, func(c *blobs3.Config) { c.Prefix = tt.prefix; c.SSE = blobs3.SSEAES256 })
			})
		})
	}
}

func TestPrefixAndMultipartOnTheWire(t *testing.T) {
	t.Parallel()
	f := newFakeS3(t, "b")
	s := newStore(t, f, "b", func(c *blobs3.Config) { c.Prefix = "pre" })
	data := bytes.Repeat([]byte("0123456789abcdef"), (12<<20)/16) // 12 MiB: 3 parts of 5 MiB
	if err := s.Put(t.Context(), "big", io.MultiReader(bytes.NewReader(data)), -1); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "small", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	var parts, singles int
	for _, r := range f.requests() {
		if !strings.HasPrefix(r.path, "/b/pre/") {
			t.Errorf("request %s %s outside the prefix", r.method, r.path)
		}
		switch {
		case r.method == http.MethodPut && strings.Contains(r.query, "partNumber="):
			parts++
		case r.method == http.MethodPut:
			singles++
		}
	}
	if parts != 3 || singles != 1 {
		t.Errorf("%d parts and %d single PUTs, want 3 and 1", parts, singles)
	}
	// The object really is under the prefix in the bucket.
	if _, err := f.backend.HeadObject("b", "pre/big"); err != nil {
		t.Errorf("backend has no pre/big: %v", err)
	}
}

func TestFailedMultipartIsAborted(t *testing.T) {
	t.Parallel()
	f := newFakeS3(t, "b")
	s := newStore(t, f, "b", nil)
	broken := io.MultiReader(bytes.NewReader(make([]byte, 7<<20)), errReader{})
	if err := s.Put(t.Context(), "k", broken, -1); err == nil {
		t.Fatal("Put with a broken reader succeeded")
	}
	aborted := false
	for _, r := range f.requests() {
		if r.method == http.MethodDelete && strings.Contains(r.query, "uploadId=") {
			aborted = true
		}
	}
	if !aborted {
		t.Error("multipart upload not aborted")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken") }

func TestServerSideEncryptionHeadersAreSent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sse    string
		kmsKey string
	}{
		{"AES256", blobs3.SSEAES256, ""},
		{"KMS with key", blobs3.SSEKMS, "arn:aws:kms:us-east-1:111122223333:key/abcd"},
		{"KMS default key", blobs3.SSEKMS, ""},
		{"none", blobs3.SSENone, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeS3(t, "b")
			s := newStore(t, f, "b", func(c *blobs3.Config) { c.SSE = tt.sse; c.SSEKMSKeyID = tt.kmsKey })
			if err := s.Put(t.Context(), "small", strings.NewReader("x"), 1); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(t.Context(), "large", bytes.NewReader(make([]byte, 6<<20)), 6<<20); err != nil {
				t.Fatal(err)
			}
			var writes int
			for _, r := range f.requests() {
				// SSE is declared on PutObject and CreateMultipartUpload
				// (POST ?uploads); parts inherit it.
				isPut := r.method == http.MethodPut && !strings.Contains(r.query, "partNumber=")
				isCreate := r.method == http.MethodPost && strings.Contains(r.query, "uploads")
				if !isPut && !isCreate {
					continue
				}
				writes++
				if got := r.header.Get("X-Amz-Server-Side-Encryption"); got != tt.sse {
					t.Errorf("%s %s?%s: SSE header %q, want %q", r.method, r.path, r.query, got, tt.sse)
				}
				if got := r.header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != tt.kmsKey {
					t.Errorf("%s %s: KMS key header %q, want %q", r.method, r.path, got, tt.kmsKey)
				}
			}
			if writes != 2 {
				t.Errorf("saw %d object-creating requests, want 2 (PutObject, CreateMultipartUpload)", writes)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	cfg, err := blobs3.ParseURL("s3://my-bucket/some/prefix?region=eu-west-3&endpoint=http://127.0.0.1:9000&path_style=true&sse=aws:kms&sse_kms_key_id=k1&part_size=8388608")
	if err != nil {
		t.Fatal(err)
	}
	want := blobs3.Config{Bucket: "my-bucket", Prefix: "some/prefix", Region: "eu-west-3", Endpoint: "http://127.0.0.1:9000", PathStyle: true, SSE: "aws:kms", SSEKMSKeyID: "k1", PartSize: 8 << 20}
	if cfg != want {
		t.Errorf("ParseURL = %+v, want %+v", cfg, want)
	}
	for _, bad := range []string{
		"s3:///prefix",             // no bucket
		"file:///tmp",              // wrong scheme
		"s3://b?sse=DES",           // unknown SSE
		"s3://b?sse_kms_key_id=k",  // key without aws:kms
		"s3://b?encryption=AES256", // typo'd parameter
		"s3://b?path_style=maybe",  // not a bool
		"s3://b?part_size=1024",    // below S3's minimum
		"s3://b?endpoint=ftp://x",  // not http(s)
		"s3://AKID:secret@b",       // credentials in URL
		"s3://b?region=a&region=b", // repeated
		"s3://b/../etc",            // bad prefix
	} {
		if _, err := blobs3.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}
