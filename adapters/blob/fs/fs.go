// Package fs is the blob.Store of the one-machine shape: each object is a
// file under a root directory, reached only through an os.Root so that no
// key can name a path outside it.
//
// Put writes to a temporary file under the reserved ".tmp" folder of the
// root, fsyncs it, renames it onto the key's path and fsyncs the folder, so
// readers see the old or the whole new object and a crash leaves at worst an
// orphan temporary file (never a half object). Keys map to paths one to one,
// so a key cannot also be a "folder" of other keys ("a" and "a/b"): such a
// Put fails with blob.ErrInvalidKey, unlike in S3.
package fs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vega-sec/vega/adapters/blob"
)

// tmpDir holds in-flight Puts; blob.ValidateKey forbids dot-led keys, so
// it can never clash with an object.
const tmpDir = ".tmp"

// staleTempAge is the age past which Open removes a temporary file left
// by a crashed Put; no Put runs that long.
const staleTempAge = 24 * time.Hour

// Modes of what the store creates.
const (
	dirMode  = 0o750
	fileMode = 0o640
)

var _ blob.Store = (*Store)(nil)

// Store keeps objects as files under one directory. It is safe for
// concurrent use, also by several processes sharing the directory.
type Store struct {
	root *os.Root
	log  *slog.Logger
}

// Open opens (creating it if needed) the store rooted at dir. log may be
// nil. Close releases the directory handle.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("open blob dir %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open blob dir %s: %w", dir, err)
	}
	if err := root.MkdirAll(tmpDir, dirMode); err != nil {
		root.Close()
		return nil, fmt.Errorf("open blob dir %s: %w", dir, err)
	}
	s := &Store{root: root, log: log}
	s.removeStaleTemps()
	return s, nil
}

// removeStaleTemps deletes temporary files that crashed Puts left behind.
// Recent ones may belong to a Put of another process sharing the directory.
func (s *Store) removeStaleTemps() {
	des, err := iofs.ReadDir(s.root.FS(), tmpDir)
	if err != nil {
		s.log.Warn("blob: read temporary folder", "err", err)
		return
	}
	for _, de := range des {
		fi, err := de.Info()
		if err != nil || time.Since(fi.ModTime()) < staleTempAge {
			continue
		}
		if err := s.root.Remove(tmpDir + "/" + de.Name()); err != nil && !notFound(err) {
			s.log.Warn("blob: remove stale temporary file", "file", de.Name(), "err", err)
		}
	}
}

// Close releases the root directory. The Store is unusable afterwards.
func (s *Store) Close() error { return s.root.Close() }

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	tmp := tmpDir + "/" + hex.EncodeToString(rnd[:])
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			if rerr := s.root.Remove(tmp); rerr != nil && !errors.Is(rerr, iofs.ErrNotExist) {
				s.log.Warn("blob: remove temporary file", "file", tmp, "err", rerr)
			}
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("put %s: %w: declared %d, read %d", key, blob.ErrSizeMismatch, size, n)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	dir := path.Dir(key)
	// A concurrent Delete may remove an emptied parent folder between
	// MkdirAll and Rename: try again a few times.
	for attempt := 0; ; attempt++ {
		if dir != "." {
			if err := s.root.MkdirAll(dir, dirMode); err != nil {
				return fmt.Errorf("put %s: %w", key, conflict(err))
			}
		}
		err = s.root.Rename(tmp, key)
		if err == nil {
			break
		}
		if errors.Is(err, iofs.ErrNotExist) && attempt < 3 {
			continue
		}
		return fmt.Errorf("put %s: %w", key, conflict(err))
	}
	if d, err := s.root.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("put %s: sync dir: %w", key, err)
		}
	}
	return nil
}

// conflict turns "a parent is a file" and "the key is a folder" into
// blob.ErrInvalidKey.
func conflict(err error) error {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		return fmt.Errorf("%w: conflicts with an existing key: %w", blob.ErrInvalidKey, err)
	}
	return err
}

func notFound(err error) bool {
	return errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := blob.ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	f, err := s.root.Open(key)
	if notFound(err) {
		return nil, fmt.Errorf("get %s: %w", key, blob.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, blob.ErrNotFound)
	}
	return f, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	if err := blob.ValidateKey(key); err != nil {
		return blob.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	fi, err := s.root.Lstat(key)
	if notFound(err) || (err == nil && !fi.Mode().IsRegular()) {
		return blob.Info{}, fmt.Errorf("stat %s: %w", key, blob.ErrNotFound)
	}
	if err != nil {
		return blob.Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return blob.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements blob.Store. Folders it empties are removed too.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	fi, err := s.root.Lstat(key)
	if notFound(err) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := s.root.Remove(key); err != nil && !notFound(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	for d := path.Dir(key); d != "."; d = path.Dir(d) {
		if s.root.Remove(d) != nil { // not empty (or gone): stop
			break
		}
	}
	return nil
}

// List implements blob.Store. It reads the matching part of the tree before
// calling fn, so fn may modify the store.
func (s *Store) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return err
	}
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i > 0 {
		start = prefix[:i]
	}
	var infos []blob.Info
	err := iofs.WalkDir(s.root.FS(), start, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if p == start && notFound(err) {
				return iofs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != "." {
			if d.IsDir() {
				return iofs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			// Skip folders that cannot hold a match.
			if p != "." && !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
				return iofs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(p, prefix) {
			return nil
		}
		fi, err := d.Info()
		if notFound(err) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		infos = append(infos, blob.Info{Key: p, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	slices.SortFunc(infos, func(a, b blob.Info) int { return strings.Compare(a.Key, b.Key) })
	for _, in := range infos {
		if err := fn(in); err != nil {
			return err
		}
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
