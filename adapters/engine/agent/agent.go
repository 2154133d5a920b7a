// Package agent runs a command-line coding agent (such as Codex CLI in its
// non-interactive mode) inside the extracted snapshot and reads its
// findings. The agent gets a wall-clock limit, a private temporary HOME and
// TMPDIR, and an environment holding only PATH, the LLM proxy's URL and the
// scan's token (under OPENAI_BASE_URL, OPENAI_API_KEY and any names the
// operator maps), so its model calls go through the proxy and count against
// the scan's budget. It writes the same JSON document the ai engine asks
// models for, which is validated, masked and fingerprinted the same way.
package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/ai"
	"github.com/vega-sec/vega/domain"
)

// Name is the engine name reported in every Finding.
const Name = "agent"

// Defaults and limits.
const (
	// DefaultTimeout is the agent's wall-clock limit.
	DefaultTimeout = 20 * time.Minute
	// DefaultPATH is the agent's PATH when Config.PATH is empty.
	DefaultPATH = "/usr/local/bin:/usr/bin:/bin"
	// MaxStderrBytes is how much of the agent's stderr (its tail) is kept
	// for an error message.
	MaxStderrBytes = 4 << 10
	// killGrace is how long the agent's process group has between SIGTERM
	// and SIGKILL once the limit is reached.
	killGrace = 5 * time.Second
)

// Placeholders in the command's arguments.
const (
	PlaceholderOutput = "{output}"      // the file the agent writes its findings to
	PlaceholderPrompt = "{prompt}"      // the task, as one argument
	PlaceholderPFile  = "{prompt_file}" // a file holding the task
)

// OutputEnv is the environment variable that also names the output file.
const OutputEnv = "VEGA_AGENT_OUTPUT"

// ErrUnavailable is returned (wrapped) when no command, proxy URL or token
// is configured: the scan is partial, with the reason.
var ErrUnavailable = errors.New("agent engine unavailable")

// ErrAgentFailed is returned (wrapped) when the agent exits with an error,
// runs past its limit, or writes no valid output.
var ErrAgentFailed = errors.New("agent failed")

// Config configures an Engine.
type Config struct {
	// Command is the agent's command line (VEGA_ENGINE_AGENT_COMMAND),
	// split without a shell (SplitArgs); it may use the placeholders.
	Command string
	// Env maps extra variable names to "url" or "token"
	// (VEGA_ENGINE_AGENT_ENV, parsed by ParseEnvMapping).
	Env map[string]string
	// ProxyURL is the LLM proxy's base URL (ending in /v1) and Token the
	// scan's token.
	ProxyURL string
	Token    string
	// PATH is the agent's PATH (empty: DefaultPATH).
	PATH string
	// Timeout is the wall-clock limit (0: DefaultTimeout).
	Timeout time.Duration
	// Profile is the scan's threat profile, described in the task.
	Profile domain.ThreatProfile
	// Fingerprinter and Secrets are required.
	Fingerprinter *engine.Fingerprinter
	Secrets       ai.SecretScanner
	// MinConfidence drops findings below it (0: ai.DefaultMinConfidence).
	MinConfidence float64
	// OnWarning receives a note for each invalid finding dropped (nil: none).
	OnWarning func(string)
	// Logger (nil: discard); the token is never logged.
	Logger *slog.Logger
}

// Engine is the agent engine. It is safe for concurrent Scans (each runs
// its own process in its own temporary directory).
type Engine struct {
	cfg    Config
	args   []string
	masker *ai.Masker
	log    *slog.Logger
}

var _ engine.Engine = (*Engine)(nil)

