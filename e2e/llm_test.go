package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/internal/fakellm"
)

// Figures of the LLM tests.
const (
	// scanTokenPrefix starts every scan credential the worker mints; the
	// provider must never see one.
	scanTokenPrefix = "vega-scan."
	// fakePromptTokens and fakeCompletionTokens are the usage the fake
	// provider reports for every call.
	fakePromptTokens     = 120
	fakeCompletionTokens = 40
	// agentBuildTimeout bounds `go build` of the fake agent.
	agentBuildTimeout = 2 * time.Minute
	// usageGrace bounds how long after a scan's end its usage may take to
	// reach the events and the read model (the proxy flushes every 200ms).
	usageGrace = 10 * time.Second
)

// llmScan is the scan as the LLM tests read it: the fields of scan plus the
// usage.
type llmScan struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Partial  bool   `json:"partial"`
	Error    string `json:"error"`
	LLMUsage struct {
		InputTokens  int64   `json:"input_tokens"`
		OutputTokens int64   `json:"output_tokens"`
		CostUSD      float64 `json:"cost_usd"`
	} `json:"llm_usage"`
}

// usageData is the data of LLMUsageRecorded and ScanBudgetExceeded.
type usageData struct {
	Model string `json:"model"`
	Limit string `json:"limit"`
	Usage struct {
		InputTokens  int64 `json:"input_tokens"`
		OutputTokens int64 `json:"output_tokens"`
		Requests     int64 `json:"requests"`
	} `json:"usage"`
}

// sqlFinding is what the fake model reports when it is shown db.py of
// llmApp: the f-string query on line 3.
const sqlFinding = `{"findings":[{"file":"db.py","start_line":3,"end_line":3,"title":"SQL injection in find_user",` +
	`"severity":"high","cwe":"CWE-89","category":"injection","message":"The name is formatted into the query.",` +
	`"remediation":"Pass the name as a query parameter.","confidence":0.9}]}`

// auditor is the fake model: it reports sqlFinding for any prompt that
// shows db.py and nothing otherwise, with fixed usage figures.
func auditor(rec fakellm.Received) fakellm.Reply {
	content := `{"findings":[]}`
	if strings.Contains(promptText(rec), "File: db.py") {
		content = sqlFinding
	}
	return fakellm.Reply{Content: content, PromptTokens: fakePromptTokens, CompletionTokens: fakeCompletionTokens}
}

// promptText joins the contents of a chat request's messages.
func promptText(rec fakellm.Received) string {
	msgs, _ := rec.Chat["messages"].([]any)
	var b strings.Builder
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		if s, ok := mm["content"].(string); ok {
			b.WriteString(s + "\n")
		}
	}
	return b.String()
}

// fakeProvider starts the fake provider with a fresh key and the auditor.
func fakeProvider(t *testing.T) (*fakellm.Server, string) {
	t.Helper()
	key := "sk-e2e-" + randomHex(t, 20)
	srv, err := fakellm.Start(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	srv.Respond(auditor)
	return srv, key
}

// putProfile sets the repository's threat profile to engines and budget.
func (c *client) putProfile(repositoryID string, engines []string, budget map[string]any) []byte {
	c.t.Helper()
	return c.json(http.MethodPut, "/api/v1/repositories/"+repositoryID+"/threat-profile", map[string]any{
		"name": "llm-e2e", "description": "end-to-end test of the LLM engines",
		"engines": engines, "llm_budget": budget,
	}, http.StatusOK, nil)
}

func (c *client) llmScan(id string) (llmScan, []byte) {
	c.t.Helper()
	var s llmScan
	raw := c.json(http.MethodGet, "/api/v1/scans/"+id, nil, http.StatusOK, &s)
	return s, raw
}

// usageTotal sums the LLMUsageRecorded events.
func usageTotal(t *testing.T, evs []event) (in, out, requests int64) {
	t.Helper()
	for _, e := range evs {
		if e.Type != "LLMUsageRecorded" {
			continue
		}
		var d usageData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatalf("LLMUsageRecorded %s: %v", e.Data, err)
		}
		in, out, requests = in+d.Usage.InputTokens, out+d.Usage.OutputTokens, requests+d.Usage.Requests
	}
	return in, out, requests
}

