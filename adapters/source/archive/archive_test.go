package archive_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/adapters/source/archive"
)

func format(isZip bool) archive.Format {
	if isZip {
		return archive.FormatZip
	}
	return archive.FormatTarGz
}

// normalizeBytes writes data to a fresh dir and normalises it there.
func normalizeBytes(t testing.TB, data []byte, f archive.Format, lim archive.Limits) (dir, dst string, res archive.Result, err error) {
	t.Helper()
	dir = t.TempDir()
	src := filepath.Join(dir, "upload")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	dst = filepath.Join(dir, "canonical.tar.gz")
	res, err = archive.Normalize(context.Background(), src, f, dst, lim)
	return dir, dst, res, err
}

// assertOnly fails unless dir holds exactly the named files.
func assertOnly(t testing.TB, dir string, names ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, de := range des {
		got = append(got, de.Name())
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Fatalf("dir holds %v, want only %v", got, names)
	}
}

func TestNormalizeRefusesHostileArchives(t *testing.T) {
	t.Parallel()
	want := map[string]error{
		"zip_slip_tar":     archive.ErrParentPath,
		"zip_slip_zip":     archive.ErrParentPath,
		"absolute_tar":     archive.ErrAbsolutePath,
		"backslash_zip":    archive.ErrBackslash,
		"symlink_tar":      archive.ErrLink,
		"symlink_zip":      archive.ErrLink,
		"hardlink_tar":     archive.ErrLink,
		"device_tar":       archive.ErrSpecialFile,
		"fifo_tar":         archive.ErrSpecialFile,
		"duplicate_tar":    archive.ErrDuplicateEntry,
		"file_and_dir_tar": archive.ErrDuplicateEntry,
		"duplicate_zip":    archive.ErrDuplicateEntry,
		"gzip_bomb":        archive.ErrCompressionRatio,
		"zip_bomb":         archive.ErrCompressionRatio,
		"zip_size_lie":     archive.ErrNotArchive,
		"zip_encrypted":    archive.ErrEncrypted,
		"corrupt_gzip":     archive.ErrNotArchive,
		"gzip_not_tar":     archive.ErrNotArchive,
		"truncated_tar":    archive.ErrNotArchive,
		"corrupt_zip":      archive.ErrNotArchive,
		"zip_bad_crc":      archive.ErrNotArchive,
		"empty_tar":        archive.ErrEmpty,
		"empty_zip":        archive.ErrEmpty,
		"only_dirs_tar":    archive.ErrEmpty,
		"control_char_zip": archive.ErrBadName,
		"long_name_tar":    archive.ErrNameTooLong,
	}
	for _, s := range hostileSeeds() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			reason, ok := want[s.name]
			if !ok {
				t.Fatalf("no expected reason for seed %s", s.name)
			}
			dir, _, res, err := normalizeBytes(t, s.data(t), format(s.zip), archive.DefaultLimits())
			if !errors.Is(err, reason) {
				t.Fatalf("Normalize = %+v, %v; want %v", res, err, reason)
			}
			var ae *archive.Error
			if !errors.As(err, &ae) || ae.Reason != reason {
				t.Fatalf("error %v is not an *archive.Error with reason %v", err, reason)
			}
			assertOnly(t, dir, "upload")
		})
	}
}

