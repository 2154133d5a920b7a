package archive

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Canonical entry modes and time.
const (
	// FileMode is the mode of a canonical non-executable file.
	FileMode = 0o644
	// ExecMode is the mode of a canonical executable file (any x bit set in
	// the upload) and of every directory.
	ExecMode = 0o755
)

// epoch is the mtime of every canonical entry ("mtime zero").
var epoch = time.Unix(0, 0).UTC()

// macOSMetadataDir is the folder of AppleDouble files that macOS's archiver
// adds to zip files; it is dropped from zip uploads.
const macOSMetadataDir = "__MACOSX"

// Normalize reads the uploaded archive src of the given format, validates
// every entry against lim (zero fields: defaults), and writes the canonical
// tar.gz of its tree to dst (through a temporary file in dst's directory,
// renamed into place, so dst is either complete or absent). One top-level
// folder is stripped when every entry shares it.
//
// A refusal is returned as an *Error (errors.Is one of the Err* reasons,
// ErrTooLarge meaning 413); I/O failures and a done ctx are returned wrapped.
// On any error nothing is left behind: no dst, no temporary file. Normalize
// is safe for concurrent use with distinct dst paths.
func Normalize(ctx context.Context, src string, format Format, dst string, lim Limits) (Result, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return Result{}, err
	}
	spool, err := os.CreateTemp(filepath.Dir(dst), ".vega-spool-*")
	if err != nil {
		return Result{}, fmt.Errorf("normalize %s: %w", src, err)
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	c := &collector{lim: lim, spool: spool, files: map[string]*entry{}, dirs: map[string]bool{}}

	f, err := os.Open(src)
	if err != nil {
		return Result{}, fmt.Errorf("normalize %s: %w", src, err)
	}
	defer f.Close()
	switch format {
	case FormatTarGz:
		err = c.readTarGz(ctx, f)
	case FormatZip:
		err = c.readZip(ctx, f)
	default:
		return Result{}, fmt.Errorf("normalize %s: unknown format %d", src, format)
	}
	if err != nil {
		return Result{}, wrapIO("normalize "+src, err)
	}
	items, res, err := c.finish()
	if err != nil {
		return Result{}, err
	}
	res.Digest, err = writeCanonical(ctx, dst, spool, items)
	if err != nil {
		return Result{}, wrapIO("write "+dst, err)
	}
	return res, nil
}

// wrapIO leaves refusals as they are (their message is for clients) and
// wraps anything else with the operation.
func wrapIO(op string, err error) error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	return fmt.Errorf("%s: %w", op, err)
}

type entry struct {
	path string // clean, after stripping
	raw  string // as in the archive, for error messages
	dir  bool
	exec bool
	off  int64 // in the spool file
	size int64
}

// collector validates entries as they stream by and spools file contents.
type collector struct {
	lim      Limits
	count    int
	total    int64
	spool    *os.File
	spoolOff int64
	files    map[string]*entry
	dirs     map[string]bool // explicit directories
	cur      string          // raw name of the entry being read
}

// next counts one archive entry.
func (c *collector) next(raw string) error {
	c.cur = raw
	c.count++
	if c.count > c.lim.MaxEntries {
		return refuse(ErrTooManyEntries, raw)
	}
	return nil
}

// checkSize refuses a file whose size (declared or so far read) is over the
// per-entry limit or would take the total over its limit.
func (c *collector) checkSize(raw string, size int64) error {
	if size > c.lim.MaxEntryBytes {
		return refuse(ErrEntryTooLarge, raw)
	}
	if size > c.lim.MaxTotalBytes-c.total {
		return refuse(ErrTooLarge, raw)
	}
	return nil
}

func (c *collector) addDir(clean string) {
	if clean != "" {
		c.dirs[clean] = true
	}
}

// addFile spools r's content. declared is the size the archive claims; the
// content must match it exactly.
func (c *collector) addFile(ctx context.Context, raw, clean string, declared int64, exec bool, r io.Reader) error {
	if clean == "" {
		return refuse(ErrBadName, raw)
	}
	if _, dup := c.files[clean]; dup {
		return refuse(ErrDuplicateEntry, raw)
	}
	if err := c.checkSize(raw, declared); err != nil {
		return err
	}
	n, err := io.Copy(c.spool, io.LimitReader(ctxReader{ctx, r}, declared+1))
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			return ae
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return err // reading the upload or writing the spool: I/O, not the archive
		}
		return &Error{Reason: ErrNotArchive, Entry: raw, Err: err}
	}
	if n != declared {
		return &Error{Reason: ErrNotArchive, Entry: raw, Err: fmt.Errorf("declared size %d, actual size %d", declared, n)}
	}
	c.files[clean] = &entry{path: clean, raw: raw, exec: exec, off: c.spoolOff, size: n}
	c.spoolOff += n
	c.total += n
	return nil
}

