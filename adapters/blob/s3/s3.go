// Package s3 is the blob.Store of the distributed shape, on Amazon S3 or any
// S3-compatible service (MinIO, Ceph, …) through aws-sdk-go-v2.
//
// Put buffers at most one part (PartSize, 16 MiB by default) in memory: an
// object that fits in one part is sent with a single PutObject, anything
// larger or of unknown size with a multipart upload whose parts are sent one
// after the other, and which is aborted on any failure. Either way S3 makes
// the object visible only once complete, so readers never see half of it
// and a failed Put leaves nothing.
//
// Integrity: every request's payload is signed with SigV4 (its SHA-256 is
// part of the signature), so the SDK's optional CRC checksums are asked for
// only "when required"; several S3-compatible services reject them.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/vega-sec/vega/adapters/blob"
)

// Multipart upload sizes.
const (
	// DefaultPartSize is the part size of multipart uploads, and the largest
	// object sent with a single PutObject.
	DefaultPartSize int64 = 16 << 20
	// MinPartSize is S3's minimum size of every part but the last.
	MinPartSize int64 = 5 << 20
	// MaxPartSize bounds PartSize, hence the memory one Put holds.
	MaxPartSize int64 = 512 << 20
	// maxParts is S3's limit of parts per upload: at the default part size
	// an object may reach 156 GiB.
	maxParts = 10_000
	// abortTimeout bounds the clean-up of a failed multipart upload, which
	// runs even when the Put's context is done.
	abortTimeout = 30 * time.Second
	// defaultRegion is used when neither the URL nor the environment names
	// one (S3-compatible services mostly ignore it).
	defaultRegion = "us-east-1"
)

// Server-side encryption modes for Config.SSE.
const (
	SSENone   = ""
	SSEAES256 = string(types.ServerSideEncryptionAes256)
	SSEKMS    = string(types.ServerSideEncryptionAwsKms)
)

// Config configures a Store. Only Bucket is required.
type Config struct {
	// Bucket must exist; the store never creates it.
	Bucket string
	// Prefix is prepended to every key ("vega/" stores "a" as "vega/a").
	// A non-empty prefix without a trailing "/" gets one.
	Prefix string
	// Region overrides the region from the environment (default us-east-1).
	Region string
	// Endpoint overrides the S3 endpoint, e.g. http://127.0.0.1:9000.
	Endpoint string
	// PathStyle addresses buckets as endpoint/bucket instead of
	// bucket.endpoint (needed by most S3-compatible services).
	PathStyle bool
	// SSE is the server-side encryption asked for on every write:
	// SSENone, SSEAES256 or SSEKMS.
	SSE string
	// SSEKMSKeyID is the KMS key for SSEKMS ("" uses the account's default
	// aws/s3 key). Only valid with SSEKMS.
	SSEKMSKeyID string
	// PartSize is the multipart part size, in [MinPartSize, MaxPartSize]
	// (0: DefaultPartSize).
	PartSize int64
	// Credentials overrides the standard AWS credential chain (environment,
	// shared files, IMDS/ECS roles). Tests pass static credentials.
	Credentials aws.CredentialsProvider
	// HTTPClient overrides the SDK's HTTP client.
	HTTPClient *http.Client
	// Logger receives warnings (nil: discard).
	Logger *slog.Logger
}

// ParseURL reads a Config from a URL of the form
// s3://bucket/prefix?region=us-east-1&endpoint=http://127.0.0.1:9000&path_style=true&sse=AES256&sse_kms_key_id=...&part_size=16777216.
// Unknown parameters are an error, so a typo does not silently drop
// encryption. Credentials never come from the URL.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("parse blob url: %w", err)
	}
	if u.Scheme != "s3" {
		return Config{}, fmt.Errorf("parse blob url: scheme %q is not s3", u.Scheme)
	}
	if u.User != nil {
		return Config{}, errors.New("parse blob url: credentials do not belong in the URL; use the AWS environment")
	}
	cfg := Config{Bucket: u.Host, Prefix: strings.TrimPrefix(u.Path, "/")}
	q := u.Query()
	for k, vs := range q {
		if len(vs) != 1 {
			return Config{}, fmt.Errorf("parse blob url: parameter %s given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "region":
			cfg.Region = v
		case "endpoint":
			cfg.Endpoint = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("parse blob url: path_style: %w", err)
			}
			cfg.PathStyle = b
		case "sse":
			cfg.SSE = v
		case "sse_kms_key_id":
			cfg.SSEKMSKeyID = v
		case "part_size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Config{}, fmt.Errorf("parse blob url: part_size: %w", err)
			}
			cfg.PartSize = n
		default:
			return Config{}, fmt.Errorf("parse blob url: unknown parameter %q", k)
		}
	}
	return cfg, cfg.Validate()
}

// Validate checks the Config and fills nothing in.
func (c Config) Validate() error {
	if c.Bucket == "" {
		return errors.New("s3 config: bucket is required")
	}
	switch c.SSE {
	case SSENone, SSEAES256, SSEKMS:
	default:
		return fmt.Errorf("s3 config: sse %q is not %q or %q", c.SSE, SSEAES256, SSEKMS)
	}
	if c.SSEKMSKeyID != "" && c.SSE != SSEKMS {
		return fmt.Errorf("s3 config: sse_kms_key_id needs sse=%s", SSEKMS)
	}
	if c.PartSize != 0 && (c.PartSize < MinPartSize || c.PartSize > MaxPartSize) {
		return fmt.Errorf("s3 config: part size %d not in [%d, %d]", c.PartSize, MinPartSize, MaxPartSize)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("s3 config: endpoint %q is not an http(s) URL", c.Endpoint)
		}
	}
	if c.Prefix != "" {
		if err := blob.ValidatePrefix(c.Prefix); err != nil {
			return fmt.Errorf("s3 config: prefix: %w", err)
		}
	}
	return nil
}