func TestNormalizeLimits(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("0123456789abcdef", 128) // 2 KiB, compresses well but under the grace
	tests := []struct {
		name  string
		zip   bool
		data  func(testing.TB) []byte
		lim   archive.Limits
		want  error
		entry string
	}{
		{"too many entries tar", false, func(t testing.TB) []byte { return tarGz(t, many(11)...) }, archive.Limits{MaxEntries: 10}, archive.ErrTooManyEntries, ""},
		{"too many entries zip", true, func(t testing.TB) []byte { return zipOf(t, many(11)...) }, archive.Limits{MaxEntries: 10}, archive.ErrTooManyEntries, ""},
		{"entry too large tar", false, func(t testing.TB) []byte { return tarGz(t, ent{name: "small", body: "x"}, ent{name: "big", body: big}) }, archive.Limits{MaxEntryBytes: 1000}, archive.ErrEntryTooLarge, "big"},
		{"entry too large zip (declared)", true, func(t testing.TB) []byte { return zipOf(t, ent{name: "big", body: big}) }, archive.Limits{MaxEntryBytes: 1000}, archive.ErrEntryTooLarge, "big"},
		{"zip declares huge size", true, func(t testing.TB) []byte { return zipOf(t, ent{name: "liar", body: "x", rawLie: 1 << 40}) }, archive.Limits{}, archive.ErrEntryTooLarge, "liar"},
		{"total too large tar", false, func(t testing.TB) []byte {
			return tarGz(t, ent{name: "a", body: big}, ent{name: "b", body: big}, ent{name: "c", body: big})
		}, archive.Limits{MaxTotalBytes: 5000}, archive.ErrTooLarge, "c"},
		{"total too large zip", true, func(t testing.TB) []byte {
			return zipOf(t, ent{name: "a", body: big}, ent{name: "b", body: big}, ent{name: "c", body: big})
		}, archive.Limits{MaxTotalBytes: 5000}, archive.ErrTooLarge, "c"},
		{"name too long", false, func(t testing.TB) []byte { return tarGz(t, ent{name: strings.Repeat("n", 90), body: "x"}) }, archive.Limits{MaxNameBytes: 64}, archive.ErrNameTooLong, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, _, _, err := normalizeBytes(t, tt.data(t), format(tt.zip), tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Normalize: %v, want %v", err, tt.want)
			}
			var ae *archive.Error
			if errors.As(err, &ae) && tt.entry != "" && ae.Entry != tt.entry {
				t.Errorf("entry = %q, want %q", ae.Entry, tt.entry)
			}
			if !archive.IsTooLarge(err) && tt.want != archive.ErrNameTooLong {
				t.Errorf("IsTooLarge(%v) = false", err)
			}
			assertOnly(t, dir, "upload")
		})
	}
	if _, err := archive.Normalize(context.Background(), "x", archive.FormatZip, filepath.Join(t.TempDir(), "y"), archive.Limits{MaxEntries: -1}); err == nil {
		t.Error("negative limit accepted")
	}
}

var fixedTime = time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)

// tree is the reference tree of the good-archive tests.
var tree = []ent{
	{name: "README.md", body: "# demo\n"},
	{name: "src/main.go", body: "package main\n\nfunc main() {}\n"},
	{name: "src/internal/db.go", body: "package internal\n"},
	{name: "bin/run.sh", body: "#!/bin/sh\necho hi\n", mode: 0o775},
	{name: "docs/", typ: tar.TypeDir},
	{name: "Makefile", body: "all:\n"},
	{name: "makefile", body: "# case-only twin, allowed\n"},
}

func variant(prefix string, reverse, withDirs bool, mt time.Time) []ent {
	var out []ent
	if prefix != "" && withDirs {
		out = append(out, ent{name: prefix, typ: tar.TypeDir, modTime: mt})
	}
	for _, e := range tree {
		e.name = prefix + e.name
		e.modTime = mt
		if withDirs && strings.HasPrefix(e.name, prefix+"src/") && e.name == prefix+"src/main.go" {
			out = append(out, ent{name: prefix + "src/", typ: tar.TypeDir, modTime: mt}, ent{name: prefix + "src/internal/", typ: tar.TypeDir, modTime: mt})
		}
		out = append(out, e)
	}
	if reverse {
		slices.Reverse(out)
	}
	return out
}