// waitLLMScan waits for the scan to complete, then for its usage to settle:
// the proxy batches usage and may record it after the scan's terminal
// event, and the read model trails the events. Settled means the events
// hold every type in want, their usage counts as many requests as the fake
// provider answered (at least one), and the scan's llm_usage equals their
// sum. It returns the scan, its events and every raw answer read.
func (c *client) waitLLMScan(diagnose func() string, srv *fakellm.Server, id string, want ...string) (llmScan, []event, []byte) {
	c.t.Helper()
	ended := c.waitScan(id, scanDeadline, "finished", terminal)
	if ended.Status != "completed" {
		s, b := c.llmScan(id)
		c.t.Fatalf("scan %s ended %s, want completed; error %q; scan %s\n%s", id, ended.Status, s.Error, b, diagnose())
	}
	deadline := time.Now().Add(usageGrace)
	for {
		evs, eb := all[event](c, "/api/v1/scans/"+id+"/events")
		s, b := c.llmScan(id)
		types := make([]string, len(evs))
		for i, e := range evs {
			types[i] = e.Type
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return slices.Contains(types, w) })
		in, out, requests := usageTotal(c.t, evs)
		answered := int64(len(srv.Received()))
		if len(missing) == 0 && requests > 0 && requests == answered && s.LLMUsage.InputTokens == in && s.LLMUsage.OutputTokens == out {
			return s, evs, append(eb, b...)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("scan %s, %s after its end: events %v lack %v, or their usage (%d requests, %d input, %d output tokens) "+
				"is not the %d requests the provider answered, or the scan's llm_usage %+v differs; scan %s\n%s",
				id, usageGrace, types, missing, requests, in, out, answered, s.LLMUsage, b, diagnose())
		}
		time.Sleep(pollEvery)
	}
}

// waitEngineFindings polls the scan's findings until one of engine shows,
// and returns them with the raw answers.
func (c *client) waitEngineFindings(id, engine string) ([]finding, []byte) {
	c.t.Helper()
	deadline := time.Now().Add(scanDeadline)
	for {
		fs, raw := all[finding](c, "/api/v1/scans/"+id+"/findings")
		if slices.ContainsFunc(fs, func(f finding) bool { return f.Engine == engine }) {
			return fs, raw
		}
		if time.Now().After(deadline) {
			return fs, raw
		}
		time.Sleep(pollEvery)
	}
}

// checkSQLFinding checks that fs holds the model's finding on db.py line 3
// reported by engine as <engine>.injection.
func checkSQLFinding(t *testing.T, fs []finding, engine string, diagnose func() string) {
	t.Helper()
	for _, f := range fs {
		if f.Engine != engine {
			continue
		}
		if f.RuleID != engine+".injection" || f.File != "db.py" || f.StartLine != 3 || f.Severity != "high" {
			t.Errorf("%s finding %+v: want %s.injection on db.py line 3, high", engine, f, engine)
		}
		return
	}
	t.Fatalf("no finding of the %s engine among %+v\n%s", engine, fs, diagnose())
}

// checkUsageEvents checks the settled usage: each request at the fake's
// figures, a cost, and a scan stream whose hash chain verifies.
func checkUsageEvents(t *testing.T, c *client, s llmScan, evs []event) {
	t.Helper()
	in, out, requests := usageTotal(t, evs)
	if in != requests*fakePromptTokens || out != requests*fakeCompletionTokens {
		t.Errorf("LLMUsageRecorded events sum to %d requests, %d input and %d output tokens: want %d and %d per request",
			requests, in, out, fakePromptTokens, fakeCompletionTokens)
	}
	if s.LLMUsage.CostUSD <= 0 {
		t.Errorf("scan llm_usage %+v: want a cost", s.LLMUsage)
	}
	c.verifyStream("scan-" + s.ID)
}

