package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	_ "modernc.org/sqlite"

	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/sqlite"
)

func TestAuditVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "vega.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []eventstore.StreamID{"scan-a", "scan-b", "project-c"} {
		for i := range 3 {
			e := eventstore.NewEvent{ID: ulid.Make().String(), Type: "T", SchemaVersion: 1, Data: json.RawMessage(`{"i":1}`)}
			if _, err := s.Append(ctx, stream, eventstore.Exact(int64(i)), e); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Close()
	e := env(map[string]string{"VEGA_DATA_DIR": dir})
	var out bytes.Buffer
	if err := run(ctx, []string{"audit", "verify"}, e, &out, io.Discard); err != nil {
		t.Fatalf("verify a sound store: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "verified 3 streams, 9 events") || !strings.Contains(out.String(), "all hash chains hold") {
		t.Errorf("summary: %q", out.String())
	}

	// Rewrite history behind the store's back.
	db, err := sql.Open("sqlite", filepath.Join(dir, "vega.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TRIGGER events_no_update`, `UPDATE events SET data = '{"i":2}' WHERE stream_id = 'scan-b' AND version = 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	out.Reset()
	err = run(ctx, []string{"audit", "verify"}, e, &out, io.Discard)
	if !errors.Is(err, errChainBroken) || exitCode(err) != 3 {
		t.Fatalf("verify a tampered store: %v", err)
	}
	if !strings.Contains(out.String(), "BROKEN scan-b at version 2") {
		t.Errorf("report does not name the broken version: %q", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"audit", "verify", "-stream", "scan-a"}, e, &out, io.Discard); err != nil {
		t.Errorf("verify one sound stream: %v (%s)", err, out.String())
	}
	if err := run(ctx, []string{"audit", "verify", "-stream", "scan-b"}, e, &out, io.Discard); !errors.Is(err, errChainBroken) {
		t.Errorf("verify the tampered stream: %v", err)
	}
}