// New returns an agent engine. It fails without a Fingerprinter or Secrets,
// for a command that does not split, or for a bad Env mapping. An empty
// command, proxy URL or token is not an error here: Scan reports the engine
// unavailable.
func New(cfg Config) (*Engine, error) {
	if cfg.Fingerprinter == nil || cfg.Secrets == nil {
		return nil, errors.New("new agent engine: fingerprinter and secret scanner are required")
	}
	args, err := SplitArgs(cfg.Command)
	if err != nil {
		return nil, fmt.Errorf("new agent engine: command: %w", err)
	}
	for k, v := range cfg.Env {
		if !validEnvName(k) || (v != "url" && v != "token") {
			return nil, fmt.Errorf("new agent engine: env mapping %s=%s: want NAME=url or NAME=token", k, v)
		}
	}
	if cfg.MinConfidence < 0 || cfg.MinConfidence > 1 {
		return nil, fmt.Errorf("new agent engine: min confidence %v is not between 0 and 1", cfg.MinConfidence)
	}
	if cfg.MinConfidence == 0 {
		cfg.MinConfidence = ai.DefaultMinConfidence
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PATH == "" {
		cfg.PATH = DefaultPATH
	}
	e := &Engine{cfg: cfg, args: args, masker: ai.NewMasker(cfg.Secrets), log: cfg.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e, nil
}

// Name returns Name.
func (e *Engine) Name() string { return Name }

// Scan runs the agent in t.Root and emits the findings of its output file
// that t wants. It returns an error wrapping ErrUnavailable when nothing is
// configured, ErrAgentFailed when the agent fails, times out or writes no
// valid document, engine.ErrInvalidTarget, ctx's error, or emit's error.
func (e *Engine) Scan(ctx context.Context, t engine.Target, emit func(engine.Finding) error) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("agent scan: %w", err)
	}
	switch {
	case len(e.args) == 0:
		return fmt.Errorf("agent scan: %w: no agent command configured (VEGA_ENGINE_AGENT_COMMAND)", ErrUnavailable)
	case e.cfg.ProxyURL == "" || e.cfg.Token == "":
		return fmt.Errorf("agent scan: %w: no LLM proxy configured (VEGA_LLM_PROXY_URL; the runner passes the scan's token)", ErrUnavailable)
	}
	root, err := filepath.Abs(t.Root)
	if err != nil {
		return fmt.Errorf("agent scan: %w", err)
	}
	tmp, err := os.MkdirTemp("", "vega-agent-")
	if err != nil {
		return fmt.Errorf("agent scan: %w", err)
	}
	defer os.RemoveAll(tmp)
	home, tmpdir := filepath.Join(tmp, "home"), filepath.Join(tmp, "tmp")
	for _, d := range []string{home, tmpdir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("agent scan: %w", err)
		}
	}
	output := filepath.Join(tmp, "findings.json")
	prompt := e.prompt(t)
	promptFile := filepath.Join(tmp, "task.txt")
	if err := os.WriteFile(promptFile, []byte(prompt), 0o600); err != nil {
		return fmt.Errorf("agent scan: %w", err)
	}
	args := make([]string, len(e.args))
	for i, a := range e.args {
		a = strings.ReplaceAll(a, PlaceholderOutput, output)
		a = strings.ReplaceAll(a, PlaceholderPFile, promptFile)
		args[i] = strings.ReplaceAll(a, PlaceholderPrompt, prompt)
	}
	if err := e.run(ctx, root, args, e.env(home, tmpdir, output)); err != nil {
		return err
	}
	data, err := readOutput(output)
	if err != nil {
		return fmt.Errorf("agent scan: %w: %v", ErrAgentFailed, err)
	}
	ans, err := ai.ParseAnswer(data)
	if err != nil {
		return fmt.Errorf("agent scan: %w: output: %v", ErrAgentFailed, err)
	}
	return e.emit(root, t, ans, emit)
}

// env is the agent's whole environment.
func (e *Engine) env(home, tmpdir, output string) []string {
	env := []string{
		"PATH=" + e.cfg.PATH, "HOME=" + home, "TMPDIR=" + tmpdir,
		"OPENAI_BASE_URL=" + e.cfg.ProxyURL, "OPENAI_API_KEY=" + e.cfg.Token,
		OutputEnv + "=" + output,
	}
	for k, v := range e.cfg.Env {
		val := e.cfg.ProxyURL
		if v == "token" {
			val = e.cfg.Token
		}
		env = append(env, k+"="+val)
	}
	return env
}

// run starts the agent in its own process group and waits for it, killing
// the whole group at the wall-clock limit or when ctx ends.
func (e *Engine) run(parent context.Context, dir string, args, env []string) error {
	ctx, cancel := context.WithTimeout(parent, e.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdin = nil
	stderr := &tail{max: MaxStderrBytes}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		go func() {
			time.Sleep(killGrace)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}()
		return nil
	}
	cmd.WaitDelay = killGrace + time.Second
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leave no child behind
	}
	e.log.Info("agent finished", "command", filepath.Base(args[0]), "duration", time.Since(start), "error", err != nil)
	switch {
	case err == nil:
		return nil
	case parent.Err() != nil:
		return fmt.Errorf("agent scan: %w", parent.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("agent scan: %w: ran past its %v limit", ErrAgentFailed, e.cfg.Timeout)
	}
	msg := e.masker.Mask("stderr", strings.ReplaceAll(stderr.String(), e.cfg.Token, "[REDACTED-TOKEN]"), nil)
	return fmt.Errorf("agent scan: %w: %v: %s", ErrAgentFailed, err, strings.TrimSpace(msg))
}

