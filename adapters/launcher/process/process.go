// Package process launches each runner as a child process: the current
// binary as `vega runner --scan ID --fence N`, in a private temporary
// working directory, with only the environment a runner needs, in its own
// process group so that Stop kills it and everything it started.
package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vega-sec/vega/commands/worker"
)

// Name is the launcher's name in RunnerLaunched events.
const Name = "process"

// DefaultEnv names the variables passed from the worker's environment to a
// runner when Config.Env is nil: what a runner needs to reach the store,
// the bus, the blobs, the LLM proxy and its engines. HOME and TMPDIR are
// always set to the runner's private directory. The LLM provider's key is
// never passed, whatever Config says.
var DefaultEnv = []string{
	"PATH",
	"VEGA_DATABASE_URL", "VEGA_DATA_DIR", "VEGA_NATS_URL", "VEGA_NATS_TOKEN", "VEGA_NATS_CREDENTIALS",
	"VEGA_NATS_STREAM", "VEGA_NATS_SUBJECT_PREFIX", "VEGA_BLOB_URL", "VEGA_FINGERPRINT_KEY",
	"VEGA_SCAN_TIMEOUT", "VEGA_SCAN_LEASE", "VEGA_MAX_SCAN_ATTEMPTS", "VEGA_LLM_PROXY_URL", "VEGA_LLM_MODEL",
	"VEGA_ENGINE_SARIF_COMMAND", "VEGA_ENGINE_AGENT_COMMAND", "VEGA_ENGINE_AGENT_ENV",
	"VEGA_LOG_LEVEL", "VEGA_LOG_FORMAT",
	"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
}

// forbiddenEnv is never passed to a runner: only the LLM proxy holds the
// provider's key.
const forbiddenEnv = "VEGA_LLM_PROVIDER_API_KEY"

// Config tunes a Launcher. The zero value runs `<os.Executable()> runner`.
type Config struct {
	// Command is the argv before "--scan ID --fence N" (default
	// [os.Executable(), "runner"]); tests point it at a helper.
	Command []string
	// Env names the variables passed through (nil: DefaultEnv).
	Env []string
	// ExtraEnv adds "NAME=value" entries (after Env).
	ExtraEnv []string
	// TempDir is where each runner's private directory is made
	// (os.TempDir()); it is removed when the runner exits.
	TempDir string
	// Stdout and Stderr receive the runner's output (default os.Stderr).
	Stdout, Stderr io.Writer
	// Logger (nil: discard).
	Logger *slog.Logger
}

var (
	_ worker.Launcher   = (*Launcher)(nil)
	_ worker.Shutdowner = (*Launcher)(nil)
)

// Launcher starts runner processes. It is safe for concurrent use.
type Launcher struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	jobs   map[string]*job
	closed bool
	wg     sync.WaitGroup
}

type job struct {
	pid  int
	done chan struct{}
}

// New returns a Launcher. It fails when the executable cannot be found or
// Config passes the provider key.
func New(cfg Config) (*Launcher, error) {
	if len(cfg.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("new process launcher: %w", err)
		}
		cfg.Command = []string{exe, "runner"}
	}
	if cfg.Env == nil {
		cfg.Env = DefaultEnv
	}
	for _, name := range cfg.Env {
		if name == forbiddenEnv || strings.Contains(name, "=") {
			return nil, fmt.Errorf("new process launcher: %q may not be passed to runners", name)
		}
	}
	for _, kv := range cfg.ExtraEnv {
		if name, _, _ := strings.Cut(kv, "="); name == forbiddenEnv {
			return nil, fmt.Errorf("new process launcher: %s may not be passed to runners", forbiddenEnv)
		}
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stderr
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Launcher{cfg: cfg, log: log.With("component", "launcher", "launcher", Name), jobs: map[string]*job{}}, nil
}

// Name returns Name.
func (l *Launcher) Name() string { return Name }

// Args returns the argv of the runner of j.
func (l *Launcher) Args(j worker.Job) []string {
	return append(append([]string(nil), l.cfg.Command...), "--scan", j.ScanID, "--fence", strconv.FormatUint(j.Fence, 10))
}

// env returns the runner's environment.
func (l *Launcher) env(dir string) []string {
	var out []string
	for _, name := range l.cfg.Env {
		if v, ok := os.LookupEnv(name); ok && name != "HOME" && name != "TMPDIR" {
			out = append(out, name+"="+v)
		}
	}
	out = append(out, l.cfg.ExtraEnv...)
	return append(out, "HOME="+dir, "TMPDIR="+dir)
}

// Launch starts the runner of j and returns its PID as the job ID. The
// process outlives ctx; Stop or Shutdown ends it.
func (l *Launcher) Launch(_ context.Context, j worker.Job) (string, error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return "", errors.New("launch: the process launcher is shut down")
	}
	dir, err := os.MkdirTemp(l.cfg.TempDir, "vega-runner-*")
	if err != nil {
		return "", fmt.Errorf("launch runner of scan %s: %w", j.ScanID, err)
	}
	argv := l.Args(j)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = l.env(dir)
	cmd.Stdout, cmd.Stderr = l.cfg.Stdout, l.cfg.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("launch runner of scan %s: %w", j.ScanID, err)
	}
	id := strconv.Itoa(cmd.Process.Pid)
	jb := &job{pid: cmd.Process.Pid, done: make(chan struct{})}
	l.mu.Lock()
	l.jobs[id] = jb
	l.mu.Unlock()
	l.wg.Go(func() {
		err := cmd.Wait()
		// Whatever the runner left in its group goes with it.
		_ = syscall.Kill(-jb.pid, syscall.SIGKILL)
		if rerr := os.RemoveAll(dir); rerr != nil {
			l.log.Warn("remove runner directory", "dir", dir, "error", rerr)
		}
		l.mu.Lock()
		delete(l.jobs, id)
		l.mu.Unlock()
		close(jb.done)
		l.log.Info("runner exited", "scan_id", j.ScanID, "fence", j.Fence, "pid", id, "status", exitStatus(err))
	})
	l.log.Info("runner started", "scan_id", j.ScanID, "fence", j.Fence, "pid", id)
	return id, nil
}

func exitStatus(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}

// Stop kills the runner's process group (SIGKILL) and waits for it to be
// reaped, or for ctx to end. An unknown or finished job is not an error.
func (l *Launcher) Stop(ctx context.Context, jobID string) error {
	l.mu.Lock()
	jb := l.jobs[jobID]
	l.mu.Unlock()
	if jb == nil {
		return nil
	}
	if err := syscall.Kill(-jb.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop runner %s: %w", jobID, err)
	}
	select {
	case <-jb.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop runner %s: %w", jobID, ctx.Err())
	}
}

// shutdownKillWait bounds the wait for killed runners to be reaped.
const shutdownKillWait = 5 * time.Second

// Shutdown refuses new launches, waits for the runners until ctx ends,
// then kills the rest.
func (l *Launcher) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	for _, jb := range l.jobs {
		_ = syscall.Kill(-jb.pid, syscall.SIGKILL)
	}
	l.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-time.After(shutdownKillWait):
		return errors.New("shutdown: runners still running after SIGKILL")
	}
}