// checkProvider checks what reached the fake provider: at least min
// requests, each with the provider key and no scan credential, and no
// planted secret in any prompt.
func checkProvider(t *testing.T, srv *fakellm.Server, providerKey, plantedKey string, min int) []fakellm.Received {
	t.Helper()
	got := srv.Received()
	if len(got) < min {
		t.Fatalf("the fake provider received %d requests, want at least %d", len(got), min)
	}
	for i, r := range got {
		if h := r.Header.Get("Authorization"); h != "Bearer "+providerKey {
			t.Errorf("provider request %d: Authorization is not the provider key (%d bytes, scan token: %v)",
				i, len(h), strings.Contains(h, scanTokenPrefix))
		}
		var hdr strings.Builder
		for k, vs := range r.Header {
			hdr.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		if strings.Contains(hdr.String(), scanTokenPrefix) || bytes.Contains(r.Body, []byte(scanTokenPrefix)) {
			t.Errorf("provider request %d carries a scan credential (%q)", i, scanTokenPrefix)
		}
		if plantedKey != "" && bytes.Contains(r.Body, []byte(plantedKey)) {
			t.Errorf("provider request %d carries the planted AWS key: secrets must be masked in prompts", i)
		}
	}
	return got
}

// checkNoLeak fails when the provider key appears in an API answer or in a
// process's output.
func checkNoLeak(t *testing.T, providerKey string, raw []byte, procs ...*proc) {
	t.Helper()
	if bytes.Contains(raw, []byte(providerKey)) {
		t.Errorf("the provider key appears in an API answer")
	}
	for _, p := range procs {
		if strings.Contains(p.tail(1<<30), providerKey) {
			t.Errorf("the provider key appears in the output of %s", p.name)
		}
	}
}

// maxLoggedProblems caps the warning and error lines a diagnosis quotes.
const maxLoggedProblems = 30

// proxyDiagnosis explains a scan without LLM findings or usage from what
// the fake provider saw and the warnings and errors the processes logged.
func proxyDiagnosis(srv *fakellm.Server, procs ...*proc) string {
	var problems []string
	notFound := false
	for _, p := range procs {
		for _, l := range strings.Split(p.tail(1<<30), "\n") {
			if strings.Contains(l, "404 not_found") || strings.Contains(l, "the proxy serves POST /v1/chat/completions") {
				notFound = true
			}
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				problems = append(problems, p.name+": "+l)
			}
		}
	}
	if len(problems) > maxLoggedProblems {
		problems = problems[len(problems)-maxLoggedProblems:]
	}
	var why string
	switch n := len(srv.Received()); {
	case n > 0:
		why = fmt.Sprintf("the fake provider received %d requests", n)
	case notFound:
		why = "the fake provider received no request, and the proxy answered 404 not_found: the engine posted to " +
			"<VEGA_LLM_PROXY_URL>/chat/completions while the proxy serves /v1/chat/completions. " +
			"cmd/vega/roles.go startLLMProxy returns the bare http://host:port, which serve.go makes VEGA_LLM_PROXY_URL for `vega dev`; " +
			"the ai and agent engines want the base URL ending in /v1 (ai.Config.ProxyURL, OPENAI_BASE_URL). " +
			"Fix: have startLLMProxy return \"http://\"+addr+\"/v1\" (and print that)."
	default:
		why = "the fake provider received no request: the engine never reached it through the proxy"
	}
	return why + "\nwarnings and errors logged:\n" + strings.Join(problems, "\n")
}

// TestDevAIScan: on `vega dev` with a fake provider, a repository whose
// profile asks for the builtin and ai engines is scanned (the ai planner
// picks two files of vulnerableApp, settings.py and db.py); the model's
// finding is recorded as ai.injection, the scan's usage is recorded
// (LLMUsageRecorded, llm_usage), the provider saw only its own key, and
// the key appears in no API answer and no log line.
func TestDevAIScan(t *testing.T) {
	t.Parallel()
	srv, providerKey := fakeProvider(t)
	c, p := startDev(t, map[string]string{
		"VEGA_LLM_PROVIDER_URL":     srv.URL(),
		"VEGA_LLM_PROVIDER_API_KEY": providerKey,
	})
	planted := fakeAWSKeyID(t)
	repo := c.setupRepository("dev-ai")
	raw := c.putProfile(repo, []string{"builtin", "ai"}, map[string]any{"max_requests": 20, "max_tokens": 200000, "max_cost_usd": 5})
	c.upload(repo, vulnerableApp(t, planted))

	start := time.Now()
	s := c.requestScan(repo, nil)
	diagnose := func() string { return proxyDiagnosis(srv, p) }
	got, evs, b := c.waitLLMScan(diagnose, srv, s.ID, "LLMUsageRecorded")
	raw = append(raw, b...)
	t.Logf("scan %s: %s from request to completed with usage %+v", s.ID, time.Since(start).Round(time.Millisecond), got.LLMUsage)
	fs, fb := c.waitEngineFindings(s.ID, "ai")
	raw = append(raw, fb...)
	checkSQLFinding(t, fs, "ai", diagnose)
	if got.Partial {
		t.Errorf("scan %+v: want not partial with a sufficient budget", got)
	}
	if !slices.ContainsFunc(fs, func(f finding) bool { return f.Engine == "builtin" }) {
		t.Errorf("findings %+v: want the builtin engine's too", fs)
	}
	checkUsageEvents(t, c, got, evs)
	checkProvider(t, srv, providerKey, planted, 2)
	checkNoLeak(t, providerKey, raw, p)
}