func TestNormalizeCanonicalDigest(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	t2 := time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		zip      bool
		entries  []ent
		stripped string
	}{
		{"tar.gz with top folder", false, variant("proj/", false, true, t1), "proj"},
		{"tar.gz dot-slash top folder, reversed, other mtime", false, variant("./repo-1.2/", true, true, t2), "repo-1.2"},
		{"tar.gz flat", false, variant("", false, false, t1), ""},
		{"zip flat with dir entries", true, variant("", true, true, t2), ""},
		{"zip top folder without dir entries", true, variant("x/", false, false, t1), "x"},
		{"zip with __MACOSX", true, append(variant("p/", false, true, t1), ent{name: "__MACOSX/p/._README.md", body: "apple"}), "p"},
	}
	var digest string
	for _, tt := range tests {
		_, dst, res, err := normalizeBytes(t, func() []byte {
			if tt.zip {
				return zipOf(t, tt.entries...)
			}
			return tarGz(t, tt.entries...)
		}(), format(tt.zip), archive.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if res.Stripped != tt.stripped {
			t.Errorf("%s: stripped %q, want %q", tt.name, res.Stripped, tt.stripped)
		}
		if res.FileCount != 6 || res.DirCount != 4 {
			t.Errorf("%s: %d files, %d dirs; want 6, 4", tt.name, res.FileCount, res.DirCount)
		}
		var size int64
		for _, e := range tree {
			size += int64(len(e.body))
		}
		if res.SizeBytes != size {
			t.Errorf("%s: size %d, want %d", tt.name, res.SizeBytes, size)
		}
		if !strings.HasPrefix(res.Digest, "sha256:") || len(res.Digest) != 7+64 {
			t.Fatalf("%s: digest %q", tt.name, res.Digest)
		}
		if digest == "" {
			digest = res.Digest
		} else if res.Digest != digest {
			t.Errorf("%s: digest %s, want %s (same tree)", tt.name, res.Digest, digest)
		}
		checkCanonical(t, dst)
	}

	// A different tree gives a different digest; a mode change too.
	other := variant("", false, false, t1)
	other[0].body = "# demo!\n"
	if _, _, res, err := normalizeBytes(t, tarGz(t, other...), archive.FormatTarGz, archive.Limits{}); err != nil || res.Digest == digest {
		t.Errorf("changed content: %v, digest %s", err, res.Digest)
	}
	other = variant("", false, false, t1)
	other[3].mode = 0o644
	if _, _, res, err := normalizeBytes(t, tarGz(t, other...), archive.FormatTarGz, archive.Limits{}); err != nil || res.Digest == digest {
		t.Errorf("changed mode: %v, digest %s", err, res.Digest)
	}
}

func TestNormalizeTopLevelRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		entries  []ent
		stripped string
		files    []string
	}{
		{"single file stays", []ent{{name: "README", body: "x"}}, "", []string{"README"}},
		{"two top folders stay", []ent{{name: "a/x", body: "1"}, {name: "b/y", body: "2"}}, "", []string{"a/", "a/x", "b/", "b/y"}},
		{"top folder and top file stay", []ent{{name: "a/x", body: "1"}, {name: "a.txt", body: "2"}}, "", []string{"a/", "a.txt", "a/x"}},
		{"one folder stripped once", []ent{{name: "a/b/c", body: "1"}}, "a", []string{"b/", "b/c"}},
		{"pax global header ignored", nil, "g", []string{"x"}},
		{"long and unicode names", []ent{{name: "top/" + strings.Repeat("é", 80) + "/" + strings.Repeat("x", 120), body: "1"}}, "top",
			[]string{strings.Repeat("é", 80) + "/", strings.Repeat("é", 80) + "/" + strings.Repeat("x", 120)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := tarGz(t, tt.entries...)
			if tt.entries == nil {
				data = tarGz(t, ent{name: "pax_global_header", typ: tar.TypeXGlobalHeader}, ent{name: "g/x", body: "1"})
			}
			_, dst, res, err := normalizeBytes(t, data, archive.FormatTarGz, archive.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Stripped != tt.stripped {
				t.Errorf("stripped %q, want %q", res.Stripped, tt.stripped)
			}
			if got := checkCanonical(t, dst); !slices.Equal(got, tt.files) {
				t.Errorf("entries %q, want %q", got, tt.files)
			}
		})
	}
}

// checkCanonical reads a canonical archive and checks its invariants; it
// returns the entry names.
func checkCanonical(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || h.ModTime.Unix() != 0 || h.Linkname != "" {
			t.Errorf("%s: non-canonical header %+v", h.Name, h)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if h.Mode != 0o755 || !strings.HasSuffix(h.Name, "/") {
				t.Errorf("%s: dir mode %o", h.Name, h.Mode)
			}
		case tar.TypeReg:
			if h.Mode != 0o644 && h.Mode != 0o755 {
				t.Errorf("%s: file mode %o", h.Name, h.Mode)
			}
			if strings.HasSuffix(h.Name, ".sh") && h.Mode != 0o755 {
				t.Errorf("%s: exec bit lost", h.Name)
			}
		default:
			t.Errorf("%s: type %c", h.Name, h.Typeflag)
		}
		for k := range h.PAXRecords {
			if k != "path" {
				t.Errorf("%s: PAX record %s", h.Name, k)
			}
		}
	}
	trimmed := slices.Clone(names)
	for i := range trimmed {
		trimmed[i] = strings.TrimSuffix(trimmed[i], "/")
	}
	if !slices.IsSorted(trimmed) {
		t.Errorf("entries not sorted: %q", names)
	}
	return names
}

