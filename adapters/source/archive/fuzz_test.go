package archive_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vega-sec/vega/adapters/source/archive"
)

// fuzzLimits keep each fuzz execution small and fast.
var fuzzLimits = archive.Limits{MaxEntries: 64, MaxTotalBytes: 4 << 20, MaxEntryBytes: 2 << 20, MaxNameBytes: 256}

func goodSeeds() []seed {
	return []seed{
		{"good_tar_top", false, func(t testing.TB) []byte { return tarGz(t, variant("proj/", false, true, fixedTime)...) }},
		{"good_zip_flat", true, func(t testing.TB) []byte { return zipOf(t, variant("", true, false, fixedTime)...) }},
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzNormalize from the seed
// builders when VEGA_WRITE_FUZZ_SEEDS=1; otherwise it checks that every
// seed file is there, so the committed corpus and the builders agree.
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzNormalize")
	write := os.Getenv("VEGA_WRITE_FUZZ_SEEDS") == "1"
	for _, s := range append(hostileSeeds(), goodSeeds()...) {
		p := filepath.Join(dir, s.name)
		if !write {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("seed %s missing (run with VEGA_WRITE_FUZZ_SEEDS=1): %v", s.name, err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nbool(%t)\n", strconv.Quote(string(s.data(t))), s.zip)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzNormalize feeds arbitrary bytes to Normalize as tar.gz or zip. It
// asserts that Normalize never panics, refuses only with an *archive.Error
// (never a bare decoder error), writes nothing outside its directory and
// leaves nothing behind on error, and that any accepted archive extracts to
// safe relative paths with the digest Normalize announced.
func FuzzNormalize(f *testing.F) {
	for _, s := range append(hostileSeeds(), goodSeeds()...) {
		f.Add(s.data(f), s.zip)
	}
	f.Fuzz(func(t *testing.T, data []byte, isZip bool) {
		base := t.TempDir()
		work := filepath.Join(base, "work")
		outside := filepath.Join(base, "outside")
		for _, d := range []string{work, outside} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		src := filepath.Join(work, "upload")
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(work, "canonical.tar.gz")
		res, err := archive.Normalize(context.Background(), src, format(isZip), dst, fuzzLimits)
		assertOnly(t, outside)
		if err != nil {
			var ae *archive.Error
			if !errors.As(err, &ae) {
				t.Fatalf("refusal is not an *archive.Error: %v", err)
			}
			assertOnly(t, work, "upload")
			return
		}
		assertOnly(t, work, "upload", "canonical.tar.gz")
		tree := filepath.Join(work, "tree")
		got, err := archive.Extract(context.Background(), dst, tree, fuzzLimits)
		if err != nil {
			t.Fatalf("accepted archive does not extract: %v", err)
		}
		if got.Digest != res.Digest || got.FileCount != res.FileCount || got.SizeBytes != res.SizeBytes {
			t.Fatalf("Extract %+v != Normalize %+v", got, res)
		}
		assertOnly(t, outside)
		files := 0
		err = filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(tree, p)
			if err != nil || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
				return fmt.Errorf("entry %s escapes %s", p, tree)
			}
			switch {
			case d.Type().IsRegular():
				files++
			case d.IsDir():
			default:
				return fmt.Errorf("entry %s has type %v", rel, d.Type())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if files != res.FileCount {
			t.Fatalf("extracted %d files, Normalize counted %d", files, res.FileCount)
		}
	})
}