// emit validates and emits the answer's findings.
func (e *Engine) emit(root string, t engine.Target, ans ai.Answer, emit func(engine.Finding) error) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("agent scan: open root: %w", err)
	}
	defer r.Close()
	v := &ai.Validator{Engine: Name, Fingerprinter: e.cfg.Fingerprinter, Masker: e.masker, MinConfidence: e.cfg.MinConfidence}
	sources := map[string]*ai.Source{}
	for i, rf := range ans.Findings {
		warn := func(msg string) {
			if e.cfg.OnWarning != nil {
				e.cfg.OnWarning(fmt.Sprintf("findings[%d]: %s", i, msg))
			}
		}
		if !ai.ValidPath(rf.File) || engine.Match(t.Exclude, rf.File) || len(t.Include) > 0 && !engine.Match(t.Include, rf.File) {
			warn(fmt.Sprintf("file %q is not a scanned repository path", e.masker.Mask("output", rf.File, nil)))
			continue
		}
		src, ok := sources[rf.File]
		if !ok {
			src = e.source(r, rf.File)
			sources[rf.File] = src
		}
		if src == nil {
			warn(fmt.Sprintf("file %q cannot be read in the snapshot", rf.File))
			continue
		}
		f, keep, err := v.Finding(rf, *src)
		if err != nil {
			warn(e.masker.Mask(rf.File, err.Error(), src.Secrets))
			continue
		}
		if !keep || !t.Wants(f.Category, f.Severity) {
			continue
		}
		if err := emit(f); err != nil {
			return fmt.Errorf("agent scan: emit: %w", err)
		}
	}
	return nil
}

// source reads a snapshot file and masks its secrets; nil when unreadable.
func (e *Engine) source(r *os.Root, p string) *ai.Source {
	f, err := r.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() > ai.DefaultMaxFileBytes*8 {
		return nil
	}
	content, err := io.ReadAll(f)
	if err != nil {
		return nil
	}
	secrets := e.masker.Secrets(p, content)
	masked := string(content)
	for _, s := range secrets {
		masked = strings.ReplaceAll(masked, s, ai.Mask)
	}
	lines := strings.Split(strings.ReplaceAll(masked, "\r\n", "\n"), "\n")
	if n := len(lines); n > 1 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	return &ai.Source{Path: p, Lines: lines, Secrets: secrets}
}

// prompt is the agent's task.
func (e *Engine) prompt(t engine.Target) string {
	cats := t.Categories
	if len(cats) == 0 {
		cats = []string{engine.CategorySecrets, engine.CategoryInjection, engine.CategoryCrypto, engine.CategoryConfig}
	}
	var b strings.Builder
	b.WriteString("Audit the repository in the current directory for security problems.\n")
	if e.cfg.Profile.Name != "" {
		b.WriteString("Threat profile: " + e.cfg.Profile.Name + "\n")
	}
	if e.cfg.Profile.Description != "" {
		b.WriteString(e.cfg.Profile.Description + "\n")
	}
	b.WriteString("Categories: " + strings.Join(cats, ", ") + "\n")
	if t.MinSeverity != "" {
		b.WriteString("Minimum severity: " + t.MinSeverity + "\n")
	}
	b.WriteString(`Do not modify any file. Write ONLY one JSON object to the file named by $` + OutputEnv + `:
{"findings": [{"file": "<repository-relative path>", "start_line": <int>, "end_line": <int>, "title": "<short>", "severity": "critical|high|medium|low|info", "cwe": "CWE-<n>", "category": "<category>", "message": "<what and why>", "remediation": "<fix>", "confidence": <0 to 1>}]}
`)
	return b.String()
}

// readOutput reads the output file, refusing a link or an oversized file.
func readOutput(p string) ([]byte, error) {
	st, err := os.Lstat(p)
	if err != nil {
		return nil, fmt.Errorf("no output file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("output is not a regular file")
	}
	if st.Size() > ai.MaxAnswerBytes {
		return nil, fmt.Errorf("output larger than %d bytes", ai.MaxAnswerBytes)
	}
	return os.ReadFile(p)
}

// tail keeps the last max bytes written.
type tail struct {
	max int
	buf bytes.Buffer
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tail) String() string { return t.buf.String() }
