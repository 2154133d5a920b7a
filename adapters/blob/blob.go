// Package blob defines Vega's content store for snapshots, SARIF documents
// and logs: a flat namespace of keys mapped to immutable-at-a-time byte
// objects, with two implementations, fs (files under a directory, the
// one-machine shape) and s3 (any S3-compatible service, the distributed
// shape), both held to the conformance suite in blobtest.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Sentinel errors. Implementations wrap them; match with errors.Is.
var (
	// ErrNotFound: no object has the key.
	ErrNotFound = errors.New("blob not found")
	// ErrInvalidKey: the key (or List prefix) breaks the key rules of
	// ValidateKey, or the store cannot hold it next to an existing key.
	ErrInvalidKey = errors.New("invalid blob key")
	// ErrSizeMismatch: Put was given a size that the reader did not match.
	ErrSizeMismatch = errors.New("blob size mismatch")
)

// MaxKeyLength is the longest key accepted, in bytes. S3 allows 1024; the
// rest is left for an s3 store's key prefix.
const MaxKeyLength = 512

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is a content store. Implementations are safe for concurrent use.
//
// Writes are atomic: a reader sees the previous object or the whole new
// one, never a part. A Put that fails (reader error, size mismatch,
// cancelled ctx) leaves no new object behind.
type Store interface {
	// Put stores r's bytes under key, replacing any object there. size is
	// the exact length when known, -1 when not; a reader that yields another
	// length fails the Put with ErrSizeMismatch.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object; the caller closes it. ErrNotFound if missing.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes the object. ErrNotFound if missing.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object. Deleting a missing key succeeds (as in S3),
	// so retried clean-ups are harmless.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix (a plain
	// string prefix, "" for all), in ascending byte order of keys. An error
	// from fn stops the listing and is returned as is.
	List(ctx context.Context, prefix string, fn func(Info) error) error
}

// ValidateKey checks the key rules every Store enforces: 1 to MaxKeyLength
// bytes of [A-Za-z0-9._:/-]; relative (no leading "/"); "/"-separated
// components that are not empty and do not start with "." (which excludes
// "." and ".." and reserves dot-names for a store's own bookkeeping); no
// trailing "/". It returns an error matching ErrInvalidKey.
func ValidateKey(key string) error {
	if key == "" || len(key) > MaxKeyLength {
		return fmt.Errorf("%w: length %d not in 1..%d", ErrInvalidKey, len(key), MaxKeyLength)
	}
	if err := validChars(key); err != nil {
		return err
	}
	for c := range strings.SplitSeq(key, "/") {
		if c == "" || c[0] == '.' {
			return fmt.Errorf("%w: %q: empty or dot-led component", ErrInvalidKey, key)
		}
	}
	return nil
}

// ValidatePrefix checks a List prefix: "" or a string of key characters
// that a valid key could start with.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxKeyLength {
		return fmt.Errorf("%w: prefix longer than %d", ErrInvalidKey, MaxKeyLength)
	}
	if err := validChars(prefix); err != nil {
		return err
	}
	if strings.HasPrefix(prefix, "/") || strings.Contains(prefix, "//") || strings.HasPrefix(prefix, ".") || strings.Contains(prefix, "/.") {
		return fmt.Errorf("%w: prefix %q", ErrInvalidKey, prefix)
	}
	return nil
}

func validChars(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == '-', c == ':', c == '/':
		default:
			return fmt.Errorf("%w: %q: character %q not allowed", ErrInvalidKey, s, c)
		}
	}
	return nil
}