var _ blob.Store = (*Store)(nil)

// Store keeps objects in one S3 bucket. It is safe for concurrent use.
type Store struct {
	client   *awss3.Client
	bucket   string
	prefix   string
	sse      types.ServerSideEncryption
	kmsKey   *string
	partSize int64
	log      *slog.Logger
}

// New builds a Store from cfg, loading region and credentials from the
// standard AWS chain for whatever cfg leaves unset. It does not contact S3.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(cfg.HTTPClient))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = defaultRegion
	}
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	s := &Store{
		client:   client,
		bucket:   cfg.Bucket,
		prefix:   cfg.Prefix,
		sse:      types.ServerSideEncryption(cfg.SSE),
		partSize: cfg.PartSize,
		log:      cfg.Logger,
	}
	if s.prefix != "" && !strings.HasSuffix(s.prefix, "/") {
		s.prefix += "/"
	}
	if cfg.SSEKMSKeyID != "" {
		s.kmsKey = aws.String(cfg.SSEKMSKeyID)
	}
	if s.partSize == 0 {
		s.partSize = DefaultPartSize
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Close releases nothing; it lets a Store stand where an io.Closer is
// expected.
func (s *Store) Close() error { return nil }

func (s *Store) full(key string) *string { return aws.String(s.prefix + key) }

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	// Read up to one part; the buffer grows with the data, so small objects
	// of unknown size do not cost a whole part of memory.
	limit := s.partSize
	var first bytes.Buffer
	if size >= 0 && size < limit {
		limit = size + 1 // one more byte reveals a reader longer than declared
		first.Grow(int(limit))
	}
	n, err := io.CopyN(&first, ctxReader{ctx, r}, limit)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if n < s.partSize {
		if size >= 0 && n != size {
			return fmt.Errorf("put %s: %w: declared %d, read at least %d", key, blob.ErrSizeMismatch, size, n)
		}
		in := &awss3.PutObjectInput{
			Bucket: aws.String(s.bucket), Key: s.full(key),
			Body: bytes.NewReader(first.Bytes()), ContentLength: aws.Int64(n),
			ServerSideEncryption: s.sse, SSEKMSKeyId: s.kmsKey,
		}
		if _, err := s.client.PutObject(ctx, in); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		return nil
	}
	buf := first.Bytes()[:s.partSize]
	return s.multipart(ctx, key, r, size, buf)
}

// multipart uploads buf (full) and the rest of r, one part at a time.
func (s *Store) multipart(ctx context.Context, key string, r io.Reader, size int64, buf []byte) (err error) {
	up, err := s.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: s.full(key),
		ServerSideEncryption: s.sse, SSEKMSKeyId: s.kmsKey,
	})
	if err != nil {
		return fmt.Errorf("put %s: create multipart upload: %w", key, err)
	}
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: s.full(key), UploadId: up.UploadId,
		}); aerr != nil {
			s.log.Warn("blob: abort multipart upload", "key", key, "upload_id", aws.ToString(up.UploadId), "err", aerr)
		}
	}()
	var parts []types.CompletedPart
	var total int64
	n := len(buf)
	for num := int32(1); n > 0; num++ {
		if num > maxParts {
			return fmt.Errorf("put %s: more than %d parts of %d bytes", key, maxParts, s.partSize)
		}
		total += int64(n)
		if size >= 0 && total > size {
			return fmt.Errorf("put %s: %w: declared %d, read more", key, blob.ErrSizeMismatch, size)
		}
		out, err := s.client.UploadPart(ctx, &awss3.UploadPartInput{
			Bucket: aws.String(s.bucket), Key: s.full(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(num), Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return fmt.Errorf("put %s: upload part %d: %w", key, num, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		if n < len(buf) {
			break // short read: that was the last part
		}
		if n, err = readFull(ctx, r, buf); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
	}
	if size >= 0 && total != size {
		return fmt.Errorf("put %s: %w: declared %d, read %d", key, blob.ErrSizeMismatch, size, total)
	}
	if _, err := s.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: s.full(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		return fmt.Errorf("put %s: complete multipart upload: %w", key, err)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readFull fills buf from r; a short count with a nil error means r ended.
func readFull(ctx context.Context, r io.Reader, buf []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(r, buf)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	if err == nil {
		err = ctx.Err()
	}
	return n, err
}

// isNotFound recognises S3's 404s (NoSuchKey on GET, a bare 404 on HEAD).
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var re *awshttp.ResponseError
	return errors.As(err, &nsk) || errors.As(err, &nf) || (errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound)
}

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := blob.ValidateKey(key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s.bucket), Key: s.full(key)})
	if isNotFound(err) {
		return nil, fmt.Errorf("get %s: %w", key, blob.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return out.Body, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	if err := blob.ValidateKey(key); err != nil {
		return blob.Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: s.full(key)})
	if isNotFound(err) {
		return blob.Info{}, fmt.Errorf("stat %s: %w", key, blob.ErrNotFound)
	}
	if err != nil {
		return blob.Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return blob.Info{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: s.full(key)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// List implements blob.Store. Objects under the store's prefix whose key is
// not a valid blob key (written by something else) are skipped.
func (s *Store) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return err
	}
	p := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %q: %w", prefix, err)
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if blob.ValidateKey(key) != nil {
				continue
			}
			if err := fn(blob.Info{Key: key, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}
