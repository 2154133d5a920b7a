// Package archive turns uploaded tar.gz and zip archives into Vega's
// canonical snapshot form, and extracts canonical snapshots for runners.
//
// Normalize validates every entry of an upload and writes a canonical
// tar.gz: regular files and directories only, sorted by path, mode 0644 or
// 0755, mtime zero (the Unix epoch), uid/gid 0, no user or group names and no
// PAX records beyond those a long or non-ASCII path needs. Its digest is the
// SHA-256 of the canonical uncompressed tar stream, so the same tree has the
// same digest whatever format, entry order or timestamps it arrived with.
//
// Safety rules, applied while the bytes flow so that a hostile archive is
// stopped early rather than after it has been inflated:
//
//   - Only regular files and directories. Symbolic and hard links are refused
//     altogether (ErrLink), not only those that point outside the tree: a
//     snapshot never needs them, and refusing them all removes every
//     link-based escape (zip slip through a link, link then write-through).
//     Devices, FIFOs, sockets and sparse or other exotic tar types are
//     refused with ErrSpecialFile.
//   - Names: relative, forward slashes only, no "..", no NUL or control
//     characters, valid UTF-8, at most MaxNameBytes bytes (and 255 per
//     component). "." components, a leading "./" and repeated slashes are
//     dropped.
//   - Duplicates: two files with the same path, or a file and a directory
//     with the same path (including a file that is the parent of another
//     entry), are refused with ErrDuplicateEntry. A directory listed twice is
//     harmless and accepted. Paths that differ only in letter case are
//     accepted: snapshots are extracted on case-sensitive Linux file systems
//     and real repositories (the Linux kernel) contain such pairs. Unicode
//     normalisation forms are likewise compared byte for byte.
//   - Limits on entry count, total and per-entry uncompressed size and
//     compression ratio (see Limits and DefaultLimits).
//   - Zip entries that are encrypted are refused; declared sizes are checked
//     against the limits before inflating and against the actual data while
//     inflating; CRC-32 is verified.
//
// Zip archives made by macOS carry a "__MACOSX/" tree of AppleDouble
// metadata; it is dropped. A tar "pax_global_header" (git archive writes
// one) is metadata, not an entry, and is skipped. After that, one top-level
// folder is stripped when every entry lies below it (API.md rule).
//
// Archives are never held in memory: Normalize spools file contents to a
// temporary file beside its output, and removes it and any partial output on
// every error.
package archive

import (
	"errors"
	"fmt"
	"mime"
	"strings"
)

// Format is the container format of an uploaded archive.
type Format int

// Formats. Values are stable; never reorder.
const (
	// FormatTarGz is a POSIX tar stream compressed with gzip. Bare tar is
	// not accepted.
	FormatTarGz Format = iota + 1
	// FormatZip is a PKZIP archive (stored or deflated entries).
	FormatZip
)

// String returns "tar.gz", "zip" or "unknown".
func (f Format) String() string {
	switch f {
	case FormatTarGz:
		return "tar.gz"
	case FormatZip:
		return "zip"
	default:
		return "unknown"
	}
}

// FormatFromMediaType maps an upload's Content-Type to a Format:
// application/gzip (and its x- and tar+gzip aliases) to FormatTarGz,
// application/zip (and x-zip-compressed) to FormatZip. ok is false for any
// other type; the HTTP layer answers 415 then.
func FormatFromMediaType(contentType string) (f Format, ok bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, false
	}
	switch strings.ToLower(mt) {
	case "application/gzip", "application/x-gzip", "application/x-tar+gzip", "application/x-gtar", "application/tar+gzip":
		return FormatTarGz, true
	case "application/zip", "application/x-zip-compressed", "application/x-zip":
		return FormatZip, true
	}
	return 0, false
}

// Default limits, used by DefaultLimits and for every zero field of Limits.
const (
	// DefaultMaxEntries caps the number of entries (files, directories and
	// skipped metadata entries) in one archive.
	DefaultMaxEntries = 100_000
	// DefaultMaxTotalBytes caps the sum of all file sizes (2 GiB).
	DefaultMaxTotalBytes int64 = 2 << 30
	// DefaultMaxEntryBytes caps one file's size (256 MiB).
	DefaultMaxEntryBytes int64 = 256 << 20
	// DefaultMaxRatio caps uncompressed/compressed bytes (200:1).
	DefaultMaxRatio int64 = 200
	// DefaultMaxNameBytes caps an entry's path length in bytes.
	DefaultMaxNameBytes = 1024
	// MaxComponentBytes caps one path component, the limit of common Linux
	// file systems; a longer one could not be extracted.
	MaxComponentBytes = 255
	// RatioGraceBytes is how many uncompressed bytes may flow before the
	// compression ratio is enforced: small, highly compressible inputs (a
	// few files of zeros) legitimately exceed any ratio, and are harmless.
	RatioGraceBytes int64 = 1 << 20
	// tarOverheadPerEntry bounds the tar stream bytes per entry that are not
	// file content (header blocks, PAX records for long names, padding).
	tarOverheadPerEntry int64 = 8 << 10
)

