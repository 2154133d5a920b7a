package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the settings table")

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(flag.NewFlagSet("t", flag.ContinueOnError), nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8000" || c.DataDir != "./.vega" || c.ScanTimeout != 30*time.Minute ||
		c.StreamTokenTTL != 5*time.Minute || c.RunnerLauncher != "inprocess" || c.NATSStream != "VEGA_EVENTS" ||
		c.NATSSubjectPrefix != "vega.events" || c.MaxSnapshotBytes != 512<<20 || c.DatabaseURL != "" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c, err := loadConfig(fs, []string{"-http-addr", "127.0.0.1:9"}, env(map[string]string{
		"VEGA_HTTP_ADDR": "127.0.0.1:8", "VEGA_SCAN_TIMEOUT": "90s", "VEGA_GIT_ALLOW_PRIVATE": "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:9" {
		t.Errorf("flag must win over env: %q", c.HTTPAddr)
	}
	if c.ScanTimeout != 90*time.Second || !c.GitAllowPrivate {
		t.Errorf("env not applied: %+v", c)
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"VEGA_SCAN_TIMEOUT":       "soon",
		"VEGA_WORKER_CONCURRENCY": "0",
		"VEGA_RUNNER_LAUNCHER":    "docker",
		"VEGA_GIT_ALLOW_PRIVATE":  "maybe",
		"VEGA_DATABASE_URL":       "mysql://x",
		"VEGA_LOG_LEVEL":          "loud",
		"VEGA_MAX_SNAPSHOT_BYTES": "-1",
	}
	for k, v := range tests {
		_, err := loadConfig(flag.NewFlagSet("t", flag.ContinueOnError), nil, env(map[string]string{k: v}))
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: error %v does not name the variable", k, v, err)
		}
	}
}

func configDoc() string {
	var b bytes.Buffer
	b.WriteString("# Configuration\n\n")
	b.WriteString("Every setting is a `VEGA_*` environment variable and a flag of the same name on\n")
	b.WriteString("every subcommand (`VEGA_HTTP_ADDR` is `-http-addr`); flags win. `vega dev` with\n")
	b.WriteString("nothing set runs on the embedded defaults. Values marked secret are never logged.\n")
	b.WriteString("This page is generated from the settings table in `cmd/vega/config.go`\n")
	b.WriteString("(`go test ./cmd/vega -run TestConfigDoc -update`); a test keeps them equal.\n\n")
	b.WriteString("| variable | default | secret | meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		def := "`" + s.def + "`"
		if s.def == "" {
			def = "unset"
		}
		sec := ""
		if s.secret {
			sec = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.env, def, sec, s.doc)
	}
	b.WriteString(configDocTail)
	return b.String()
}

const configDocTail = `
## Test-only variables

| variable | default | meaning |
|---|---|---|
| ` + "`VEGA_TEST_DATABASE_URL`" + ` | ` + "`postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable`" + ` | PostgreSQL server the tests use; each test makes and drops its own schema. |
| ` + "`VEGA_TEST_NATS_URL`" + ` | ` + "`nats://127.0.0.1:4222`" + ` | NATS JetStream server the bus tests use; each test uses its own stream and subjects. |
| ` + "`CI`" + ` | unset | ` + "`true`" + ` turns a missing PostgreSQL or NATS into a test failure instead of a skip. |
`

func TestConfigDoc(t *testing.T) {
	const path = "../../docs/configuration.md"
	want := configDoc()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/configuration.md is out of date with the settings table; run go test ./cmd/vega -run TestConfigDoc -update")
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"bogus"}, env(nil), io.Discard, &stderr)
	if exitCode(err) != 2 || !strings.Contains(stderr.String(), "usage: vega") {
		t.Errorf("unknown subcommand: err %v, stderr %q", err, stderr.String())
	}
	if err := run(t.Context(), []string{"runner", "--fence", "2"}, env(nil), io.Discard, io.Discard); exitCode(err) != 2 || !strings.Contains(err.Error(), "--scan") {
		t.Errorf("runner without --scan: %v", err)
	}
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"version"}, env(nil), &stdout, io.Discard); err != nil || !strings.HasPrefix(stdout.String(), "vega ") {
		t.Errorf("version: %v %q", err, stdout.String())
	}
}

// TestRunnerEnvCarriesFlags: a setting given as a flag to the worker reaches
// its process-launched runners; the provider's key never does.
func TestRunnerEnvCarriesFlags(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(flag.NewFlagSet("t", flag.ContinueOnError), []string{"-scan-lease", "45s", "-engine-sarif-command", "semgrep {output}"},
		env(map[string]string{"VEGA_LLM_PROVIDER_API_KEY": "sk-provider-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(runnerEnv(c), "\n")
	for _, want := range []string{"VEGA_SCAN_LEASE=45s", "VEGA_ENGINE_SARIF_COMMAND=semgrep {output}", "VEGA_NATS_STREAM=VEGA_EVENTS"} {
		if !strings.Contains(got, want) {
			t.Errorf("runner env lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "sk-provider-secret") || strings.Contains(got, "PROVIDER_API_KEY") {
		t.Errorf("runner env carries the provider key:\n%s", got)
	}
}
