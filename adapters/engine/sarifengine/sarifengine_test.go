package sarifengine_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/adapters/engine/sarifengine"
	"github.com/vega-sec/vega/adapters/sarif"
)

func TestSplitCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"semgrep scan --sarif --output {output}", []string{"semgrep", "scan", "--sarif", "--output", "{output}"}, false},
		{"  a\t b  ", []string{"a", "b"}, false},
		{`tool --config 'p/default rules' "x \"y\" \\z" a\ b`, []string{"tool", "--config", "p/default rules", `x "y" \z`, "a b"}, false},
		{`a '$HOME' "$(rm -rf /)" ;ls`, []string{"a", "$HOME", "$(rm -rf /)", ";ls"}, false},
		{`a ''`, []string{"a", ""}, false},
		{"", nil, false},
		{`a 'b`, nil, true},
		{`a "b`, nil, true},
		{`a \`, nil, true},
	} {
		got, err := sarifengine.SplitCommand(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

const doc = `{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "fake", "rules": [
  {"id": "fake.sqli", "shortDescription": {"text": "SQL injection"}, "properties": {"tags": ["external/cwe/cwe-89"], "security-severity": "8.1"}},
  {"id": "fake.style", "shortDescription": {"text": "Style"}, "defaultConfiguration": {"level": "warning"}}]}},
  "results": [
    {"ruleId": "fake.sqli", "message": {"text": "tainted query"}, "locations": [{"physicalLocation": {"artifactLocation": {"uri": "file://ROOT/src/db.go"}, "region": {"startLine": 3}}}]},
    {"ruleId": "fake.style", "message": {"text": "style"}, "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/ui.go"}, "region": {"startLine": 9}}}]}
  ]}]}`

// fakeTool writes a shell script that checks its sandbox and then runs
// body, and returns its path. The script exits 90+ when the sandbox is
// wrong: a variable of the runner leaked in, HOME is not private, or the
// working directory is not the snapshot.
func fakeTool(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "doc.sarif"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\n" +
		"[ -z \"$VEGA_SECRET_OF_THE_RUNNER\" ] || exit 91\n" +
		"[ \"$HOME\" = \"$TMPDIR\" ] && [ -d \"$HOME\" ] || exit 92\n" +
		"[ -f marker.txt ] || exit 93\n" +
		"DOC=" + filepath.Join(dir, "doc.sarif") + "\n" +
		body + "\n"
	p := filepath.Join(dir, "tool.sh")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func snapshot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "marker.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func newEngine(t *testing.T, cfg sarifengine.Config) *sarifengine.Engine {
	t.Helper()
	fp, err := engine.NewFingerprinter(bytes.Repeat([]byte("k"), engine.MinFingerprintKeySize))
	if err != nil {
		t.Fatal(err)
	}
	b, err := builtin.New(fp)
	if err != nil {
		t.Fatal(err)
	}
	im, err := sarif.NewImporter(fp, sarif.ImportOptions{Engine: sarifengine.Name, Secrets: b})
	if err != nil {
		t.Fatal(err)
	}
	e, err := sarifengine.New(cfg, im)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func scan(t *testing.T, e *sarifengine.Engine, target engine.Target) ([]engine.Finding, error) {
	t.Helper()
	var out []engine.Finding
	err := e.Scan(t.Context(), target, func(f engine.Finding) error {
		out = append(out, f)
		return nil
	})
	return out, err
}

// writeDoc is the shell that writes the fixture with ROOT replaced by the
// working directory to the file named by its first argument (or stdout).
const writeDoc = `sed "s#ROOT#$(pwd -P)#" "$DOC" > "${1:-/dev/stdout}"`

func TestScanRunsTheToolAndImports(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		body, args string
	}{
		"output file":            {writeDoc, " {output}"},
		"stdout":                 {writeDoc, ""},
		"findings exit status 1": {writeDoc + "\nexit 1", " {output}"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEngine(t, sarifengine.Config{Command: "'" + fakeTool(t, tc.body) + "'" + tc.args})
			root, err := filepath.EvalSymlinks(snapshot(t))
			if err != nil {
				t.Fatal(err)
			}
			got, err := scan(t, e, engine.Target{Root: root})
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			if len(got) != 2 {
				t.Fatalf("%d findings, want 2: %+v", len(got), got)
			}
			f := got[0]
			if f.Engine != "sarif" || f.File != "src/db.go" || f.RuleID != "fake.sqli" || f.Severity != "high" || f.CWE != "CWE-89" ||
				f.StartLine != 3 || f.Category != "injection" || len(f.Fingerprint) != 64 {
				t.Fatalf("finding = %+v", f)
			}
			// Filters: min severity drops the style finding; exclude drops db.go.
			got, err = scan(t, e, engine.Target{Root: root, MinSeverity: "high"})
			if err != nil || len(got) != 1 || got[0].RuleID != "fake.sqli" {
				t.Fatalf("min severity high: %+v, %v", got, err)
			}
			got, err = scan(t, e, engine.Target{Root: root, Exclude: []string{"src/db.go"}, Categories: []string{"secrets"}})
			if err != nil || len(got) != 1 || got[0].RuleID != "fake.style" {
				t.Fatalf("exclude + categories: %+v, %v", got, err)
			}
		})
	}
}

func TestScanFailuresAreClear(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		command func(t *testing.T) string
		cfg     sarifengine.Config
		want    error
		says    string
	}{
		"no command":     {func(*testing.T) string { return "" }, sarifengine.Config{}, sarifengine.ErrUnavailable, "VEGA_ENGINE_SARIF_COMMAND"},
		"missing tool":   {func(*testing.T) string { return "no-such-tool-vega-test {output}" }, sarifengine.Config{}, sarifengine.ErrUnavailable, "no-such-tool-vega-test"},
		"fails":          {func(t *testing.T) string { return fakeTool(t, "exit 3") + " {output}" }, sarifengine.Config{}, nil, "status 3"},
		"writes nothing": {func(t *testing.T) string { return fakeTool(t, "true") + " {output}" }, sarifengine.Config{}, nil, "no SARIF document"},
		"not sarif":      {func(t *testing.T) string { return fakeTool(t, `echo '{"version": "1.0"}' > "$1"`) + " {output}" }, sarifengine.Config{}, sarif.ErrInvalid, "version"},
		"too large":      {func(t *testing.T) string { return fakeTool(t, writeDoc) + " {output}" }, sarifengine.Config{MaxOutputBytes: 100}, sarif.ErrTooLarge, "100"},
		"too large on stdout": {func(t *testing.T) string { return fakeTool(t, writeDoc) }, sarifengine.Config{MaxOutputBytes: 100},
			sarif.ErrTooLarge, "100"},
		"timeout": {func(t *testing.T) string { return fakeTool(t, "sleep 30 & sleep 30") + " {output}" },
			sarifengine.Config{Timeout: 300 * time.Millisecond}, nil, "timed out"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			cfg.Command = tc.command(t)
			_, err := scan(t, newEngine(t, cfg), engine.Target{Root: snapshot(t)})
			if err == nil {
				t.Fatal("scan succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want it to say %q", err, tc.says)
			}
		})
	}
}

// TestToolSeesOnlyTheAllowlist is not parallel: it sets a variable in the
// test process that the tool must not see.
func TestToolSeesOnlyTheAllowlist(t *testing.T) {
	t.Setenv("VEGA_SECRET_OF_THE_RUNNER", "s3cr3t")
	e := newEngine(t, sarifengine.Config{Command: fakeTool(t, writeDoc) + " {output}"})
	got, err := scan(t, e, engine.Target{Root: snapshot(t)})
	if err != nil || len(got) != 2 {
		t.Fatalf("scan with a runner secret in the environment: %d findings, %v", len(got), err)
	}
}

func TestScanRefusesBadTargets(t *testing.T) {
	t.Parallel()
	e := newEngine(t, sarifengine.Config{Command: "true {output}"})
	for _, target := range []engine.Target{{}, {Root: filepath.Join(t.TempDir(), "missing")}, {Root: t.TempDir(), MinSeverity: "urgent"}} {
		if _, err := scan(t, e, target); !errors.Is(err, engine.ErrInvalidTarget) {
			t.Errorf("target %+v: err = %v, want ErrInvalidTarget", target, err)
		}
	}
}