// Limits bound what Normalize and Extract accept. A zero field takes its
// default; a negative field is invalid. Exceeding MaxTotalBytes is
// ErrTooLarge, which the HTTP layer maps to 413 payload_too_large (like
// ErrEntryTooLarge, ErrTooManyEntries and ErrCompressionRatio); every other
// refusal is 400 invalid_argument.
type Limits struct {
	// MaxEntries caps the entry count (default DefaultMaxEntries).
	MaxEntries int
	// MaxTotalBytes caps the total uncompressed size of all files
	// (default DefaultMaxTotalBytes).
	MaxTotalBytes int64
	// MaxEntryBytes caps one file's uncompressed size
	// (default DefaultMaxEntryBytes).
	MaxEntryBytes int64
	// MaxRatio caps uncompressed/compressed bytes, checked as bytes flow,
	// over the whole gzip stream and per zip entry and over the whole zip
	// file, once RatioGraceBytes have flowed (default DefaultMaxRatio).
	MaxRatio int64
	// MaxNameBytes caps an entry's path length (default DefaultMaxNameBytes).
	MaxNameBytes int
}

// DefaultLimits returns the documented defaults: 100,000 entries, 2 GiB in
// total, 256 MiB per file, a 200:1 compression ratio and 1024-byte names.
func DefaultLimits() Limits {
	return Limits{
		MaxEntries:    DefaultMaxEntries,
		MaxTotalBytes: DefaultMaxTotalBytes,
		MaxEntryBytes: DefaultMaxEntryBytes,
		MaxRatio:      DefaultMaxRatio,
		MaxNameBytes:  DefaultMaxNameBytes,
	}
}

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxEntries < 0 || l.MaxTotalBytes < 0 || l.MaxEntryBytes < 0 || l.MaxRatio < 0 || l.MaxNameBytes < 0 {
		return l, fmt.Errorf("archive limits: negative limit in %+v", l)
	}
	d := DefaultLimits()
	if l.MaxEntries == 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxTotalBytes == 0 {
		l.MaxTotalBytes = d.MaxTotalBytes
	}
	if l.MaxEntryBytes == 0 {
		l.MaxEntryBytes = d.MaxEntryBytes
	}
	if l.MaxRatio == 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.MaxNameBytes == 0 {
		l.MaxNameBytes = d.MaxNameBytes
	}
	return l, nil
}

// Reasons an archive is refused. Each *Error matches exactly one of them
// with errors.Is. Their messages are stable and safe to show to clients.
var (
	ErrAbsolutePath     = errors.New("absolute path")
	ErrParentPath       = errors.New("path contains a .. component")
	ErrBackslash        = errors.New("path contains a backslash")
	ErrBadName          = errors.New("invalid entry name")
	ErrNameTooLong      = errors.New("entry name too long")
	ErrLink             = errors.New("links are not allowed")
	ErrSpecialFile      = errors.New("only regular files and directories are allowed")
	ErrEncrypted        = errors.New("encrypted entries are not supported")
	ErrTooManyEntries   = errors.New("too many entries")
	ErrTooLarge         = errors.New("archive too large")
	ErrEntryTooLarge    = errors.New("entry too large")
	ErrCompressionRatio = errors.New("compression ratio too high")
	ErrDuplicateEntry   = errors.New("duplicate entry")
	ErrNotArchive       = errors.New("not a valid archive")
	ErrEmpty            = errors.New("archive has no files")
)

// Error is the refusal of an archive: Reason is one of the Err* sentinels
// above, Entry the offending entry's name as found in the archive ("" when
// the archive as a whole is at fault), Err the underlying cause if any
// (a gzip or zip decoding error). errors.Is matches Reason and Err.
type Error struct {
	Reason error
	Entry  string
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("archive")
	if e.Entry != "" {
		fmt.Fprintf(&b, " entry %q", e.Entry)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason.Error())
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the reason and the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Err}
}

// IsTooLarge reports whether err is a size refusal that the HTTP layer
// answers with 413: ErrTooLarge, ErrEntryTooLarge, ErrTooManyEntries or
// ErrCompressionRatio.
func IsTooLarge(err error) bool {
	return errors.Is(err, ErrTooLarge) || errors.Is(err, ErrEntryTooLarge) ||
		errors.Is(err, ErrTooManyEntries) || errors.Is(err, ErrCompressionRatio)
}

func refuse(reason error, entry string) *Error { return &Error{Reason: reason, Entry: entry} }

// Result describes a canonical snapshot.
type Result struct {
	// Digest is "sha256:<hex>" of the canonical uncompressed tar stream.
	Digest string
	// SizeBytes is the total size of the files' contents.
	SizeBytes int64
	// FileCount is the number of regular files.
	FileCount int
	// DirCount is the number of directories, including implied ones.
	DirCount int
	// Stripped is the top-level folder removed from every path ("" if none).
	Stripped string
}