func TestExtract(t *testing.T) {
	t.Parallel()
	_, dst, res, err := normalizeBytes(t, zipOf(t, variant("proj/", false, false, time.Time{})...), archive.FormatZip, archive.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tree")
	got, err := archive.Extract(context.Background(), dst, out, archive.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got != (archive.Result{Digest: res.Digest, SizeBytes: res.SizeBytes, FileCount: res.FileCount, DirCount: res.DirCount}) {
		t.Errorf("Extract = %+v, Normalize = %+v", got, res)
	}
	for _, e := range tree {
		p := filepath.Join(out, filepath.FromSlash(e.name))
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeDir {
			if !fi.IsDir() {
				t.Errorf("%s: not a dir", e.name)
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != e.body {
			t.Errorf("%s: %q, %v", e.name, b, err)
		}
		wantMode := fs.FileMode(0o644)
		if e.mode&0o111 != 0 {
			wantMode = 0o755
		}
		if fi.Mode() != wantMode {
			t.Errorf("%s: mode %v, want %v", e.name, fi.Mode(), wantMode)
		}
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data func(testing.TB) []byte
		want error
	}{
		{"parent path", func(t testing.TB) []byte { return tarGz(t, ent{name: "../outside/pwned", body: "x"}) }, archive.ErrParentPath},
		{"absolute", func(t testing.TB) []byte { return tarGz(t, ent{name: "/tmp/pwned", body: "x"}) }, archive.ErrAbsolutePath},
		{"symlink then write through", func(t testing.TB) []byte {
			return tarGz(t, ent{name: "l", typ: tar.TypeSymlink, link: "../outside"}, ent{name: "l/pwned", body: "x"})
		}, archive.ErrLink},
		{"hardlink", func(t testing.TB) []byte { return tarGz(t, ent{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}) }, archive.ErrLink},
		{"device", func(t testing.TB) []byte { return tarGz(t, ent{name: "d", typ: tar.TypeBlock}) }, archive.ErrSpecialFile},
		{"duplicate overwrite", func(t testing.TB) []byte { return tarGz(t, ent{name: "a", body: "1"}, ent{name: "a", body: "2"}) }, archive.ErrDuplicateEntry},
		{"too large", func(t testing.TB) []byte { return tarGz(t, ent{name: "a", body: strings.Repeat("x", 2000)}) }, archive.ErrEntryTooLarge},
		{"file then child", func(t testing.TB) []byte { return tarGz(t, ent{name: "a", body: "1"}, ent{name: "a/b", body: "2"}) }, archive.ErrDuplicateEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(base, "snap.tar.gz")
			if err := os.WriteFile(src, tt.data(t), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := archive.Extract(context.Background(), src, filepath.Join(base, "tree"), archive.Limits{MaxEntryBytes: 1000})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Extract: %v, want %v", err, tt.want)
			}
			assertOnly(t, outside)
		})
	}

	// A symlink planted in the target dir (not from the archive) cannot be
	// followed out of it: os.Root refuses.
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	treeDir := filepath.Join(base, "tree")
	for _, d := range []string{outside, treeDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(treeDir, "planted")); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(base, "snap.tar.gz")
	if err := os.WriteFile(src, tarGz(t, ent{name: "planted/pwned", body: "x"}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Extract(context.Background(), src, treeDir, archive.Limits{}); err == nil {
		t.Fatal("Extract wrote through a planted symlink")
	}
	assertOnly(t, outside)
}

func TestNormalizeContextCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	src := filepath.Join(dir, "upload")
	if err := os.WriteFile(src, tarGz(t, tree...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := archive.Normalize(ctx, src, archive.FormatTarGz, filepath.Join(dir, "out"), archive.Limits{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Normalize with cancelled ctx: %v", err)
	}
	assertOnly(t, dir, "upload")
}

func TestFormatFromMediaType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ct   string
		want archive.Format
		ok   bool
	}{
		{"application/gzip", archive.FormatTarGz, true},
		{"application/x-gzip; charset=binary", archive.FormatTarGz, true},
		{"application/zip", archive.FormatZip, true},
		{"application/json", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		if got, ok := archive.FormatFromMediaType(tt.ct); got != tt.want || ok != tt.ok {
			t.Errorf("FormatFromMediaType(%q) = %v, %v", tt.ct, got, ok)
		}
	}
}