// TestDevAIBudget: with max_requests 1 and two files to audit, the proxy
// refuses the second call; the scan completes partial, with one
// ScanBudgetExceeded naming max_requests and the first call's usage.
func TestDevAIBudget(t *testing.T) {
	t.Parallel()
	srv, providerKey := fakeProvider(t)
	c, p := startDev(t, map[string]string{
		"VEGA_LLM_PROVIDER_URL":     srv.URL(),
		"VEGA_LLM_PROVIDER_API_KEY": providerKey,
	})
	repo := c.setupRepository("dev-ai-budget")
	raw := c.putProfile(repo, []string{"builtin", "ai"}, map[string]any{"max_requests": 1})
	c.upload(repo, vulnerableApp(t, fakeAWSKeyID(t)))

	s := c.requestScan(repo, nil)
	diagnose := func() string { return proxyDiagnosis(srv, p) }
	got, evs, b := c.waitLLMScan(diagnose, srv, s.ID, "LLMUsageRecorded", "ScanBudgetExceeded")
	raw = append(raw, b...)
	if !got.Partial {
		t.Errorf("scan %+v: want partial, its ai engine stopped by the budget\n%s", got, diagnose())
	}
	exceeded := 0
	for _, e := range evs {
		if e.Type != "ScanBudgetExceeded" {
			continue
		}
		exceeded++
		var d usageData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Limit != "max_requests" {
			t.Errorf("ScanBudgetExceeded %s: want limit max_requests", e.Data)
		}
	}
	if exceeded != 1 {
		t.Errorf("%d ScanBudgetExceeded events, want 1", exceeded)
	}
	checkUsageEvents(t, c, got, evs)
	if n := len(checkProvider(t, srv, providerKey, "", 1)); n != 1 {
		t.Errorf("the fake provider received %d requests with max_requests 1, want 1", n)
	}
	checkNoLeak(t, providerKey, raw, p)
}

// fakeAgentSource is a command-line "agent": it sends db.py of the working
// directory to $OPENAI_BASE_URL/chat/completions with $OPENAI_API_KEY and
// writes the model's answer to the file named by its argument, which must
// also be $VEGA_AGENT_OUTPUT.
const fakeAgentSource = `package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "fake agent: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	base, token, out := os.Getenv("OPENAI_BASE_URL"), os.Getenv("OPENAI_API_KEY"), os.Getenv("VEGA_AGENT_OUTPUT")
	if base == "" || token == "" || out == "" {
		fail("OPENAI_BASE_URL, OPENAI_API_KEY or VEGA_AGENT_OUTPUT unset")
	}
	if len(os.Args) != 2 || os.Args[1] != out {
		fail("want one argument, the output file %s: %q", out, os.Args[1:])
	}
	src, err := os.ReadFile("db.py")
	if err != nil {
		fail("%v", err)
	}
	body, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "max_tokens": 512,
		"messages": []map[string]string{{"role": "user", "content": "File: db.py\n" + string(src)}}})
	url := strings.TrimRight(base, "/") + "/chat/completions"
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		fail("POST %s: %d %s", url, resp.StatusCode, b)
	}
	var c struct {
		Choices []struct {
			Message struct {
				Content string ` + "`json:\"content\"`" + `
			} ` + "`json:\"message\"`" + `
		} ` + "`json:\"choices\"`" + `
	}
	if err := json.Unmarshal(b, &c); err != nil || len(c.Choices) == 0 {
		fail("not a chat completion: %s", b)
	}
	if err := os.WriteFile(out, []byte(c.Choices[0].Message.Content), 0o600); err != nil {
		fail("%v", err)
	}
}
`

