// Package sarifengine is the "sarif" scan engine: it runs a configured
// external tool (VEGA_ENGINE_SARIF_COMMAND) over the snapshot and imports
// the SARIF 2.1.0 document the tool writes.
//
// The tool runs without a shell: the command line is split by SplitCommand
// (white space separates words; single and double quotes group; a
// backslash escapes the next character outside single quotes), and the
// word "{output}" — or any word containing it — gets the path of the file
// the tool must write; a command without the placeholder is read from its
// standard output. The process runs in the snapshot directory, in its own
// process group (killed whole on timeout or cancellation), with a private
// temporary directory and an environment that holds only PATH (the
// runner's), HOME and TMPDIR (both the private directory) and LANG=C.UTF-8:
// no credential of the runner reaches it. Its output is capped; its
// standard error is never stored or logged (a secret scanner may print
// secrets there), only its exit status. A non-zero exit with a valid
// document is a success, since many scanners (gitleaks, semgrep --error)
// exit 1 when they find something.
package sarifengine

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
	"time"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/sarif"
)

// Name is the engine name reported in every finding.
const Name = "sarif"

// Placeholder is replaced, in each word of the command, by the path of the
// SARIF file the tool must write.
const Placeholder = "{output}"

// Limits of a run.
const (
	// DefaultTimeout is the wall-clock limit of one tool run.
	DefaultTimeout = 10 * time.Minute
	// DefaultMaxOutputBytes caps the SARIF document the tool writes.
	DefaultMaxOutputBytes = sarif.DefaultMaxBytes
	// killGrace is how long a killed tool's pipes may stay open.
	killGrace = 5 * time.Second
)

// ErrUnavailable reports that the engine cannot run: no command is
// configured, or the tool is not installed.
var ErrUnavailable = errors.New("sarif engine unavailable")

// Config configures New.
type Config struct {
	// Command is the tool's command line (VEGA_ENGINE_SARIF_COMMAND), for
	// example `semgrep scan --config p/default --sarif --output {output}`.
	// Empty: every Scan fails with ErrUnavailable.
	Command string
	// Timeout is the wall-clock limit of one run (0: DefaultTimeout).
	Timeout time.Duration
	// MaxOutputBytes caps the document (0: DefaultMaxOutputBytes).
	MaxOutputBytes int64
	// Logger receives a line per run (exit status, findings); nil discards.
	Logger *slog.Logger
}

var _ engine.Engine = (*Engine)(nil)

// Engine runs the configured tool. It is immutable and safe for
// concurrent Scans (each run has its own temporary directory).
type Engine struct {
	args    []string
	timeout time.Duration
	max     int64
	im      *sarif.Importer
	log     *slog.Logger
}

