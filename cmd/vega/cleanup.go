package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vega-sec/vega/adapters/blob"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/eventstore"
)

// DefaultCleanupGrace is how old something must be before `vega cleanup`
// considers it abandoned: long enough that no upload, capture or runner can
// still be using it.
const DefaultCleanupGrace = 24 * time.Hour

// tempPrefixes are the working directories Vega's processes make: runners
// (in-process and child), uploads and git captures. Each removes its own when
// it ends; what is left was abandoned by a crash.
var tempPrefixes = []string{"vega-scan-", "vega-runner-", "vega-upload-", "vega-git-"}

// removal is one thing cleanup would remove, and why.
type removal struct {
	what, why string
	do        func(context.Context) error
}

// cleanupFlags defines `vega cleanup [-apply] [-grace D]`: it lists (and
// with -apply removes) what nothing references any more. Dry run by default.
func cleanupFlags(fs *flag.FlagSet) runFunc {
	apply := fs.Bool("apply", false, "remove what is listed (default: only list it)")
	grace := fs.Duration("grace", DefaultCleanupGrace, "leave alone anything younger than this")
	return func(ctx context.Context, cfg Config, _ []string, stdout, stderr io.Writer) error {
		return runCleanup(ctx, cfg, *apply, *grace, stdout, stderr)
	}
}

func runCleanup(ctx context.Context, cfg Config, apply bool, grace time.Duration, stdout, stderr io.Writer) error {
	// A runner may work in its directory for as long as a scan may run.
	if least := cfg.ScanTimeout + cfg.ScanLease; grace < least {
		return usageError{fmt.Sprintf("-grace: at least %s (VEGA_SCAN_TIMEOUT + VEGA_SCAN_LEASE), so that work in progress is never removed", least)}
	}
	log := newLogger(cfg, stderr)
	sys, err := openSystem(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer sys.close()
	p, err := sys.openPipeline(ctx)
	if err != nil {
		return err
	}
	cutoff := time.Now().Add(-grace)
	var plan []removal
	blobs, err := unreferencedBlobs(ctx, sys.store, p.blobs, cutoff)
	if err != nil {
		return err
	}
	plan = append(plan, blobs...)
	for _, dir := range []string{filepath.Join(cfg.DataDir, "runs"), filepath.Join(cfg.DataDir, "tmp")} {
		plan = append(plan, staleTempDirs(dir, cutoff)...)
	}
	if len(plan) == 0 {
		fmt.Fprintln(stdout, "nothing to remove")
		return nil
	}
	verb := "would remove"
	if apply {
		verb = "removed"
	}
	var failed int
	for _, r := range plan {
		if apply {
			if err := r.do(ctx); err != nil {
				failed++
				fmt.Fprintf(stdout, "FAILED %s: %v\n", r.what, err)
				continue
			}
		}
		fmt.Fprintf(stdout, "%s %s: %s\n", verb, r.what, r.why)
	}
	if !apply {
		fmt.Fprintf(stdout, "%d items; run with -apply to remove them\n", len(plan))
	}
	if failed > 0 {
		return fmt.Errorf("cleanup: %d of %d removals failed", failed, len(plan))
	}
	return nil
}

// unreferencedBlobs lists snapshot blobs that no SnapshotCaptured names and
// that are older than cutoff: uploads that failed or were abandoned after
// the blob was written.
func unreferencedBlobs(ctx context.Context, store eventstore.Store, blobs blob.Store, cutoff time.Time) ([]removal, error) {
	referenced := map[string]bool{}
	q := eventstore.Query{Types: []string{"SnapshotCaptured"}, Limit: 5000}
	for {
		page, next, err := store.ReadAll(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			var d struct {
				Digest string `json:"digest"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return nil, fmt.Errorf("event %s: %w", e.ID, err)
			}
			if key, err := snapshot.BlobKey(d.Digest); err == nil {
				referenced[key] = true
			}
		}
		if len(page) < q.Limit {
			break
		}
		q.After = next
	}
	var out []removal
	err := blobs.List(ctx, "snapshots/", func(info blob.Info) error {
		if referenced[info.Key] || info.ModTime.After(cutoff) {
			return nil
		}
		key := info.Key
		out = append(out, removal{
			what: "blob " + key,
			why:  fmt.Sprintf("no captured snapshot references it (%d bytes, written %s)", info.Size, info.ModTime.UTC().Format(time.RFC3339)),
			do:   func(ctx context.Context) error { return blobs.Delete(ctx, key) },
		})
		return nil
	})
	return out, err
}

// staleTempDirs lists working directories under dir older than cutoff.
func staleTempDirs(dir string, cutoff time.Time) []removal {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []removal
	for _, e := range entries {
		if !e.IsDir() || !hasTempPrefix(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		out = append(out, removal{
			what: "directory " + path,
			why:  "a working directory left by a process that did not finish (last changed " + info.ModTime().UTC().Format(time.RFC3339) + ")",
			do:   func(context.Context) error { return os.RemoveAll(path) },
		})
	}
	return out
}

func hasTempPrefix(name string) bool {
	for _, p := range tempPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