// buildFakeAgent compiles fakeAgentSource into dir and returns the binary.
func buildFakeAgent(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"go.mod": "module fakeagent\n\ngo 1.26\n", "main.go": fakeAgentSource} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "fake-agent")
	cmd := exec.Command(goTool(), "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0")
	done := make(chan error, 1)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("go build of the fake agent: %v\n%s", err, out.Bytes())
		}
	case <-time.After(agentBuildTimeout):
		_ = cmd.Process.Kill()
		t.Fatalf("go build of the fake agent took more than %s", agentBuildTimeout)
	}
	return bin
}

// TestDevAgentScan: on `vega dev`, the agent engine runs a fake agent that
// calls the model through the proxy with the scan's token; its finding is
// recorded as agent.injection and its call's usage is recorded.
func TestDevAgentScan(t *testing.T) {
	t.Parallel()
	agentBin := buildFakeAgent(t, t.TempDir())
	srv, providerKey := fakeProvider(t)
	c, p := startDev(t, map[string]string{
		"VEGA_LLM_PROVIDER_URL":     srv.URL(),
		"VEGA_LLM_PROVIDER_API_KEY": providerKey,
		"VEGA_ENGINE_AGENT_COMMAND": agentBin + " {output}",
	})
	repo := c.setupRepository("dev-agent")
	raw := c.putProfile(repo, []string{"agent"}, map[string]any{"max_requests": 5})
	c.upload(repo, vulnerableApp(t, fakeAWSKeyID(t)))

	start := time.Now()
	s := c.requestScan(repo, nil)
	diagnose := func() string { return proxyDiagnosis(srv, p) }
	got, evs, b := c.waitLLMScan(diagnose, srv, s.ID, "LLMUsageRecorded")
	raw = append(raw, b...)
	t.Logf("scan %s: %s from request to completed with usage %+v", s.ID, time.Since(start).Round(time.Millisecond), got.LLMUsage)
	if got.Partial {
		t.Errorf("scan %+v: want not partial", got)
	}
	fs, fb := c.waitEngineFindings(s.ID, "agent")
	raw = append(raw, fb...)
	checkSQLFinding(t, fs, "agent", diagnose)
	checkUsageEvents(t, c, got, evs)
	if n := len(checkProvider(t, srv, providerKey, "", 1)); n != 1 {
		t.Errorf("the fake provider received %d requests, want the agent's 1", n)
	}
	checkNoLeak(t, providerKey, raw, p)
}

// startLLMCluster starts the distributed shape of the LLM tests: `vega
// api`, a separate `vega llm-proxy` that alone holds the provider settings,
// and `vega worker` (runners as child processes) with VEGA_LLM_PROXY_URL set
// to the proxy's OpenAI base URL plus workerEnv.
func startLLMCluster(t *testing.T, srv *fakellm.Server, providerKey string, workerEnv map[string]string) (cl *cluster, proxy, worker *proc) {
	t.Helper()
	start := time.Now()
	cl = newCluster(t, nil)
	proxy = startProc(t, "vega llm-proxy", cl.procEnv(map[string]string{
		"VEGA_LLM_PROVIDER_URL":     srv.URL(),
		"VEGA_LLM_PROVIDER_API_KEY": providerKey,
		"VEGA_LLM_PROXY_ADDR":       "127.0.0.1:0",
	}), "llm-proxy")
	proxyURL := proxy.waitLine("vega: llm proxy on ")
	proxy.waitLine("vega: running")
	if !strings.HasPrefix(proxyURL, "http://127.0.0.1:") {
		t.Fatalf("vega llm-proxy printed its URL as %q", proxyURL)
	}
	// The ai and agent engines want the proxy's OpenAI base URL, ending in /v1.
	base := strings.TrimRight(proxyURL, "/")
	if !strings.HasSuffix(base, "/v1") {
		base += "/v1"
	}
	env := map[string]string{"VEGA_LLM_PROXY_URL": base}
	for k, v := range workerEnv {
		env[k] = v
	}
	worker = startProc(t, "vega worker", cl.procEnv(env), "worker")
	worker.waitLine("vega: running")
	t.Logf("cluster and proxy up in %s", time.Since(start).Round(time.Millisecond))
	return cl, proxy, worker
}

