package archive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// Extract writes the tree of a canonical tar.gz (as written by Normalize)
// into dir, creating dir if needed. Every write goes through an os.Root
// opened on dir, so no entry can land outside it whatever its name, and
// every entry is validated again as in Normalize (regular files and
// directories only, safe names, no duplicates, entry and size limits), so a
// snapshot altered in storage is refused rather than trusted.
//
// The compression ratio is not checked here: a canonical archive may
// legitimately compress better than the upload it came from, and the size
// limits bound the output.
//
// Result carries the digest of the tar stream read, which the caller compares
// with the snapshot's recorded digest. dir should be empty; on error it may
// hold a partial tree, which the caller owns and removes. Refusals are
// *Error values; other failures are wrapped.
func Extract(ctx context.Context, src, dir string, lim Limits) (Result, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(dir, ExecMode); err != nil {
		return Result{}, fmt.Errorf("extract to %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Result{}, fmt.Errorf("extract to %s: %w", dir, err)
	}
	defer root.Close()
	f, err := os.Open(src)
	if err != nil {
		return Result{}, fmt.Errorf("extract %s: %w", src, err)
	}
	defer f.Close()
	res, err := extract(ctx, f, root, lim)
	if err != nil {
		return Result{}, wrapIO("extract "+src, err)
	}
	return res, nil
}

func extract(ctx context.Context, f io.Reader, root *os.Root, lim Limits) (Result, error) {
	var res Result
	in := &countingReader{r: f}
	gz, err := gzip.NewReader(in)
	if err != nil {
		return res, &Error{Reason: ErrNotArchive, Err: err}
	}
	defer gz.Close()
	var cur string
	h := sha256.New()
	g := &guardReader{ctx: ctx, r: io.TeeReader(gz, h), in: in, cur: &cur,
		maxOut: lim.MaxTotalBytes + int64(lim.MaxEntries)*tarOverheadPerEntry}
	streamErr := func(err error) error {
		var ae *Error
		if errors.As(err, &ae) {
			return ae
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return err // our file system, not the archive
		}
		return &Error{Reason: ErrNotArchive, Entry: cur, Err: err}
	}
	tr := tar.NewReader(g)
	files := map[string]bool{}
	dirs := map[string]bool{}
	count := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, streamErr(err)
		}
		cur = hdr.Name
		if count++; count > lim.MaxEntries {
			return res, refuse(ErrTooManyEntries, hdr.Name)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		clean, _, err := cleanName(hdr.Name, lim.MaxNameBytes)
		if err != nil {
			return res, err
		}
		conflict := false
		parentDirs(clean, func(p string) { conflict = conflict || files[p] })
		if conflict {
			return res, refuse(ErrDuplicateEntry, hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if clean == "" || dirs[clean] {
				continue
			}
			if files[clean] {
				return res, refuse(ErrDuplicateEntry, hdr.Name)
			}
			if err := root.MkdirAll(clean, ExecMode); err != nil {
				return res, fmt.Errorf("create directory %s: %w", clean, err)
			}
			dirs[clean] = true
			res.DirCount++
		case tar.TypeReg:
			if clean == "" {
				return res, refuse(ErrBadName, hdr.Name)
			}
			if files[clean] || dirs[clean] {
				return res, refuse(ErrDuplicateEntry, hdr.Name)
			}
			if hdr.Size > lim.MaxEntryBytes {
				return res, refuse(ErrEntryTooLarge, hdr.Name)
			}
			if hdr.Size > lim.MaxTotalBytes-res.SizeBytes {
				return res, refuse(ErrTooLarge, hdr.Name)
			}
			if err := writeFile(ctx, root, clean, hdr.Mode&0o111 != 0, tr); err != nil {
				return res, streamErr(err)
			}
			files[clean] = true
			res.FileCount++
			res.SizeBytes += hdr.Size
		case tar.TypeSymlink, tar.TypeLink:
			return res, refuse(ErrLink, hdr.Name)
		default:
			return res, refuse(ErrSpecialFile, hdr.Name)
		}
	}
	if _, err := io.Copy(io.Discard, g); err != nil {
		return res, streamErr(err)
	}
	res.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return res, nil
}

// writeFile creates name (which must not exist) under root and copies r
// into it. O_EXCL also keeps an existing entry, of any kind, from being
// written through.
func writeFile(ctx context.Context, root *os.Root, name string, exec bool, r io.Reader) error {
	if d := path.Dir(name); d != "." {
		if err := root.MkdirAll(d, ExecMode); err != nil {
			return fmt.Errorf("create directory %s: %w", d, err)
		}
	}
	mode := os.FileMode(FileMode)
	if exec {
		mode = ExecMode
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if _, err := io.Copy(f, ctxReader{ctx, r}); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil { // umask-independent
		f.Close()
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	return nil
}
