package sarif_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

func uploader(t *testing.T, e *env) *sarif.Uploader {
	t.Helper()
	u, err := sarif.NewUploader(e.h, importer(t, domain.EngineSARIFUpload, sarif.Limits{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func streamLen(t *testing.T, e *env, scanID string) int {
	t.Helper()
	recs, err := e.store.ReadStream(t.Context(), eventstore.NewStreamID(commands.CategoryScan, scanID), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func TestImportUpload(t *testing.T) {
	t.Parallel()
	for _, s := range []struct {
		name string
		open func(*testing.T) eventstore.Store
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, s.open(t), nil)
			u := uploader(t, e)
			id := e.request(domain.EngineSARIFUpload)

			// Bad input changes nothing.
			before := streamLen(t, e, id)
			for _, tc := range []struct {
				name string
				body string
				max  int64
				want error
			}{
				{"invalid", `{"version": "1.0"}`, 0, sarif.ErrInvalid},
				{"absolute path", strings.Replace(semgrepDoc, `"app/db.py"`, `"/app/db.py"`, 1), 0, domain.ErrInvalidArgument},
				{"too large", semgrepDoc, 100, sarif.ErrTooLarge},
			} {
				_, err := u.ImportUpload(e.ctx, id, strings.NewReader(tc.body), tc.max)
				if !errors.Is(err, tc.want) {
					t.Fatalf("%s: err = %v, want %v", tc.name, err, tc.want)
				}
			}
			if n := streamLen(t, e, id); n != before {
				t.Fatalf("refused uploads wrote %d events", n-before)
			}

			res, err := u.ImportUpload(e.ctx, id, strings.NewReader(semgrepDoc), 1<<20)
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			if res.Findings != 2 || res.Position.IsZero() {
				t.Fatalf("upload result %+v", res)
			}
			scan, _, err := e.h.Streams.Scans.Load(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if scan.State != domain.ScanStateCompleted || scan.Partial || len(scan.Findings) != 2 || scan.WorkerID != sarif.UploadWorkerID {
				t.Fatalf("scan after upload: %s partial=%v findings=%d worker=%s", scan.State, scan.Partial, len(scan.Findings), scan.WorkerID)
			}
			for _, f := range scan.Findings {
				if f.Engine != domain.EngineSARIFUpload {
					t.Fatalf("finding engine %q", f.Engine)
				}
			}
			r, err := e.c.Classify(t.Context(), id)
			if err != nil || r.New != 2 {
				t.Fatalf("classify uploaded scan: %+v, %v", r, err)
			}
			e.exportScan(id, nil)

			// A finished scan, or one of another engine, takes no upload.
			_, err = u.ImportUpload(e.ctx, id, strings.NewReader(semgrepDoc), 0)
			if !errors.Is(err, domain.ErrConflict) {
				t.Fatalf("second upload: %v, want conflict", err)
			}
			other := e.request(domain.EngineBuiltin)
			_, err = u.ImportUpload(e.ctx, other, strings.NewReader(semgrepDoc), 0)
			if !errors.Is(err, domain.ErrConflict) {
				t.Fatalf("upload to a builtin scan: %v, want conflict", err)
			}
			mixed := e.request(domain.EngineSARIFUpload, domain.EngineBuiltin)
			_, err = u.ImportUpload(e.ctx, mixed, strings.NewReader(semgrepDoc), 0)
			if !errors.Is(err, domain.ErrConflict) {
				t.Fatalf("upload to a scan with two engines: %v, want conflict", err)
			}
			_, err = u.ImportUpload(e.ctx, "01J000000000000000000000ZZ", strings.NewReader(semgrepDoc), 0)
			if !errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("upload to an unknown scan: %v, want not found", err)
			}
		})
	}
}

func TestNewUploaderWantsTheUploadEngine(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t), nil)
	if _, err := sarif.NewUploader(e.h, importer(t, "sarif", sarif.Limits{}), nil); err == nil {
		t.Fatal("an uploader with the sarif engine's importer was accepted")
	}
}