// New returns the engine, importing with im (whose engine name should be
// Name). It fails for a command SplitCommand refuses, a negative limit or
// a nil importer.
func New(cfg Config, im *sarif.Importer) (*Engine, error) {
	if im == nil {
		return nil, errors.New("new sarif engine: importer is required")
	}
	if cfg.Timeout < 0 || cfg.MaxOutputBytes < 0 {
		return nil, errors.New("new sarif engine: negative timeout or output limit")
	}
	args, err := SplitCommand(cfg.Command)
	if err != nil {
		return nil, fmt.Errorf("new sarif engine: %w", err)
	}
	e := &Engine{args: args, timeout: cfg.Timeout, max: cfg.MaxOutputBytes, im: im, log: cfg.Logger}
	if e.timeout == 0 {
		e.timeout = DefaultTimeout
	}
	if e.max == 0 {
		e.max = DefaultMaxOutputBytes
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e, nil
}

// Name returns Name.
func (e *Engine) Name() string { return Name }

// SplitCommand splits a command line into words without a shell: runs of
// white space separate words; '…' groups literally; "…" groups, with \"
// and \\ escaped; outside quotes a backslash escapes the next character.
// No expansion of any kind happens. It fails on an unterminated quote or a
// trailing backslash.
func SplitCommand(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && (rs[i+1] == '"' || rs[i+1] == '\\'):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == '\\':
			if i+1 == len(rs) {
				return nil, fmt.Errorf("split command: trailing backslash")
			}
			i++
			cur.WriteRune(rs[i])
			in = true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("split command: unterminated %c quote", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// cappedBuffer keeps at most max bytes and notes that more came.
type cappedBuffer struct {
	buf  bytes.Buffer
	max  int64
	over bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - int64(c.buf.Len()); int64(len(p)) > room {
		c.over = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}

// Scan runs the tool over t.Root and emits the imported findings that pass
// t's filters (Include, Exclude, MinSeverity; Categories for findings
// whose category is known — a finding the importer could not place in a
// category is kept). It returns an error wrapping ErrUnavailable when no
// command is configured or the tool is missing, engine.ErrInvalidTarget
// for a bad target, and a clear error when the tool times out, fails
// without writing a document, or writes one that is too large or not
// SARIF 2.1.0 (the runner then records the scan as partial).
func (e *Engine) Scan(ctx context.Context, t engine.Target, emit func(engine.Finding) error) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("sarif scan: %w", err)
	}
	if len(e.args) == 0 {
		return fmt.Errorf("sarif scan: %w: VEGA_ENGINE_SARIF_COMMAND is not set", ErrUnavailable)
	}
	root, err := filepath.Abs(t.Root)
	if err != nil {
		return fmt.Errorf("sarif scan: %w", err)
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return fmt.Errorf("sarif scan: %w: root %s is not a directory", engine.ErrInvalidTarget, t.Root)
	}
	tmp, err := os.MkdirTemp("", "vega-sarif-")
	if err != nil {
		return fmt.Errorf("sarif scan: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "result.sarif")
	args := make([]string, len(e.args))
	toFile := false
	for i, a := range e.args {
		args[i] = strings.ReplaceAll(a, Placeholder, out)
		toFile = toFile || args[i] != a
	}
	tool := filepath.Base(args[0])

	runCtx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, args[0], args[1:]...)
	cmd.Dir = root
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "TMPDIR=" + tmp, "LANG=C.UTF-8"}
	cmd.Stdin = nil
	stdout := &cappedBuffer{max: e.max}
	if toFile {
		stdout.max = 0 // discarded: the document is in the file
	}
	cmd.Stdout = stdout
	cmd.Stderr = io.Discard
	cmd.WaitDelay = killGrace
	isolate(cmd)
	start := time.Now()
	runErr := cmd.Run()
	elapsed := time.Since(start)
	switch {
	case errors.Is(runErr, exec.ErrNotFound), errors.Is(runErr, os.ErrNotExist):
		return fmt.Errorf("sarif scan: %w: %s is not installed or not on PATH", ErrUnavailable, tool)
	case ctx.Err() != nil:
		return fmt.Errorf("sarif scan: %w", ctx.Err())
	case runCtx.Err() != nil:
		return fmt.Errorf("sarif scan: %s timed out after %s", tool, e.timeout)
	}
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return fmt.Errorf("sarif scan: run %s: %w", tool, runErr)
	}
	status := 0
	if exit != nil {
		status = exit.ExitCode()
	}

	var doc []byte
	if toFile {
		doc, err = readCapped(out, e.max)
		if errors.Is(err, os.ErrNotExist) {
			if status != 0 {
				return fmt.Errorf("sarif scan: %s exited with status %d and wrote no SARIF document", tool, status)
			}
			return fmt.Errorf("sarif scan: %s wrote no SARIF document to %s", tool, Placeholder)
		}
		if err != nil {
			return fmt.Errorf("sarif scan: %s: %w", tool, err)
		}
	} else {
		if stdout.over {
			return fmt.Errorf("sarif scan: %s: %w", tool, &sarif.TooLargeError{Limit: "bytes", Max: e.max})
		}
		doc = stdout.buf.Bytes()
	}
	if status != 0 && len(bytes.TrimSpace(doc)) == 0 {
		return fmt.Errorf("sarif scan: %s exited with status %d and wrote no SARIF document", tool, status)
	}
	found, err := e.im.Import(doc, root)
	if err != nil {
		return fmt.Errorf("sarif scan: output of %s (exit status %d): %w", tool, status, err)
	}
	emitted := 0
	for _, f := range found {
		if !wants(t, f) {
			continue
		}
		if err := emit(f); err != nil {
			return fmt.Errorf("sarif scan: emit: %w", err)
		}
		emitted++
	}
	e.log.LogAttrs(ctx, slog.LevelInfo, "sarif engine ran", slog.String("tool", tool), slog.Int("exit_status", status),
		slog.Duration("duration", elapsed), slog.Int("results", len(found)), slog.Int("emitted", emitted))
	return nil
}

// wants applies the target's filters to an imported finding.
func wants(t engine.Target, f engine.Finding) bool {
	if engine.Match(t.Exclude, f.File) || (len(t.Include) > 0 && !engine.Match(t.Include, f.File)) {
		return false
	}
	if t.MinSeverity != "" && !engine.AtLeast(f.Severity, t.MinSeverity) {
		return false
	}
	if f.Category == "" {
		return true
	}
	return t.Wants(f.Category, f.Severity)
}

// readCapped reads the file p, failing with a *sarif.TooLargeError when it
// is larger than max.
func readCapped(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if int64(len(doc)) > max {
		return nil, &sarif.TooLargeError{Limit: "bytes", Max: max}
	}
	return doc, nil
}
