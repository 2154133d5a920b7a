// Package blobtest is the conformance suite every blob.Store passes.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vega-sec/vega/adapters/blob"
)

// LargeSize is the size of the suite's large object: more than two parts of
// S3's smallest part size (5 MiB), so a store configured with small parts
// (as the S3 tests configure theirs) goes multipart with a short last part.
// Kept small because the suite runs under the race detector in CI.
const LargeSize = 11<<20 + 12345

// Run runs the suite. newStore returns an empty store for one subtest; it
// registers its own clean-up with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"PutGetStat", testPutGetStat},
		{"NotFound", testNotFound},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"List", testList},
		{"FailedPutLeavesNothing", testFailedPut},
		{"SizeMismatch", testSizeMismatch},
		{"LargeKnownSize", func(t *testing.T, s blob.Store) { testLarge(t, s, true) }},
		{"LargeUnknownSize", func(t *testing.T, s blob.Store) { testLarge(t, s, false) }},
		{"InvalidKeys", testInvalidKeys},
		{"ContextCancel", testContextCancel},
		{"ReadersSeeWholeObjects", testAtomicOverwrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

func put(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
}

func get(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func assertMissing(t *testing.T, s blob.Store, key string) {
	t.Helper()
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat %s: %v, want ErrNotFound", key, err)
	}
	if rc, err := s.Get(t.Context(), key); !errors.Is(err, blob.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("Get %s: %v, want ErrNotFound", key, err)
	}
}

// hideSize hides a reader's length (bytes.Reader has Len and Seek).
type hideSize struct{ r io.Reader }

func (h hideSize) Read(p []byte) (int, error) { return h.r.Read(p) }

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func testPutGetStat(t *testing.T, s blob.Store) {
	for _, tt := range []struct {
		key  string
		data []byte
		size int64
	}{
		{"snapshots/01J0000000000000000000000/sha256:ab12.tar.gz", []byte("tarball"), 7},
		{"logs/scan-1/runner.log", []byte("line 1\nline 2\n"), -1},
		{"empty", nil, 0},
		{"empty-unknown", nil, -1},
		{"A_b-c.d:e", []byte{0, 1, 2, 255}, 4},
	} {
		if err := s.Put(t.Context(), tt.key, hideSize{bytes.NewReader(tt.data)}, tt.size); err != nil {
			t.Fatalf("Put %s: %v", tt.key, err)
		}
		if got := get(t, s, tt.key); !bytes.Equal(got, tt.data) {
			t.Errorf("Get %s = %q, want %q", tt.key, got, tt.data)
		}
		in, err := s.Stat(t.Context(), tt.key)
		if err != nil {
			t.Fatalf("Stat %s: %v", tt.key, err)
		}
		if in.Key != tt.key || in.Size != int64(len(tt.data)) || in.ModTime.IsZero() {
			t.Errorf("Stat %s = %+v", tt.key, in)
		}
	}
}

func testNotFound(t *testing.T, s blob.Store) {
	assertMissing(t, s, "nothing/here")
	put(t, s, "dir/file", []byte("x"))
	assertMissing(t, s, "dir/fil")
	assertMissing(t, s, "dir/file/deeper")
	if err := s.Delete(t.Context(), "nothing/here"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	put(t, s, "k", []byte("first version, longer"))
	put(t, s, "k", []byte("second"))
	if got := get(t, s, "k"); string(got) != "second" {
		t.Errorf("after overwrite: %q", got)
	}
	if in, err := s.Stat(t.Context(), "k"); err != nil || in.Size != 6 {
		t.Errorf("Stat after overwrite: %+v, %v", in, err)
	}
}

func testDelete(t *testing.T, s blob.Store) {
	put(t, s, "a/b/c", []byte("x"))
	put(t, s, "a/d", []byte("y"))
	if err := s.Delete(t.Context(), "a/b/c"); err != nil {
		t.Fatal(err)
	}
	assertMissing(t, s, "a/b/c")
	if got := get(t, s, "a/d"); string(got) != "y" {
		t.Errorf("sibling after delete: %q", got)
	}
	if err := s.Delete(t.Context(), "a/b/c"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	// The key space is free again, even for a key that was a "folder".
	put(t, s, "a/b", []byte("z"))
	if got := get(t, s, "a/b"); string(got) != "z" {
		t.Errorf("reuse after delete: %q", got)
	}
}

func listKeys(t *testing.T, s blob.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.List(t.Context(), prefix, func(in blob.Info) error {
		keys = append(keys, in.Key)
		if in.Size != int64(len(in.Key)) || in.ModTime.IsZero() {
			t.Errorf("List info %+v", in)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List %q: %v", prefix, err)
	}
	return keys
}

func testList(t *testing.T, s blob.Store) {
	keys := []string{"a/2", "a/1", "a-x", "b/1", "a/sub/3", "ab"}
	for _, k := range keys {
		put(t, s, k, []byte(k)) // size = len(key), checked by listKeys
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a-x", "a/1", "a/2", "a/sub/3", "ab", "b/1"}},
		{"a/", []string{"a/1", "a/2", "a/sub/3"}},
		{"a", []string{"a-x", "a/1", "a/2", "a/sub/3", "ab"}},
		{"a/s", []string{"a/sub/3"}},
		{"b/1", []string{"b/1"}},
		{"c", nil},
		{"zz/top/", nil},
	}
	for _, tt := range tests {
		if got := listKeys(t, s, tt.prefix); !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
	stop := errors.New("stop")
	n := 0
	err := s.List(t.Context(), "", func(blob.Info) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("List with failing fn: %v after %d calls", err, n)
	}
}

// failingReader yields n bytes, then fails.
type failingReader struct{ n int }

var errReader = errors.New("reader broke")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errReader
	}
	m := min(len(p), f.n)
	clear(p[:m])
	f.n -= m
	return m, nil
}

func testFailedPut(t *testing.T, s blob.Store) {
	for _, tt := range []struct {
		name string
		n    int
		size int64
	}{
		{"small unknown size", 1000, -1},
		{"small known size", 1000, 5000},
		{"large unknown size (multipart)", LargeSize - 1<<20, -1},
	} {
		err := s.Put(t.Context(), "failed", &failingReader{n: tt.n}, tt.size)
		if !errors.Is(err, errReader) {
			t.Errorf("%s: Put = %v, want the reader's error", tt.name, err)
		}
		assertMissing(t, s, "failed")
	}
	// A failed overwrite keeps the old object.
	put(t, s, "kept", []byte("old!"))
	if err := s.Put(t.Context(), "kept", &failingReader{n: 10}, -1); err == nil {
		t.Fatal("Put with failing reader succeeded")
	}
	if got := get(t, s, "kept"); string(got) != "old!" {
		t.Errorf("after failed overwrite: %q", got)
	}
	if keys := listKeys(t, s, ""); !slices.Equal(keys, []string{"kept"}) {
		t.Errorf("after failed Puts the store holds %q, want only kept", keys)
	}
}

func testSizeMismatch(t *testing.T, s blob.Store) {
	for _, tt := range []struct {
		data string
		size int64
	}{{"short", 10}, {"longer than said", 5}, {"", 1}} {
		err := s.Put(t.Context(), "mismatch", strings.NewReader(tt.data), tt.size)
		if !errors.Is(err, blob.ErrSizeMismatch) {
			t.Errorf("Put %d bytes declared %d: %v, want ErrSizeMismatch", len(tt.data), tt.size, err)
		}
		assertMissing(t, s, "mismatch")
	}
}

func testLarge(t *testing.T, s blob.Store, known bool) {
	data := randomBytes(LargeSize, 42)
	size := int64(-1)
	if known {
		size = LargeSize
	}
	if err := s.Put(t.Context(), "large/object", hideSize{bytes.NewReader(data)}, size); err != nil {
		t.Fatal(err)
	}
	in, err := s.Stat(t.Context(), "large/object")
	if err != nil || in.Size != LargeSize {
		t.Fatalf("Stat = %+v, %v", in, err)
	}
	rc, err := s.Get(t.Context(), "large/object")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil || n != LargeSize {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Error("large object content differs")
	}
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	bad := []string{
		"", "/abs", "../up", "a/../b", "a/./b", "./a", "a//b", "a/", ".hidden", "a/.tmp/x",
		"with space", "tab\tkey", "nul\x00", "back\\slash", "é", "q?x", "h#x", "p%2e%2e",
		strings.Repeat("k", blob.MaxKeyLength+1),
	}
	for _, k := range bad {
		if err := s.Put(t.Context(), k, strings.NewReader("x"), 1); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Get(t.Context(), k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Get(%q): %v", k, err)
		}
		if _, err := s.Stat(t.Context(), k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Stat(%q): %v", k, err)
		}
		if err := s.Delete(t.Context(), k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Delete(%q): %v", k, err)
		}
	}
	for _, p := range []string{"../", "/", "a//", ".tmp/", "a/.", "sp ace"} {
		if err := s.List(t.Context(), p, func(blob.Info) error { return nil }); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("List(%q): %v, want ErrInvalidKey", p, err)
		}
	}
	if keys := listKeys(t, s, ""); len(keys) != 0 {
		t.Errorf("invalid keys left objects: %q", keys)
	}
	if err := blob.ValidateKey(strings.Repeat("k", blob.MaxKeyLength)); err != nil {
		t.Errorf("key of MaxKeyLength refused: %v", err)
	}
}

// cancelAfter cancels its context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	m, err := c.r.Read(p)
	c.n -= m
	if c.n <= 0 {
		c.cancel()
	}
	return m, err
}

func testContextCancel(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "cancelled", strings.NewReader("x"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with cancelled ctx: %v", err)
	}
	if _, err := s.Stat(ctx, "cancelled"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with cancelled ctx: %v", err)
	}
	if _, err := s.Get(ctx, "cancelled"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with cancelled ctx: %v", err)
	}
	assertMissing(t, s, "cancelled")

	for _, size := range []int{64 << 10, LargeSize} {
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancelAfter{r: bytes.NewReader(make([]byte, size)), n: size / 2, cancel: cancel}
		if err := s.Put(ctx, "midway", r, -1); !errors.Is(err, context.Canceled) {
			t.Errorf("Put of %d bytes cancelled midway: %v", size, err)
		}
		cancel()
		assertMissing(t, s, "midway")
	}
}

// testAtomicOverwrite rewrites one key with objects of one repeated byte
// while readers check that every read is a whole object of one byte.
func testAtomicOverwrite(t *testing.T, s blob.Store) {
	const size = 256 << 10
	put(t, s, "atomic", bytes.Repeat([]byte{'a'}, size))
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				rc, err := s.Get(t.Context(), "atomic")
				if err != nil {
					t.Errorf("Get during overwrite: %v", err)
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Errorf("read during overwrite: %v", err)
					return
				}
				if len(b) != size || bytes.Count(b, b[:1]) != size {
					t.Errorf("torn read: %d bytes, first %q", len(b), b[:min(1, len(b))])
					return
				}
			}
		})
	}
	for i := range 20 {
		put(t, s, "atomic", bytes.Repeat([]byte{byte('a' + i%26)}, size))
	}
	close(done)
	wg.Wait()
}