// TestDistributedAIScan: `vega api`, `vega worker` (runners as child
// processes) and a separate `vega llm-proxy` that alone holds the provider
// settings; the runner reaches the proxy through VEGA_LLM_PROXY_URL and the
// ai scan completes with the model's finding and its usage.
func TestDistributedAIScan(t *testing.T) {
	t.Parallel()
	srv, providerKey := fakeProvider(t)
	cl, proxy, worker := startLLMCluster(t, srv, providerKey, nil)

	c := cl.api
	planted := fakeAWSKeyID(t)
	repo := c.setupRepository("dist-ai")
	raw := c.putProfile(repo, []string{"builtin", "ai"}, map[string]any{"max_requests": 20})
	c.upload(repo, vulnerableApp(t, planted))

	start := time.Now()
	s := c.requestScan(repo, nil)
	diagnose := func() string { return proxyDiagnosis(srv, proxy, worker) }
	got, evs, b := c.waitLLMScan(diagnose, srv, s.ID, "LLMUsageRecorded", "RunnerLaunched")
	raw = append(raw, b...)
	t.Logf("scan %s: %s from request to completed with usage %+v", s.ID, time.Since(start).Round(time.Millisecond), got.LLMUsage)
	fs, fb := c.waitEngineFindings(s.ID, "ai")
	raw = append(raw, fb...)
	checkSQLFinding(t, fs, "ai", diagnose)
	if got.Partial {
		t.Errorf("scan %+v: want not partial", got)
	}
	checkUsageEvents(t, c, got, evs)
	checkProvider(t, srv, providerKey, planted, 2)
	checkNoLeak(t, providerKey, raw, proxy, worker)
}

// TestDistributedAgentScan: the distributed shape of TestDistributedAIScan
// with the agent command set on the worker only; the runner, a child of the
// worker, inherits it (the process launcher's allowlist), runs the fake
// agent against the separate proxy with the scan's token, and the scan
// completes with the agent's finding and the usage of its one call. The
// provider key reaches neither the API answers nor the worker's or the
// proxy's output.
func TestDistributedAgentScan(t *testing.T) {
	t.Parallel()
	agentBin := buildFakeAgent(t, t.TempDir())
	srv, providerKey := fakeProvider(t)
	cl, proxy, worker := startLLMCluster(t, srv, providerKey, map[string]string{
		"VEGA_ENGINE_AGENT_COMMAND": agentBin + " {output}",
	})

	c := cl.api
	planted := fakeAWSKeyID(t)
	repo := c.setupRepository("dist-agent")
	raw := c.putProfile(repo, []string{"agent"}, map[string]any{"max_requests": 5})
	c.upload(repo, vulnerableApp(t, planted))

	start := time.Now()
	s := c.requestScan(repo, nil)
	diagnose := func() string { return proxyDiagnosis(srv, proxy, worker) }
	got, evs, b := c.waitLLMScan(diagnose, srv, s.ID, "LLMUsageRecorded", "RunnerLaunched")
	raw = append(raw, b...)
	t.Logf("scan %s: %s from request to completed with usage %+v", s.ID, time.Since(start).Round(time.Millisecond), got.LLMUsage)
	if got.Partial {
		t.Errorf("scan %+v: want not partial", got)
	}
	fs, fb := c.waitEngineFindings(s.ID, "agent")
	raw = append(raw, fb...)
	checkSQLFinding(t, fs, "agent", diagnose)
	checkUsageEvents(t, c, got, evs)
	if n := len(checkProvider(t, srv, providerKey, "", 1)); n != 1 {
		t.Errorf("the fake provider received %d requests, want the agent's 1", n)
	}
	checkNoLeak(t, providerKey, raw, proxy, worker)
}
