package agent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/agent"
	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/adapters/llm/llmtest"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/internal/fakellm"
)

const (
	awsKey   = "AKIAVQJXXVBOTHD2WTFL"
	dbPython = `import sqlite3
AWS_ACCESS_KEY_ID = "` + awsKey + `"

def find(conn, name):
    return conn.execute("SELECT * FROM users WHERE name = '" + name + "'")
`
)

// TestMain turns the test binary into the fake agent when it is run as
// "<test binary> fake-agent <mode> <dump> <output>": the re-exec pattern,
// since the agent's environment holds nothing a test could key on.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "fake-agent" {
		os.Exit(fakeAgent(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// dump is what the fake agent saw.
type dump struct {
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	Args []string `json:"args"`
}

// fakeAgent behaves like a coding agent: it calls the model through
// OPENAI_BASE_URL with OPENAI_API_KEY, then writes findings.
func fakeAgent(args []string) int {
	mode, dumpPath, output := args[0], args[1], args[2]
	dir, _ := os.Getwd()
	d, _ := json.Marshal(dump{Env: os.Environ(), Dir: dir, Args: args})
	_ = os.WriteFile(dumpPath, d, 0o600)
	switch mode {
	case "sleep":
		time.Sleep(time.Minute)
		return 0
	case "fail":
		fmt.Fprintln(os.Stderr, "fatal: could not use key", os.Getenv("OPENAI_API_KEY"))
		return 3
	case "no-output":
		return 0
	}
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"audit app/db.py"}]}`
	req, _ := http.NewRequest(http.MethodPost, os.Getenv("OPENAI_BASE_URL")+"/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+os.Getenv("CODEX_API_KEY"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "model call:", resp.Status)
		return 1
	}
	if output != os.Getenv("VEGA_AGENT_OUTPUT") {
		fmt.Fprintln(os.Stderr, "output placeholder and VEGA_AGENT_OUTPUT differ")
		return 1
	}
	finding := func(file string, line int, conf float64, msg string) map[string]any {
		return map[string]any{"file": file, "start_line": line, "end_line": line, "title": "SQL injection",
			"severity": "high", "cwe": "CWE-89", "category": "injection", "message": msg, "remediation": "bind", "confidence": conf}
	}
	out, _ := json.Marshal(map[string]any{"findings": []any{
		finding("app/db.py", 5, 0.9, "string-built query; also leaks "+awsKey),
		finding("app/db.py", 5, 0.1, "unsure"),
		finding("../../etc/passwd", 1, 0.9, "outside"),
		finding("app/missing.py", 1, 0.9, "no such file"),
	}})
	if err := os.WriteFile(output, out, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func newEngine(t *testing.T, w *llmtest.World, mode, dumpPath string, tweak ...func(*agent.Config)) *agent.Engine {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fp, err := engine.NewFingerprinter(bytes.Repeat([]byte("k"), engine.MinFingerprintKeySize))
	if err != nil {
		t.Fatal(err)
	}
	b, err := builtin.New(fp)
	if err != nil {
		t.Fatal(err)
	}
	env, err := agent.ParseEnvMapping("CODEX_API_BASE=url, CODEX_API_KEY=token")
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{
		Command: fmt.Sprintf("'%s' fake-agent %s \"%s\" {output}", exe, mode, dumpPath),
		Env:     env, ProxyURL: w.ProxyURL, Token: w.Token, Timeout: time.Minute,
		Profile: w.Profile, Fingerprinter: fp, Secrets: b,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	e, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func snapshot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "app", "db.py"), []byte(dbPython), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestAgentRunsConfinedAndThroughTheProxy(t *testing.T) {
	t.Parallel()
	w := llmtest.Start(t, domain.ThreatProfile{})
	root := snapshot(t)
	dumpPath := filepath.Join(t.TempDir(), "dump.json")
	var warnings []string
	e := newEngine(t, w, "ok", dumpPath, func(c *agent.Config) { c.OnWarning = func(s string) { warnings = append(warnings, s) } })
	var found []engine.Finding
	if err := e.Scan(t.Context(), engine.Target{Root: root}, func(f engine.Finding) error { found = append(found, f); return nil }); err != nil {
		t.Fatalf("scan: %v", err)
	}

	var d dump
	data, err := os.ReadFile(dumpPath)
	if err != nil || json.Unmarshal(data, &d) != nil {
		t.Fatalf("agent dump: %v", err)
	}
	env := map[string]string{}
	for _, kv := range d.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"CODEX_API_BASE", "CODEX_API_KEY", "HOME", "OPENAI_API_KEY", "OPENAI_BASE_URL", "PATH", "TMPDIR", "VEGA_AGENT_OUTPUT"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("agent environment %v, want exactly %v", keys, want)
	}
	if env["OPENAI_BASE_URL"] != w.ProxyURL || env["CODEX_API_BASE"] != w.ProxyURL || env["OPENAI_API_KEY"] != w.Token || env["CODEX_API_KEY"] != w.Token {
		t.Fatalf("agent environment does not point at the proxy with the scan token: %v", env)
	}
	if home, _ := os.UserHomeDir(); env["HOME"] == home || env["HOME"] == "" || env["TMPDIR"] == os.TempDir() {
		t.Fatalf("HOME %q TMPDIR %q are not private", env["HOME"], env["TMPDIR"])
	}
	if abs, _ := filepath.Abs(root); d.Dir != abs {
		t.Fatalf("agent ran in %q, want the snapshot %q", d.Dir, abs)
	}
	if _, err := os.Stat(env["HOME"]); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("private dir left behind: %v", err)
	}

	if len(found) != 1 {
		t.Fatalf("findings = %+v, want one", found)
	}
	f := found[0]
	if f.RuleID != "agent.injection" || f.Engine != "agent" || f.File != "app/db.py" || f.StartLine != 5 || f.Fingerprint == "" {
		t.Fatalf("finding = %+v", f)
	}
	if strings.Contains(f.Message, awsKey) || !strings.Contains(f.Message, "[REDACTED-SECRET]") {
		t.Fatalf("message not masked: %q", f.Message)
	}
	if len(warnings) != 2 {
		t.Fatalf("warnings = %v, want the outside path and the missing file", warnings)
	}
	got := w.Fake.Received()
	if len(got) != 1 || got[0].Header.Get("Authorization") != "Bearer "+llmtest.ProviderKey {
		t.Fatalf("provider requests %d, want 1 with the operator's key", len(got))
	}
	if u := w.Scan().LLMUsage; u.Requests != 1 {
		t.Fatalf("usage = %+v, want the agent's call recorded", u)
	}
}

func TestAgentFailures(t *testing.T) {
	t.Parallel()
	w := llmtest.Start(t, domain.ThreatProfile{})
	w.Fake.Always(fakellm.Reply{})
	root := snapshot(t)
	for _, tc := range []struct {
		name  string
		mode  string
		tweak func(*agent.Config)
		want  error
		text  string
	}{
		{"wall-clock limit", "sleep", func(c *agent.Config) { c.Timeout = 300 * time.Millisecond }, agent.ErrAgentFailed, "limit"},
		{"exit status", "fail", nil, agent.ErrAgentFailed, "exit status 3"},
		{"no output", "no-output", nil, agent.ErrAgentFailed, "no output file"},
		{"no command", "ok", func(c *agent.Config) { c.Command = "" }, agent.ErrUnavailable, "VEGA_ENGINE_AGENT_COMMAND"},
		{"no proxy", "ok", func(c *agent.Config) { c.ProxyURL = "" }, agent.ErrUnavailable, "VEGA_LLM_PROXY_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tweaks []func(*agent.Config)
			if tc.tweak != nil {
				tweaks = append(tweaks, tc.tweak)
			}
			e := newEngine(t, w, tc.mode, filepath.Join(t.TempDir(), "dump.json"), tweaks...)
			err := e.Scan(t.Context(), engine.Target{Root: root}, func(engine.Finding) error { return nil })
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.text)
			}
			if strings.Contains(err.Error(), w.Token) {
				t.Fatal("the error carries the scan token")
			}
		})
	}
}

func TestSplitArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"codex exec --json {output}", []string{"codex", "exec", "--json", "{output}"}, true},
		{`agent 'two words' "and \"three\" here" a\ b`, []string{"agent", "two words", `and "three" here`, "a b"}, true},
		{"echo $HOME; rm -rf ~ | cat", []string{"echo", "$HOME;", "rm", "-rf", "~", "|", "cat"}, true},
		{"  ", nil, true},
		{`''`, []string{""}, true},
		{"'open", nil, false},
		{`"open`, nil, false},
		{`trailing\`, nil, false},
	} {
		got, err := agent.SplitArgs(tc.in)
		if (err == nil) != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitArgs(%q) = %q, %v; want %q (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseEnvMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want map[string]string
		ok   bool
	}{
		{"", map[string]string{}, true},
		{"CODEX_API_BASE=url,CODEX_API_KEY=token", map[string]string{"CODEX_API_BASE": "url", "CODEX_API_KEY": "token"}, true},
		{"X=secret", nil, false},
		{"PATH=url", nil, false},
		{"1BAD=url", nil, false},
		{"NOEQUALS", nil, false},
	} {
		got, err := agent.ParseEnvMapping(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("ParseEnvMapping(%q) = %v, %v", tc.in, got, err)
		}
	}
}
