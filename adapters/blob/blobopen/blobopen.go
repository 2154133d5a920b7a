// Package blobopen opens the blob.Store that a URL names (VEGA_BLOB_URL). It
// is its own package so that blob itself imports neither implementation.
package blobopen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/vega-sec/vega/adapters/blob"
	blobfs "github.com/vega-sec/vega/adapters/blob/fs"
	blobs3 "github.com/vega-sec/vega/adapters/blob/s3"
)

// Store is an opened store; Close releases it (a directory handle for
// files, nothing for S3).
type Store interface {
	blob.Store
	io.Closer
}

var (
	_ Store = (*blobfs.Store)(nil)
	_ Store = (*blobs3.Store)(nil)
)

// Options tunes OpenURL. The zero value is ready to use.
type Options struct {
	// Logger receives the stores' warnings (nil: discard).
	Logger *slog.Logger
	// S3Credentials overrides the standard AWS credential chain for s3://
	// URLs (tests pass static credentials).
	S3Credentials aws.CredentialsProvider
	// HTTPClient overrides the S3 client's HTTP client.
	HTTPClient *http.Client
}

// OpenURL opens the store rawURL names:
//
//   - file:///abs/path, or a plain path (absolute or relative): files under
//     that directory (package fs), created if missing;
//   - s3://bucket/prefix?region=…&endpoint=…&path_style=true&sse=AES256|aws:kms&sse_kms_key_id=…&part_size=…:
//     an S3 bucket (package s3; see s3.ParseURL), credentials from the
//     standard AWS chain.
//
// Any other scheme, a file URL with a host, or an empty URL is an error.
func OpenURL(ctx context.Context, rawURL string, opts Options) (Store, error) {
	if rawURL == "" {
		return nil, errors.New("open blob store: empty URL")
	}
	scheme, _, hasScheme := strings.Cut(rawURL, "://")
	if !hasScheme {
		return openDir(rawURL, opts)
	}
	switch scheme {
	case "file":
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("open blob store %q: %w", rawURL, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("open blob store %q: file URLs take no host", rawURL)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.Path == "" {
			return nil, fmt.Errorf("open blob store %q: want file:///absolute/path", rawURL)
		}
		return openDir(u.Path, opts)
	case "s3":
		cfg, err := blobs3.ParseURL(rawURL)
		if err != nil {
			return nil, err
		}
		cfg.Credentials = opts.S3Credentials
		cfg.HTTPClient = opts.HTTPClient
		cfg.Logger = opts.Logger
		return blobs3.New(ctx, cfg)
	default:
		return nil, fmt.Errorf("open blob store: unsupported scheme %q (want file or s3)", scheme)
	}
}

func openDir(dir string, opts Options) (Store, error) {
	return blobfs.Open(filepath.Clean(dir), opts.Logger)
}
