// Package snapshot captures repository snapshots into the blob store and
// records them: archive uploads (Upload, called by the HTTP layer) and git
// captures (CaptureGit, called by the worker when it sees
// SnapshotRequested). Both paths end in the same canonical tar.gz
// (archive.Normalize), stored content-addressed under BlobKey(digest), so
// a snapshot's blob is found from its recorded digest alone and identical
// trees share one blob.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vega-sec/vega/adapters/blob"
	"github.com/vega-sec/vega/adapters/source/archive"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
)

// DefaultMaxUploadBytes is the upload limit Upload applies when called with
// maxBytes <= 0 (VEGA_MAX_SNAPSHOT_BYTES's default, 512 MiB).
const DefaultMaxUploadBytes int64 = 512 << 20

// BlobKeyPrefix starts the key of every snapshot blob.
const BlobKeyPrefix = "snapshots/sha256/"

// BlobKey returns the blob key of the canonical snapshot with the given
// digest, "snapshots/sha256/<hex>.tar.gz". It fails for a digest that is not
// "sha256:" and 64 lower-case hex digits.
func BlobKey(digest string) (string, error) {
	if err := (domain.Capture{Digest: digest}).Validate(); err != nil {
		return "", fmt.Errorf("blob key of %q: %w", digest, err)
	}
	return BlobKeyPrefix + strings.TrimPrefix(digest, "sha256:") + ".tar.gz", nil
}

// Blobs is what the service needs of a blob.Store.
type Blobs interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	Stat(ctx context.Context, key string) (blob.Info, error)
}

// GitSource captures a ref of a git remote into a canonical tar.gz at dst
// and returns its archive.Result and the commit captured. adapters/source/git
// implements it. Its errors' messages must be safe to record and show.
type GitSource interface {
	Capture(ctx context.Context, rawURL, ref, dst string) (archive.Result, string, error)
}

// Config tunes New. The zero value is valid.
type Config struct {
	// TempDir is where uploads are spooled and canonicalised (default
	// os.TempDir()). Each call works in a private sub-directory it removes.
	TempDir string
	// Limits bound the archives accepted (zero fields: archive's defaults).
	Limits archive.Limits
	// Git performs git captures; nil: CaptureGit fails.
	Git GitSource
	// Logger (nil: discard).
	Logger *slog.Logger
}

// Service stores and records snapshots. It is safe for concurrent use.
type Service struct {
	h     *commands.Handlers
	blobs Blobs
	cfg   Config
	log   *slog.Logger
}

