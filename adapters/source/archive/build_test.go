package archive_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io/fs"
	"testing"
	"time"
)

// ent is one entry of a test archive. Zero fields take sensible values.
type ent struct {
	name string
	body string
	typ  byte // tar typeflag; for zip: TypeDir, TypeSymlink, TypeChar, else file
	mode int64
	link string
	// zip only
	method   uint16
	rawLie   int64 // >0: declare this uncompressed size through CreateRaw
	encrypt  bool
	modTime  time.Time
	bigZeros int // >0: body is this many zero bytes
}

func (e ent) content() []byte {
	if e.bigZeros > 0 {
		return make([]byte, e.bigZeros)
	}
	return []byte(e.body)
}

func tarGz(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		mt := e.modTime
		if mt.IsZero() {
			mt = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		}
		body := e.content()
		h := &tar.Header{Typeflag: typ, Name: e.name, Mode: mode, ModTime: mt, Linkname: e.link, Uid: 1000, Gid: 1000, Uname: "dev", Gname: "dev"}
		if typ == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: typ, Name: e.name, PAXRecords: map[string]string{"comment": "0123abcd"}}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipOf(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		body := e.content()
		fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.method != 0 || e.typ == tar.TypeDir {
			fh.Method = e.method
		}
		mt := e.modTime
		if mt.IsZero() {
			mt = time.Date(2023, 1, 2, 3, 4, 6, 0, time.UTC)
		}
		fh.Modified = mt
		mode := fs.FileMode(0o644)
		if e.mode != 0 {
			mode = fs.FileMode(e.mode)
		}
		switch e.typ {
		case tar.TypeDir:
			mode |= fs.ModeDir
		case tar.TypeSymlink:
			mode |= fs.ModeSymlink
			body = []byte(e.link)
		case tar.TypeChar:
			mode |= fs.ModeDevice | fs.ModeCharDevice
		}
		fh.SetMode(mode)
		if e.rawLie > 0 || e.encrypt {
			// Stored raw: declared sizes are what we say, data is body.
			fh.Method = zip.Store
			fh.CompressedSize64 = uint64(len(body))
			fh.UncompressedSize64 = uint64(len(body))
			if e.rawLie > 0 {
				fh.UncompressedSize64 = uint64(e.rawLie)
			}
			if e.encrypt {
				fh.Flags |= 0x1
			}
			w, err := zw.CreateRaw(fh)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(body); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatalf("zip header %q: %v", e.name, err)
		}
		if e.typ != tar.TypeDir {
			if _, err := w.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	if _, err := gz.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func many(n int) []ent {
	out := make([]ent, n)
	for i := range out {
		out[i] = ent{name: "f/" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676)), body: "x"}
	}
	return out
}

// seed is one archive for the table tests and the fuzz corpus.
type seed struct {
	name string
	zip  bool
	data func(testing.TB) []byte
}

// hostileSeeds are archives every Normalize must refuse (with default limits).
func hostileSeeds() []seed {
	return []seed{
		{"zip_slip_tar", false, func(t testing.TB) []byte {
			return tarGz(t, ent{name: "ok.txt", body: "ok"}, ent{name: "../../etc/passwd", body: "root::0:0"})
		}},
		{"zip_slip_zip", true, func(t testing.TB) []byte { return zipOf(t, ent{name: "a/../../evil.sh", body: "x"}) }},
		{"absolute_tar", false, func(t testing.TB) []byte { return tarGz(t, ent{name: "/etc/cron.d/x", body: "x"}) }},
		{"backslash_zip", true, func(t testing.TB) []byte { return zipOf(t, ent{name: "..\\..\\evil.bat", body: "x"}) }},
		{"symlink_tar", false, func(t testing.TB) []byte {
			return tarGz(t, ent{name: "link", typ: tar.TypeSymlink, link: "/etc"}, ent{name: "link/passwd", body: "x"})
		}},
		{"symlink_zip", true, func(t testing.TB) []byte { return zipOf(t, ent{name: "link", typ: tar.TypeSymlink, link: "../../.."}) }},
		{"hardlink_tar", false, func(t testing.TB) []byte {
			return tarGz(t, ent{name: "a", body: "x"}, ent{name: "b", typ: tar.TypeLink, link: "/etc/shadow"})
		}},
		{"device_tar", false, func(t testing.TB) []byte { return tarGz(t, ent{name: "dev/null", typ: tar.TypeChar}) }},
		{"fifo_tar", false, func(t testing.TB) []byte { return tarGz(t, ent{name: "p", typ: tar.TypeFifo}) }},
		{"duplicate_tar", false, func(t testing.TB) []byte {
			return tarGz(t, ent{name: "a.txt", body: "1"}, ent{name: "./a.txt", body: "2"})
		}},
		{"file_and_dir_tar", false, func(t testing.TB) []byte { return tarGz(t, ent{name: "a", body: "1"}, ent{name: "a/b", body: "2"}) }},
		{"duplicate_zip", true, func(t testing.TB) []byte {
			return zipOf(t, ent{name: "x/a.txt", body: "1"}, ent{name: "x/a.txt", body: "2"})
		}},
		{"gzip_bomb", false, func(t testing.TB) []byte { return tarGz(t, ent{name: "zeros", bigZeros: 8 << 20}) }},
		{"zip_bomb", true, func(t testing.TB) []byte { return zipOf(t, ent{name: "zeros", bigZeros: 8 << 20}) }},
		{"zip_size_lie", true, func(t testing.TB) []byte { return zipOf(t, ent{name: "a", body: "0123456789", rawLie: 4}) }},
		{"zip_encrypted", true, func(t testing.TB) []byte { return zipOf(t, ent{name: "a", body: "ciphertext", encrypt: true}) }},
		{"corrupt_gzip", false, func(testing.TB) []byte { return []byte("\x1f\x8b\x08\x00garbage-garbage-garbage") }},
		{"gzip_not_tar", false, func(t testing.TB) []byte { return gzipOf(t, bytes.Repeat([]byte("not a tar "), 100)) }},
		{"truncated_tar", false, func(t testing.TB) []byte {
			b := tarGz(t, ent{name: "a", body: string(bytes.Repeat([]byte("abcdefgh"), 4096))})
			return b[:len(b)/2]
		}},
		{"zip_bad_crc", true, func(t testing.TB) []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, err := zw.CreateHeader(&zip.FileHeader{Name: "a.txt", Method: zip.Store})
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("hello world"))
			zw.Close()
			return bytes.Replace(buf.Bytes(), []byte("hello world"), []byte("hello_world"), 1)
		}},
		{"corrupt_zip", true, func(testing.TB) []byte { return []byte("PK\x03\x04 this is not really a zip") }},
		{"empty_tar", false, func(t testing.TB) []byte { return tarGz(t) }},
		{"empty_zip", true, func(t testing.TB) []byte { return zipOf(t) }},
		{"only_dirs_tar", false, func(t testing.TB) []byte { return tarGz(t, ent{name: "a/", typ: tar.TypeDir}) }},
		{"control_char_zip", true, func(t testing.TB) []byte { return zipOf(t, ent{name: "a\nb", body: "x"}) }},
		{"long_name_tar", false, func(t testing.TB) []byte {
			return tarGz(t, ent{name: string(bytes.Repeat([]byte("d/"), 600)) + "f", body: "x"})
		}},
	}
}