func (c *collector) readTarGz(ctx context.Context, f *os.File) error {
	in := &countingReader{r: f}
	gz, err := gzip.NewReader(in)
	if err != nil {
		return &Error{Reason: ErrNotArchive, Err: err}
	}
	defer gz.Close()
	g := &guardReader{
		ctx: ctx, r: gz, in: in, maxRatio: c.lim.MaxRatio, cur: &c.cur,
		maxOut: c.lim.MaxTotalBytes + int64(c.lim.MaxEntries)*tarOverheadPerEntry,
	}
	tr := tar.NewReader(g)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return c.streamError(ctx, err)
		}
		if err := c.next(hdr.Name); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		clean, dirSlash, err := cleanName(hdr.Name, c.lim.MaxNameBytes)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			c.addDir(clean)
		case tar.TypeReg:
			if dirSlash {
				return refuse(ErrBadName, hdr.Name)
			}
			if err := c.addFile(ctx, hdr.Name, clean, hdr.Size, hdr.Mode&0o111 != 0, tr); err != nil {
				return err
			}
		case tar.TypeSymlink, tar.TypeLink:
			return refuse(ErrLink, hdr.Name)
		default:
			return refuse(ErrSpecialFile, hdr.Name)
		}
	}
	// Read to the end of the gzip stream so that its checksum is verified.
	if _, err := io.Copy(io.Discard, g); err != nil {
		c.cur = ""
		return c.streamError(ctx, err)
	}
	return nil
}

func (c *collector) streamError(ctx context.Context, err error) error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &Error{Reason: ErrNotArchive, Entry: c.cur, Err: err}
}

func (c *collector) readZip(ctx context.Context, f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return &Error{Reason: ErrNotArchive, Err: err}
	}
	if len(zr.File) > c.lim.MaxEntries {
		return refuse(ErrTooManyEntries, "")
	}
	// Pass 1: headers only, so that a hostile archive is refused before
	// anything is inflated.
	type zentry struct {
		f     *zip.File
		clean string
		dir   bool
	}
	var todo []zentry
	var declared uint64
	for _, zf := range zr.File {
		if err := c.next(zf.Name); err != nil {
			return err
		}
		clean, dirSlash, err := cleanName(zf.Name, c.lim.MaxNameBytes)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode&fs.ModeSymlink != 0:
			return refuse(ErrLink, zf.Name)
		case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
			return refuse(ErrSpecialFile, zf.Name)
		}
		if zf.Flags&0x1 != 0 {
			return refuse(ErrEncrypted, zf.Name)
		}
		if first, _, _ := strings.Cut(clean, "/"); first == macOSMetadataDir {
			continue
		}
		isDir := dirSlash || mode.IsDir()
		if !isDir {
			if clean == "" {
				return refuse(ErrBadName, zf.Name)
			}
			if zf.UncompressedSize64 > uint64(c.lim.MaxEntryBytes) {
				return refuse(ErrEntryTooLarge, zf.Name)
			}
			declared += zf.UncompressedSize64
			if declared > uint64(c.lim.MaxTotalBytes) {
				return refuse(ErrTooLarge, zf.Name)
			}
			if zf.Method != zip.Store && zf.Method != zip.Deflate {
				return &Error{Reason: ErrNotArchive, Entry: zf.Name, Err: zip.ErrAlgorithm}
			}
		}
		todo = append(todo, zentry{f: zf, clean: clean, dir: isDir})
	}
	// Pass 2: inflate, with the ratio checked per entry and over the file.
	var outTotal int64
	for _, z := range todo {
		c.cur = z.f.Name
		if z.dir {
			c.addDir(z.clean)
			continue
		}
		err := c.readZipEntry(ctx, z.f, z.clean, st.Size(), &outTotal)
		if err != nil {
			return err
		}
	}
	return nil
}