// New returns a Service recording through h and storing in blobs.
func New(h *commands.Handlers, blobs Blobs, cfg Config) (*Service, error) {
	if h == nil || blobs == nil {
		return nil, errors.New("new snapshot service: handlers and blob store are required")
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{h: h, blobs: blobs, cfg: cfg, log: log.With("component", "snapshot")}, nil
}

// Upload captures an uploaded archive as a new snapshot of the archive
// repository repositoryID, on behalf of the context's commands.Request:
// it streams body to a private temporary file (never held in memory),
// refusing more than maxBytes (<= 0: DefaultMaxUploadBytes), canonicalises
// it with archive.Normalize, stores the canonical tar.gz under
// BlobKey(digest) unless a blob is already there, and records
// SnapshotCaptured.
//
// Errors: *UnsupportedMediaTypeError (ErrUnsupportedMediaType, 415) for a
// contentType other than application/gzip, application/x-gzip or
// application/zip (and their aliases, see archive.FormatFromMediaType);
// *TooLargeError (ErrTooLarge, 413) over maxBytes or an archive size limit;
// *InvalidArchiveError (a *domain.InvalidArgumentError for "archive", 400)
// for a refused archive; and the errors of commands.RecordSnapshotCaptured
// and of loading the repository (domain.ErrNotFound for an unknown or
// removed repository, an *domain.InvalidArgumentError for "source.kind" for
// a git repository, domain.ErrConflict for an archived project). A refused
// upload records nothing and leaves no file and no blob behind.
func (s *Service) Upload(ctx context.Context, repositoryID, contentType string, body io.Reader, maxBytes int64) (commands.SnapshotResult, error) {
	format, ok := archive.FormatFromMediaType(contentType)
	if !ok {
		return commands.SnapshotResult{}, &UnsupportedMediaTypeError{ContentType: contentType}
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxUploadBytes
	}
	// Refuse uploads to a repository that cannot take them before reading
	// the body; RecordSnapshotCaptured checks again, authoritatively.
	r, _, err := s.h.Streams.Repositories.Load(ctx, repositoryID)
	if err != nil {
		return commands.SnapshotResult{}, fmt.Errorf("upload snapshot: %w", err)
	}
	if err := r.EnsureActive(); err != nil {
		return commands.SnapshotResult{}, fmt.Errorf("upload snapshot: %w", err)
	}
	if r.Source.Kind != domain.SourceArchive {
		return commands.SnapshotResult{}, &domain.InvalidArgumentError{Field: "source.kind",
			Reason: fmt.Sprintf("repository %s is a %s repository; request a git capture instead", r.ID, r.Source.Kind)}
	}

	dir, err := os.MkdirTemp(s.cfg.TempDir, "vega-upload-*")
	if err != nil {
		return commands.SnapshotResult{}, fmt.Errorf("upload snapshot: %w", err)
	}
	defer os.RemoveAll(dir)
	spool := filepath.Join(dir, "upload")
	if err := spoolBody(spool, body, maxBytes); err != nil {
		return commands.SnapshotResult{}, err
	}
	canonical := filepath.Join(dir, "canonical.tar.gz")
	res, err := archive.Normalize(ctx, spool, format, canonical, s.cfg.Limits)
	if err != nil {
		return commands.SnapshotResult{}, archiveError(err)
	}
	if err := os.Remove(spool); err != nil {
		return commands.SnapshotResult{}, fmt.Errorf("upload snapshot: %w", err)
	}
	if err := s.store(ctx, canonical, res.Digest); err != nil {
		return commands.SnapshotResult{}, err
	}
	out, err := s.h.RecordSnapshotCaptured.Handle(ctx, commands.RecordSnapshotCaptured{RepositoryID: repositoryID,
		Capture: domain.Capture{Digest: res.Digest, SizeBytes: res.SizeBytes, FileCount: res.FileCount}})
	if err != nil {
		return commands.SnapshotResult{}, fmt.Errorf("upload snapshot: %w", err)
	}
	return out, nil
}

// spoolBody copies body to path, refusing more than maxBytes.
func spoolBody(path string, body io.Reader, maxBytes int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("upload snapshot: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(body, maxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("upload snapshot: read body: %w", err)
	}
	if n > maxBytes {
		return &TooLargeError{Limit: maxBytes}
	}
	return nil
}

// archiveError sorts a Normalize failure into the service's error kinds.
func archiveError(err error) error {
	var ae *archive.Error
	switch {
	case !errors.As(err, &ae):
		return fmt.Errorf("upload snapshot: %w", err)
	case archive.IsTooLarge(err):
		return &TooLargeError{Err: ae}
	default:
		return &InvalidArchiveError{Err: ae}
	}
}

// store puts the canonical tar.gz at path under its digest's key unless a
// blob is already there (same digest, same canonical bytes).
func (s *Service) store(ctx context.Context, path, digest string) error {
	key, err := BlobKey(digest)
	if err != nil {
		return fmt.Errorf("store snapshot: %w", err)
	}
	if _, err := s.blobs.Stat(ctx, key); err == nil {
		return nil
	} else if !errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("store snapshot %s: %w", key, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store snapshot %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store snapshot %s: %w", key, err)
	}
	if err := s.blobs.Put(ctx, key, f, fi.Size()); err != nil {
		return fmt.Errorf("store snapshot %s: %w", key, err)
	}
	return nil
}

// CaptureGit performs the pending git capture snapshotID of repository
// repositoryID, on behalf of the context's commands.Request: it captures
// the snapshot's ref (set when it was requested) from the repository's
// source URL through Config.Git, stores the canonical tar.gz like Upload,
// and records SnapshotCaptured with the commit, or SnapshotFailed with the
// capture's error as the reason. A snapshot that is no longer pending is
// left alone (a redelivered request): no error. It returns an error (and
// records nothing) only when the outcome could not be recorded or ctx
// ended, so that the caller retries.
func (s *Service) CaptureGit(ctx context.Context, repositoryID, snapshotID string) (commands.SnapshotResult, error) {
	if s.cfg.Git == nil {
		return commands.SnapshotResult{}, errors.New("capture git snapshot: no git source configured")
	}
	r, _, err := s.h.Streams.Repositories.Load(ctx, repositoryID)
	if err != nil {
		return commands.SnapshotResult{}, fmt.Errorf("capture git snapshot %s: %w", snapshotID, err)
	}
	snap, ok := r.Snapshot(snapshotID)
	if !ok {
		return commands.SnapshotResult{}, fmt.Errorf("capture git snapshot %s of repository %s: %w", snapshotID, repositoryID, domain.ErrNotFound)
	}
	if snap.Status != domain.SnapshotStatusPending {
		return commands.SnapshotResult{RepositoryID: r.ID, Snapshot: snap}, nil
	}
	fail := func(reason string) (commands.SnapshotResult, error) {
		out, err := s.h.RecordSnapshotFailed.Handle(ctx, commands.RecordSnapshotFailed{RepositoryID: r.ID, SnapshotID: snapshotID, Reason: reason})
		if err != nil {
			return commands.SnapshotResult{}, fmt.Errorf("capture git snapshot %s: %w", snapshotID, err)
		}
		return out, nil
	}
	if r.Removed {
		return fail("repository was removed")
	}
	if r.Source.Kind != domain.SourceGit {
		return fail("repository is not a git repository")
	}
	dir, err := os.MkdirTemp(s.cfg.TempDir, "vega-git-*")
	if err != nil {
		return commands.SnapshotResult{}, fmt.Errorf("capture git snapshot %s: %w", snapshotID, err)
	}
	defer os.RemoveAll(dir)
	canonical := filepath.Join(dir, "canonical.tar.gz")
	res, commit, err := s.cfg.Git.Capture(ctx, r.Source.URL, snap.Ref, canonical)
	if err != nil {
		if ctx.Err() != nil {
			return commands.SnapshotResult{}, fmt.Errorf("capture git snapshot %s: %w", snapshotID, ctx.Err())
		}
		s.log.Info("git capture failed", "repository_id", r.ID, "snapshot_id", snapshotID, "error", err)
		return fail(err.Error())
	}
	if err := s.store(ctx, canonical, res.Digest); err != nil {
		return commands.SnapshotResult{}, fmt.Errorf("capture git snapshot %s: %w", snapshotID, err)
	}
	out, err := s.h.RecordSnapshotCaptured.Handle(ctx, commands.RecordSnapshotCaptured{RepositoryID: r.ID, SnapshotID: snapshotID,
		Capture: domain.Capture{Digest: res.Digest, SizeBytes: res.SizeBytes, FileCount: res.FileCount, Commit: commit}})
	if errors.Is(err, domain.ErrNotFound) {
		return fail("repository was removed")
	}
	if err != nil {
		return commands.SnapshotResult{}, fmt.Errorf("capture git snapshot %s: %w", snapshotID, err)
	}
	return out, nil
}