// readZipEntry inflates one entry from its raw compressed bytes, so that
// the ratio is checked against the compressed bytes consumed so far (a bomb
// is stopped after about RatioGraceBytes, not after MaxRatio times its
// whole compressed size), and verifies the CRC-32 itself.
func (c *collector) readZipEntry(ctx context.Context, zf *zip.File, clean string, fileSize int64, outTotal *int64) error {
	raw, err := zf.OpenRaw()
	if err != nil {
		return &Error{Reason: ErrNotArchive, Entry: zf.Name, Err: err}
	}
	in := &countingReader{r: raw}
	var dec io.Reader = in
	if zf.Method == zip.Deflate {
		fr := flate.NewReader(in)
		defer fr.Close()
		dec = fr
	}
	crc := crc32.NewIEEE()
	g := &zipGuard{r: io.TeeReader(dec, crc), name: zf.Name, in: in, fileSize: fileSize, total: outTotal, maxRatio: c.lim.MaxRatio}
	if err := c.addFile(ctx, zf.Name, clean, int64(zf.UncompressedSize64), zf.Mode()&0o111 != 0, g); err != nil {
		return err
	}
	if crc.Sum32() != zf.CRC32 {
		return &Error{Reason: ErrNotArchive, Entry: zf.Name, Err: zip.ErrChecksum}
	}
	return nil
}

// zipGuard enforces the compression ratio on one zip entry, against the
// compressed bytes read so far, and, through total, on the whole file
// (overlapping entries can share compressed bytes).
type zipGuard struct {
	r        io.Reader
	name     string
	in       *countingReader
	out      int64
	fileSize int64
	total    *int64
	maxRatio int64
}

func (z *zipGuard) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	z.out += int64(n)
	*z.total += int64(n)
	if z.out > RatioGraceBytes && z.out > z.maxRatio*max(z.in.n, 1) ||
		*z.total > RatioGraceBytes && *z.total > z.maxRatio*max(z.fileSize, 1) {
		return n, refuse(ErrCompressionRatio, z.name)
	}
	return n, err
}

// finish resolves directories, conflicts and the top-level folder, and
// returns the canonical entries in order.
func (c *collector) finish() ([]*entry, Result, error) {
	all := map[string]bool{} // every directory, explicit or implied
	for d := range c.dirs {
		all[d] = true
		parentDirs(d, func(p string) { all[p] = true })
	}
	for p := range c.files {
		parentDirs(p, func(d string) { all[d] = true })
	}
	for p, e := range c.files {
		if all[p] {
			return nil, Result{}, refuse(ErrDuplicateEntry, e.raw)
		}
	}
	if len(c.files) == 0 {
		return nil, Result{}, refuse(ErrEmpty, "")
	}

	// Strip one top-level folder when every entry lies below it.
	top, strip := "", true
	consider := func(p string) {
		first, _, _ := strings.Cut(p, "/")
		if top == "" {
			top = first
		} else if first != top {
			strip = false
		}
	}
	for p := range c.files {
		consider(p)
	}
	for d := range c.dirs {
		consider(d)
	}
	if _, isFile := c.files[top]; isFile {
		strip = false
	}
	var res Result
	items := make([]*entry, 0, len(c.files)+len(all))
	trim := func(p string) string { return p }
	if strip {
		res.Stripped = top
		trim = func(p string) string { return strings.TrimPrefix(p, top+"/") }
		delete(all, top)
	}
	for d := range all {
		items = append(items, &entry{path: trim(d), dir: true})
	}
	for _, e := range c.files {
		e.path = trim(e.path)
		items = append(items, e)
		res.FileCount++
		res.SizeBytes += e.size
	}
	res.DirCount = len(all)
	slices.SortFunc(items, func(a, b *entry) int { return strings.Compare(a.path, b.path) })
	return items, res, nil
}

// writeCanonical writes items as a canonical tar.gz to dst, atomically,
// and returns the digest of the uncompressed tar stream.
func writeCanonical(ctx context.Context, dst string, spool *os.File, items []*entry) (digest string, err error) {
	out, err := os.CreateTemp(filepath.Dir(dst), ".vega-canonical-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	bw := bufio.NewWriterSize(out, 256<<10)
	gz, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(gz, h))
	for _, e := range items {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if err := tw.WriteHeader(canonicalHeader(e)); err != nil {
			return "", err
		}
		if !e.dir {
			if _, err := io.Copy(tw, ctxReader{ctx, io.NewSectionReader(spool, e.off, e.size)}); err != nil {
				return "", err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	if err := out.Chmod(FileMode); err != nil {
		return "", err
	}
	if err := out.Sync(); err != nil {
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(out.Name(), dst); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// canonicalHeader is the only header shape a canonical archive contains.
// With every other field zero, archive/tar picks USTAR and falls back to
// PAX only for a path USTAR cannot hold (too long or non-ASCII).
func canonicalHeader(e *entry) *tar.Header {
	if e.dir {
		return &tar.Header{Typeflag: tar.TypeDir, Name: e.path + "/", Mode: ExecMode, ModTime: epoch}
	}
	mode := int64(FileMode)
	if e.exec {
		mode = ExecMode
	}
	return &tar.Header{Typeflag: tar.TypeReg, Name: e.path, Size: e.size, Mode: mode, ModTime: epoch}
}
